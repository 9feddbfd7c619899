"""One progress-bar style (rich) that stays quiet where it cannot redraw, and the optional,
git-ignored ``local`` config group."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from lightning.pytorch.callbacks import RichProgressBar

from esrgan_lit.callbacks import progress
from esrgan_lit.config import config_dir

ROOT = Path(__file__).resolve().parents[1]


def _compose(conf: Path, *overrides: str):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def test_training_progress_bar_is_rich(monkeypatch):
    cfg = _compose(config_dir())
    bar = instantiate(cfg.callbacks.progress_bar)
    assert isinstance(bar, RichProgressBar) and bar.refresh_rate == 10
    assert bar._console_kwargs == {}
    monkeypatch.setattr(progress, "_jupyter_without_widgets", lambda: True)
    assert instantiate(cfg.callbacks.progress_bar)._console_kwargs == {"force_jupyter": False}


def test_demo_needs_no_tqdm():
    """tqdm is not a declared dependency: no module of the package imports it."""
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "src" / "esrgan_lit").rglob("*.py")
        if "tqdm" in p.read_text(encoding="utf-8")
    ]
    assert offenders == []


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_progress_bar_prints_once_when_not_a_terminal(tmp_path, capfd):
    """Captured output (a log file, CI): the final state, not one line per refresh."""
    pytest.importorskip("skimage")
    from esrgan_lit.train import train
    from train_helpers import TINY, compose_cfg

    tiny = [o for o in TINY if "progress" not in o]
    overrides = ["experiment=psnr_pretrain", "trainer.max_steps=6", "logger=csv",
                 "callbacks.progress_bar.refresh_rate=1", "final_validate=false"]  # fmt: skip
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr("train_helpers.TINY", tiny)
    try:
        capfd.readouterr()
        _, objs = train(compose_cfg(tmp_path / "run", overrides, str(tmp_path / "data")))
    finally:
        monkeypatch.undo()
    assert any(isinstance(c, RichProgressBar) for c in objs["trainer"].callbacks)
    captured = capfd.readouterr()
    text = captured.out + captured.err
    lines = [ln for ln in text.splitlines() if "6/6" in ln]
    assert 1 <= len(lines) <= 2, text[-2000:]  # TQDM: a \r-separated line per refresh


def test_local_group_is_optional_and_applied(tmp_path):
    assert not (config_dir() / "local" / "default.yaml").exists() or pytest.skip(
        "this checkout has its own conf/local/default.yaml"
    )
    cfg = _compose(config_dir())
    assert "local" not in cfg and cfg.seed == 42  # absent: nothing changes
    conf = shutil.copytree(config_dir(), tmp_path / "conf")
    (conf / "local" / "default.yaml").write_text(
        "# @package _global_\nseed: 7\npaths:\n  data_dir: /scratch/sr\n"
    )
    cfg = _compose(conf)
    assert cfg.seed == 7 and cfg.paths.data_dir == "/scratch/sr"
    cfg = _compose(conf, "seed=3", "debug=fdr")  # the command line still wins
    assert cfg.seed == 3


def test_local_overrides_are_git_ignored():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    path = "src/esrgan_lit/conf/local/default.yaml"  # what conf/local/default.yaml points at
    res = subprocess.run(["git", "check-ignore", path], cwd=ROOT, capture_output=True, text=True)
    assert res.stdout.split() == [path]
    keep = subprocess.run(
        ["git", "check-ignore", "src/esrgan_lit/conf/local/.gitkeep"], cwd=ROOT, capture_output=True
    )
    assert keep.returncode == 1  # the folder itself is tracked

"""Run directories under hostile use (issue 17, items 6-10): history kept on resume, one live run
per folder, no fresh run over an old run's checkpoints, ``ckpt_path`` read safely first, and
one clear line (no stack) from the Hydra entry points for user errors.

Hostile inputs tried here: 14 (live lock, stale lock, another host's lock, fresh run over
checkpoints, ambiguous last-v1, resume CSV, crafted pickle, text file, generator-only file, and
five CLI user errors).
"""

from __future__ import annotations

import csv
import json
import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from esrgan_lit.archs import RRDBNet
from esrgan_lit.run_dir import LOCK_NAME, RunDirError, RunLock, TrainingCheckpointError
from esrgan_lit.train import train
from esrgan_lit.weights import save_generator
from esrgan_lit.weights.errors import CheckpointError, UnsafeCheckpointError
from train_helpers import compose_cfg

pytest.importorskip("skimage")

RUN_DIR_TINY = [
    "experiment=psnr_pretrain",
    "final_validate=false",
    "logger=none",
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("data"))


def cfg_for(out: Path, overrides: list[str], data_dir: str):
    return compose_cfg(out, [*RUN_DIR_TINY, *overrides], data_dir)


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


# ---------------------------------------------------------------- 17.7: one live run per folder
def test_live_lock_refuses_naming_the_holder_and_a_stale_one_is_taken_over(tmp_path, data_dir):
    run = tmp_path / "run"
    run.mkdir()
    holder = {"pid": os.getppid(), "host": socket.gethostname(), "started": "2026-01-02 03:04:05"}
    (run / LOCK_NAME).write_text(json.dumps(holder))
    with pytest.raises(RunDirError, match=rf"pid {os.getppid()} on .*2026-01-02 03:04:05"):
        train(cfg_for(run, ["trainer.max_steps=1"], data_dir))
    assert not (run / "checkpoints").exists()  # refused before any work
    (run / LOCK_NAME).write_text(json.dumps({**holder, "pid": dead_pid()}))  # killed run
    _, objs = train(cfg_for(run, ["trainer.max_steps=1"], data_dir))
    assert objs["trainer"].global_step == 1
    assert not (run / LOCK_NAME).exists()  # released at the end


def test_lock_is_exclusive(tmp_path):
    first = RunLock(tmp_path).acquire()
    with pytest.raises(RunDirError, match="in use by another run"):
        # another process holding it: same file, a live pid that is not ours
        info = json.loads((tmp_path / LOCK_NAME).read_text())
        (tmp_path / LOCK_NAME).write_text(json.dumps({**info, "pid": os.getppid()}))
        RunLock(tmp_path).acquire()
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": os.getpid(), "host": "elsewhere"}))
    with pytest.raises(RunDirError, match="elsewhere"):  # cannot check another host's pid
        RunLock(tmp_path).acquire()
    first.held = False


# ---------------------------------------------------------------- 17.8 and 17.6: fresh vs resume
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_fresh_run_over_checkpoints_is_refused_and_resume_keeps_csv_history(tmp_path, data_dir):
    run = tmp_path / "run"
    log = ["logger=csv", "trainer.log_every_n_steps=1"]
    train(cfg_for(run, [*log, "trainer.max_steps=2"], data_dir))
    gen = (run / "generator.safetensors").read_bytes()
    with pytest.raises(RunDirError, match="resume=latest"):
        train(cfg_for(run, [*log, "trainer.max_steps=2", "seed=3"], data_dir))
    assert (run / "generator.safetensors").read_bytes() == gen
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.ckpt"]

    def steps() -> list[int]:
        with open(run / "csv" / "metrics.csv", newline="") as f:
            return [int(r["step"]) for r in csv.DictReader(f) if r.get("train/l_pix")]

    before = steps()
    assert before
    _, objs = train(cfg_for(run, [*log, "trainer.max_steps=4", "resume=latest"], data_dir))
    assert objs["trainer"].global_step == 4
    after = steps()
    assert after[: len(before)] == before and max(after) > max(before)  # nothing lost

    # versioned copies of last.ckpt mean two runs wrote here: resume=latest will not guess
    (run / "checkpoints" / "last-v1.ckpt").write_bytes(
        (run / "checkpoints" / "last.ckpt").read_bytes()
    )
    with pytest.raises(RunDirError, match="ambiguous"):
        train(cfg_for(run, ["trainer.max_steps=5", "resume=latest"], data_dir))
    # overwrite=true is the explicit way to start afresh in the folder
    train(cfg_for(run, ["trainer.max_steps=1", "overwrite=true"], data_dir))
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.ckpt"]


# ---------------------------------------------------------------- 17.10: ckpt_path read safely
class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_bad_ckpt_path_is_checked_by_our_reader_first(tmp_path, data_dir):
    crafted = tmp_path / "crafted.ckpt"
    with open(crafted, "wb") as f:
        pickle.dump({"state_dict": _Evil()}, f)
    text = tmp_path / "notes.ckpt"
    text.write_text("this is not a checkpoint\n")
    gen = tmp_path / "gen.pth"
    save_generator(RRDBNet(scale=4, num_feat=8, num_block=1, num_grow_ch=4), gen)
    cases = [
        (crafted, UnsafeCheckpointError),
        (text, CheckpointError),
        (gen, TrainingCheckpointError),
    ]
    for path, err in cases:
        out = tmp_path / f"run_{path.stem}"
        with pytest.raises(err) as info:
            train(cfg_for(out, [f"ckpt_path={path}"], data_dir))
        assert str(path) in str(info.value) and "weights_only=False" not in str(info.value)
        assert not (out / "checkpoints").exists()
    with pytest.raises(TrainingCheckpointError, match=rf"model.pretrained_generator={gen}"):
        train(cfg_for(tmp_path / "g", [f"ckpt_path={gen}"], data_dir))


# ---------------------------------------------------------------- 17.9: one line, no stack
def _cli(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, "-m", module, *args, f"hydra.run.dir={cwd / 'run'}"],
        capture_output=True, text=True, timeout=300, cwd=cwd, env=env,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("module", "args", "expect"),
    [
        (
            "esrgan_lit.interpolate",
            ["psnr=nope.pth", "gan=nope.pth", "output=o.safetensors"],
            "psnr=",
        ),
        ("esrgan_lit.interpolate", ["psnr=a", "gan=b", "alpha=2", "output=o.safetensors"], "alpha"),
        ("esrgan_lit.interpolate", ["psnr=a", "gan=b"], "output is required"),
        ("esrgan_lit.train", ["ckpt_path=notes.txt"], "notes.txt"),
        ("esrgan_lit.evaluate", ["generator=bicubic", "test_dirs=[missing_dir]"], "missing_dir"),
    ],
)
def test_entry_points_print_one_line_for_user_errors(tmp_path, module, args, expect):
    (tmp_path / "notes.txt").write_text("hello\n")
    done = _cli(module, *args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and expect in done.stderr
    assert "error:" in done.stderr


def test_real_bugs_keep_their_stack(monkeypatch):
    from esrgan_lit.cli_errors import user_errors

    with pytest.raises(ZeroDivisionError), user_errors("x"):
        _ = 1 / 0
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(FileNotFoundError), user_errors("x"):
        raise FileNotFoundError("shown with its stack when asked")
    torch.manual_seed(0)

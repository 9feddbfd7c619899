"""Every bash line and python block of README.md and docs/*.md runs, on tiny settings.

Each block runs in its own temporary working directory holding what a reader would have
(``docs_workdir.py``): a small ``data/`` tree in the documented layout (DIV2K, Flickr2K, OST,
benchmark sets, PIRM), photos, and a tiny trained generator / checkpoint at every model path a
line reads that does not exist yet (trained once per session). ``/datasets/...``, ``/shared/...``
and ``/path/to/...`` point into that directory. A python block that starts with ``# pkg/mod.py``
is saved there as that file (for the page's later blocks).

Our commands run in-process (``python -m esrgan_lit.X`` / ``esrgan-X``: Hydra apps through their
``main`` with ``sys.argv``, argparse CLIs through ``main(argv)``). ``esrgan_lit.train.train`` is
wrapped to shrink every config it gets, from the CLI, the demo or a python block alike: RRDBNet
nf 8 / 1 block / gc 4, batch 2 x 32 px, 2 iterations, no workers, no VGG term (nothing is
downloaded). The suite runs offline whatever the machine: connections to anything but this
machine are refused. Blocks that need the network, a GPU or a cluster are listed in
``docs_blocks.RULES``: network ones must fail with the documented message (a CLI's stderr is part
of what is matched), the others are skipped with the reason shown (a repository file a skipped
line names must still exist). Anything else that fails, fails here with its file:line.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import shlex
import shutil
import socket
import sys
from pathlib import Path

import pytest
import tomllib
import torch

from docs_blocks import ROOT, RULES, Block, blocks, rule_for
from docs_workdir import STAND_INS, _data_tree, _materialise, _paths_in, _rewrite

pytest.importorskip("skimage")  # data=sample (the session's tiny trained generator)

BLOCKS = blocks()
HYDRA_APPS = {"train", "evaluate", "tradeoff", "interpolate"}
ARGPARSE = {
    "upscale",
    "convert",
    "export",
    "data.prepare",
    "data.degraded",
    "metrics.ma_forest",
    "demo",
    "hub",
}
TINY = {  # key -> value, applied to every training config where the key exists
    "model.generator.num_feat": 8,
    "model.generator.num_block": 1,
    "model.generator.num_grow_ch": 4,
    "model.discriminator.num_feat": 4,
    "model.perceptual_loss": None,  # no VGG19 weights offline
    "data.batch_size": 2,
    "data.gt_size": 32,
    "data.degradation.crop_pad_size": 48,  # Real-ESRGAN's 400 px degradation crops, shrunk
    "data.num_workers": 0,
    "data.val_num_workers": 0,
    "data.persistent_workers": False,
    "data.pin_memory": False,
    "trainer.max_steps": 2,
    "trainer.enable_progress_bar": False,
    "trainer.enable_model_summary": False,
    "trainer.accelerator": "cpu",
    "callbacks.progress_bar": None,
    "callbacks.model_summary": None,
}


def _scripts() -> dict[str, str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return {k: v.split(":")[0] for k, v in data["project"]["scripts"].items()}


@pytest.fixture(scope="session")
def docs_assets(tmp_path_factory) -> dict[str, Path]:
    """Built once per session: the data tree and a tiny generator + checkpoint trained 2 steps."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from esrgan_lit.config import config_dir
    from esrgan_lit.train import train

    root = tmp_path_factory.mktemp("docs_assets")
    data = _data_tree(root / "data")
    run = root / "run"
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=["experiment=demo", f"paths.data_dir={root / 'sample_data'}", "logger=none"],
            return_hydra_config=True,
        )
    GlobalHydra.instance().clear()
    with open_dict(cfg):
        cfg.paths.output_dir = cfg.hydra.runtime.output_dir = str(run)
        _shrink(cfg)
    HydraConfig().set_config(cfg)
    train(cfg)
    HydraConfig.instance().cfg = None
    return {
        "data": data,
        "generator": run / "generator.safetensors",
        "ckpt": run / "checkpoints" / "last.ckpt",
    }


def _match_stand_in(cfg) -> None:
    """A stand-in pretrained generator gets the architecture the (shrunk) config builds, so an
    SRResNet ablation fine-tunes from an SRResNet, as the page's earlier stage would give it."""
    import hydra

    from esrgan_lit.weights import save_generator

    path = (cfg.get("model") or {}).get("pretrained_generator")
    if path and Path(path).resolve() in STAND_INS:
        save_generator(hydra.utils.instantiate(cfg.model.generator), path)


def _shrink(cfg) -> None:
    from omegaconf import OmegaConf, open_dict

    with open_dict(cfg):
        for key, value in TINY.items():
            parent, _, leaf = key.rpartition(".")
            node = OmegaConf.select(cfg, parent) if parent else cfg
            if node is not None and leaf in node and node[leaf] is not None:
                node[leaf] = value
        if cfg.get("ckpt_path") or cfg.get("resume"):
            cfg.trainer.max_steps = 4  # the session checkpoint is at step 2


def _run_bash(block: Block, work: Path, assets: dict, monkeypatch) -> None:
    tokens = shlex.split(block.code, comments=True)
    while tokens and "=" in tokens[0] and not tokens[0].startswith("-"):
        k, _, v = tokens.pop(0).partition("=")
        monkeypatch.setenv(k, v)
    scripts = _scripts()
    if tokens[:2] == ["python", "-m"] and tokens[2].startswith("esrgan_lit."):
        entry, args = tokens[2].removeprefix("esrgan_lit."), tokens[3:]
    elif tokens and tokens[0] in scripts:
        entry, args = scripts[tokens[0]].removeprefix("esrgan_lit."), tokens[1:]
    else:
        raise AssertionError(f"{block.where}: no runner for {block.code!r}: add a docs_blocks.Rule")
    args = [_rewrite(a, work) for a in args]
    positional = [a for a in args if not a.startswith("-")]
    for tok, is_out in _paths_in(args):
        last_positional = entry in ("convert", "export") and positional and tok == positional[-1]
        rel = tok.removeprefix(f"{work}/")
        _materialise(rel, work, assets, is_out or bool(last_positional))
    module = importlib.import_module(f"esrgan_lit.{entry}")
    if entry in HYDRA_APPS:
        extra = ["hydra.sweeper.n_trials=2"] if any("hparams_search=" in a for a in args) else []
        monkeypatch.setattr(sys, "argv", [entry, *args, *extra])
        monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
        from hydra.core.global_hydra import GlobalHydra

        GlobalHydra.instance().clear()
        _exit_ok(module.main)
    elif entry in ARGPARSE:
        _exit_ok(lambda: module.main(args))
    else:
        raise AssertionError(f"{block.where}: esrgan_lit.{entry} has no runner here")


class _Tee(io.StringIO):
    """Keeps what a CLI prints to stderr (for the judge) and still shows it (pytest's capture)."""

    def __init__(self, shown) -> None:
        super().__init__()
        self.shown = shown

    def write(self, text: str) -> int:
        self.shown.write(text)
        return super().write(text)


def _exit_ok(fn) -> None:
    """``fn()`` exits 0; otherwise an AssertionError with the exit status and the stderr tail, so
    a "fails" rule is matched against the message the reader sees."""
    err = _Tee(sys.stderr)
    try:
        with contextlib.redirect_stderr(err):
            rc = fn()
    except SystemExit as exc:
        rc = exc.code
    assert rc in (None, 0), f"exit status {rc}; stderr: {err.getvalue()[-2000:]}"


def _local_only(monkeypatch) -> None:
    """Refuse connections off this machine, so "fails offline" rules hold on any CI box and no
    block downloads anything (127.0.0.1 / localhost still work: DDP, local servers)."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else str(host or "")
        if name not in ("localhost", "127.0.0.1", "::1", "") and not name.startswith("127."):
            raise socket.gaierror(socket.EAI_NONAME, f"{name}: offline (docs test)")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def _run_python(block: Block, work: Path, assets: dict) -> None:
    import re

    for literal in re.findall(r"[\"']([\w./-]+\.\w+)[\"']", block.code):
        _materialise(
            literal, work, assets, output=literal.endswith((".png", ".jpg")) and "_x4." in literal
        )
    code = compile(block.code, block.where, "exec")
    exec(code, {"__name__": "__docs__"})


@pytest.fixture
def shrink_training(monkeypatch):
    """Every ``train(cfg)``, however reached, runs on the tiny settings."""
    import esrgan_lit.train as train_mod

    real = train_mod.train

    def tiny_train(cfg):
        _shrink(cfg)
        _match_stand_in(cfg)
        return real(cfg)

    monkeypatch.setattr(train_mod, "train", tiny_train)


def _repo_files_exist(block: Block) -> None:
    """A skipped line that names a file of this repository (``sweeps/wandb_sweep.yaml``,
    ``scripts/x.sh``) still goes stale when the file moves: it must exist."""
    if block.lang != "bash":
        return
    for tok in shlex.split(block.code, comments=True):
        path = ROOT / tok
        made = tok.split("/")[0] in ("outputs", "data", "multirun", "artifacts", "wandb")
        made = made or Path(tok).suffix not in (".yaml", ".yml", ".py", ".sh", ".toml", ".md")
        if (
            "=" not in tok
            and "/" in tok
            and tok[0] not in "/~"
            and not made
            and path.parent.is_dir()
        ):
            assert path.exists(), f"{block.where}: names {tok}, which is not in the repository"


def _stand_in_export(spec: str, work: Path) -> None:
    """``PATH <- pkg.mod.Class(args)``: that network, exported as training would export it."""
    from esrgan_lit.callbacks.export import save_any_generator

    dst, _, call = (part.strip() for part in spec.partition("<-"))
    module, _, rest = call.partition("(")[0].rpartition(".")
    cls = getattr(importlib.import_module(module), rest)
    net = eval(f"cls({call.partition('(')[2]}", {"cls": cls})
    (work / dst).parent.mkdir(parents=True, exist_ok=True)
    save_any_generator(net, work / dst)


def _page_files(page: str) -> list[Block]:
    return [b for b in BLOCKS if b.page == page and b.file_name]


@pytest.mark.parametrize("block", BLOCKS, ids=[b.where for b in BLOCKS])
def test_doc_block_runs(block, tmp_path, monkeypatch, docs_assets, shrink_training) -> None:
    rule = rule_for(block)
    if rule and rule.action == "skip":
        _repo_files_exist(block)
        pytest.skip(f"{block.where}: {rule.why}")
    if rule and rule.action == "signatures":
        from test_docs_signatures import check_signatures

        check_signatures(block, rule.why)
        return
    work = tmp_path / "work"
    shutil.copytree(docs_assets["data"], work / "data")
    for f in _page_files(block.page):  # files the page has the reader save (mypkg/...)
        dst = work / f.file_name
        dst.parent.mkdir(parents=True, exist_ok=True)
        (dst.parent / "__init__.py").touch()
        dst.write_text(f.code + "\n")
    monkeypatch.chdir(work)
    monkeypatch.syspath_prepend(str(work))
    STAND_INS.clear()
    for env in ("ESRGAN_LIT_DATA_DIR", "WANDB_API_KEY"):
        monkeypatch.delenv(env, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    _local_only(monkeypatch)
    try:
        if rule and rule.action == "stand-in":
            _stand_in_export(rule.why, work)
        if rule and rule.action == "after":
            for first in [b for b in BLOCKS if b.page == block.page and b.line < block.line]:
                if first.lang == "bash" and rule.why in first.code:
                    _run_bash(first, work, docs_assets, monkeypatch)
        if block.lang == "bash":
            _run_bash(block, work, docs_assets, monkeypatch)
        elif block.lang == "python":
            _run_python(block, work, docs_assets)
        error = None
    except BaseException as exc:
        error = exc
    finally:
        for name in [m for m in sys.modules if m.split(".")[0] in {"mypkg"}]:
            del sys.modules[name]
        torch.set_num_threads(1)
    _judge(block, rule, error)


def _judge(block: Block, rule, error: BaseException | None) -> None:
    import re

    text = f"{type(error).__name__}: {error}" if error else ""
    if rule and rule.action == "fails":
        assert error is not None, f"{block.where}: documented to fail ({rule.why}) but ran"
        assert re.search(rule.why, text), f"{block.where}: failed without {rule.why!r}: {text}"
    elif rule and rule.action == "xfail":
        if error is None:
            raise AssertionError(f"{block.where}: fixed ({rule.why})? remove its docs_blocks rule")
        pytest.xfail(f"{block.where}: {rule.why}: {text[:200]}")
    elif error is not None:
        raise AssertionError(f"{block.where}: {block.code[:300]}\n-> {text}") from error


def test_every_rule_matches_a_block() -> None:
    """A rule for a line the docs no longer have is stale: remove or update it."""
    stale = [r for r in RULES if not any(rule_for(b) == r for b in BLOCKS)]
    assert not stale, f"rules that match no doc block: {stale}"


def test_runner_fails_a_broken_line(tmp_path, monkeypatch, docs_assets, shrink_training) -> None:
    """Not vacuous: a documented command that stopped working fails with its file:line."""
    bad = Block("docs/x.md", 7, "bash", "python -m esrgan_lit.interpolate psnr=a.pth gan=b.pth")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AssertionError, match=r"docs/x\.md:7"):
        try:
            _run_bash(bad, tmp_path, docs_assets, monkeypatch)
            error = None
        except BaseException as exc:
            error = exc
        _judge(bad, None, error)
    unknown = Block("docs/x.md", 9, "bash", "frobnicate --all")
    with pytest.raises(AssertionError, match=r"docs/x\.md:9: no runner"):
        _run_bash(unknown, tmp_path, docs_assets, monkeypatch)
    assert os.environ.get("HYDRA_FULL_ERROR") == "1"


def test_offline_and_stale_skips_are_caught(monkeypatch) -> None:
    """The suite is offline on any machine, and a skipped line naming a moved file fails."""
    _local_only(monkeypatch)
    with pytest.raises(OSError, match="offline"):
        socket.create_connection(("github.com", 443), timeout=1)
    socket.getaddrinfo("127.0.0.1", 80)  # local servers still work
    moved = Block("docs/x.md", 3, "bash", "wandb sweep sweeps/no_such_sweep.yaml")
    with pytest.raises(AssertionError, match=r"docs/x\.md:3: names sweeps/no_such_sweep\.yaml"):
        _repo_files_exist(moved)
    _repo_files_exist(Block("docs/x.md", 4, "bash", "wandb sweep sweeps/wandb_sweep.yaml"))


def test_a_cli_error_message_is_judged(monkeypatch) -> None:
    """A "fails" rule matches the CLI's stderr, not just its exit status."""

    def cli() -> int:
        print("error: could not reach the moon", file=sys.stderr)
        return 2

    with pytest.raises(AssertionError, match="exit status 2; stderr: error: could not reach"):
        _exit_ok(cli)


def test_comment_lines_are_prose_not_commands() -> None:
    """``# stage 1, ...`` inside a bash block is for the reader; it is neither run nor skipped."""
    page = ROOT / "docs" / "realesrgan.md"
    assert "\n# stage 1" in page.read_text(encoding="utf-8")  # the page has such lines
    commented = [b.where for b in BLOCKS if b.lang == "bash" and b.code.lstrip().startswith("#")]
    assert not commented, commented

"""W&B model artifacts: logged at export (offline, read back from the run file), ``best`` by the
monitored metric, lineage, and ``wandb:`` references wherever a generator path is accepted."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import wandb

from esrgan_lit.archs import RRDBNet
from esrgan_lit.callbacks import ExportEvent, WandbModelArtifacts
from esrgan_lit.callbacks import wandb_artifacts as mod
from esrgan_lit.weights import load_generator, save_generator
from esrgan_lit.weights.wandb_ref import artifact_name, resolve_wandb_ref
from wandb_records import artifacts, run_files

REF = "wandb:me/esrgan-lit/generator-abc:best"


@pytest.fixture(autouse=True)
def _wandb_dirs(tmp_path, monkeypatch):
    """W&B's staging copies and downloads go to the test's folder, not the home directory."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wandb-data"))
    monkeypatch.setenv("WANDB_ARTIFACT_DIR", str(tmp_path / "artifacts"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))


def _tiny() -> RRDBNet:
    torch.manual_seed(0)
    return RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)


class FakeArtifact:
    def __init__(self, folder: Path, metadata: dict | None = None) -> None:
        self.folder, self.metadata = folder, metadata or {}

    def download(self, root: str | None = None) -> str:
        return str(self.folder)


@pytest.fixture
def fake_api(tmp_path, monkeypatch):
    """``wandb.Api().artifact(name)`` serves a local folder holding a tiny generator."""
    folder = tmp_path / "artifact"
    net = _tiny()
    save_generator(net, folder / "generator.safetensors")
    asked: list[str] = []

    class Api:
        def artifact(self, name: str, type: str | None = None) -> FakeArtifact:
            asked.append(name)
            return FakeArtifact(folder)

    monkeypatch.setattr(wandb, "Api", Api)
    return SimpleNamespace(net=net, asked=asked, folder=folder)


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ---- wandb: references -------------------------------------------------------------------


def test_reference_names_and_non_references():
    assert artifact_name("wandb:e/p/gen:v3") == "e/p/gen:v3"
    assert artifact_name("wandb:e/p/gen") == "e/p/gen:latest"
    assert resolve_wandb_ref("runs/a/generator.safetensors") is None
    assert resolve_wandb_ref(None) is None
    with pytest.raises(ValueError, match="wandb:ENTITY/PROJECT/NAME:ALIAS"):
        artifact_name("wandb:")


def test_load_generator_and_evaluate_accept_a_reference(fake_api):
    from esrgan_lit.evaluate import load_method

    assert _same(load_generator(REF), fake_api.net)
    gen, label = load_method(REF, torch.device("cpu"))
    assert _same(gen, fake_api.net) and label == "generator-abc@best"
    assert fake_api.asked == ["me/esrgan-lit/generator-abc:best"] * 2


def test_pretrained_generator_accepts_a_reference(fake_api):
    from esrgan_lit.lit.base import load_pretrained_into

    net = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)
    assert not _same(net, fake_api.net)
    load_pretrained_into(net, REF)
    assert _same(net, fake_api.net)


def test_upscale_cli_accepts_a_reference(fake_api, tmp_path):
    from PIL import Image

    from esrgan_lit.upscale import main

    Image.new("RGB", (8, 6), (200, 40, 90)).save(tmp_path / "in.png")
    assert main([str(tmp_path / "in.png"), "-o", str(tmp_path / "out"), "--model", REF]) == 0
    assert Image.open(tmp_path / "out" / "in.png").size == (32, 24)


def test_unreachable_or_foreign_artifacts_are_clear_errors(fake_api, monkeypatch):
    (fake_api.folder / "generator.safetensors").rename(fake_api.folder / "a.pth")
    (fake_api.folder / "b.pth").write_bytes(b"x")
    with pytest.raises(FileNotFoundError, match=r"no generator.safetensors and 2 other"):
        resolve_wandb_ref(REF)

    class Down:
        def artifact(self, name, type=None):
            raise RuntimeError("could not reach api.wandb.ai")

    monkeypatch.setattr(wandb, "Api", Down)
    with pytest.raises(FileNotFoundError, match=r"wandb:me/.*generator-abc:best.*offline"):
        load_generator(REF)


# ---- the artifact callback ---------------------------------------------------------------


class FakeRun:
    def __init__(self, offline: bool = True) -> None:
        self.id, self.entity, self.project = "abc", "me", "esrgan-lit"
        self.settings = SimpleNamespace(_offline=offline)
        self.config = SimpleNamespace(
            as_dict=lambda: {"model": {"lr": 1e-4}, "_wandb": {}},
            update=lambda d, allow_val_change=False: self.updates.append(d),
        )
        self.updates: list[dict] = []
        self.logged: list[tuple[wandb.Artifact, list[str]]] = []
        self.used: list[str] = []

    def log_artifact(self, artifact, aliases):
        self.logged.append((artifact, list(aliases)))

    def use_artifact(self, name):
        self.used.append(name)


def _event(out: Path, kind: str, step: int, psnr: float | None, metrics_step: int | None):
    metrics = {} if psnr is None else {"Set5": {"psnr_y": psnr}, "Set14": {"psnr_y": psnr - 2}}
    (out / "metrics.json").write_text(json.dumps(metrics))
    path = out / ("generator.safetensors" if kind == "generator" else "metrics.json")
    return ExportEvent(kind, path, step, out, metrics, metrics_step)  # type: ignore[arg-type]


@pytest.fixture
def exported(tmp_path) -> Path:
    save_generator(_tiny(), tmp_path / "generator.safetensors")
    return tmp_path


def test_best_alias_follows_the_monitored_metric_and_resume(exported, monkeypatch):
    run = FakeRun()
    monkeypatch.setattr(mod, "_wandb_runs", lambda trainer: [run])
    trainer = SimpleNamespace(is_global_zero=True)
    cb = WandbModelArtifacts(monitor="psnr_y")
    for step, psnr in [(10, 25.0), (20, 24.0), (30, 26.0)]:
        cb.on_export(trainer, None, _event(exported, "generator", step, psnr, step))
    aliases = [a for _, a in run.logged]
    assert aliases == [
        ["latest", "step-10", "best"],
        ["latest", "step-20"],  # 23.0 mean < 24.0: not the best
        ["latest", "step-30", "best"],
    ]
    art = run.logged[-1][0]
    assert art.name == "generator-abc" and art.type == "model"
    assert set(art.manifest.entries) == {"generator.safetensors", "metrics.json", "config.yaml"}
    assert art.metadata["monitor_value"] == pytest.approx(25.0)
    assert art.metadata["metrics"]["Set5/psnr_y"] == 26.0
    # lower is better for LPIPS; resume keeps the best value
    lp = WandbModelArtifacts(monitor="Set5/lpips", name="shared")
    lp.load_state_dict({"best": 0.2})
    ev = _event(exported, "generator", 40, None, 40)
    lp.on_export(trainer, None, ExportEvent("generator", ev.path, 40, exported,
                                            {"Set5": {"lpips": 0.1}}, 40))  # fmt: skip
    assert run.logged[-1][1][-1] == "best" and run.logged[-1][0].name == "shared"


def test_stale_metrics_are_relogged_after_the_final_validation(exported, monkeypatch):
    run = FakeRun()
    monkeypatch.setattr(mod, "_wandb_runs", lambda trainer: [run])
    trainer = SimpleNamespace(is_global_zero=True)
    cb = WandbModelArtifacts()
    cb.on_export(trainer, None, _event(exported, "generator", 7, 20.0, 5))  # last val at step 5
    cb.on_export(trainer, None, _event(exported, "metrics", 6, 21.0, 6))  # not this generator's
    cb.on_export(trainer, None, _event(exported, "metrics", 7, 22.0, 7))  # its final validation
    cb.on_export(trainer, None, _event(exported, "metrics", 7, 23.0, 7))  # nothing pending
    assert [a.metadata["metrics_step"] for a, _ in run.logged] == [5, 7]
    assert run.logged[1][0].metadata["monitor_value"] == pytest.approx(21.0)


def test_no_wandb_logger_is_a_no_op(exported, monkeypatch):
    monkeypatch.setattr(mod, "_wandb_runs", lambda trainer: [])
    cb = WandbModelArtifacts()
    cb.on_export(SimpleNamespace(), None, _event(exported, "generator", 1, 20.0, 1))
    assert cb.best is None
    with pytest.raises(ValueError, match="mode must be auto, min or max"):
        WandbModelArtifacts(mode="up")


@pytest.mark.parametrize("offline", [False, True])
def test_lineage_declares_the_pretrained_reference(monkeypatch, offline):
    run = FakeRun(offline=offline)
    monkeypatch.setattr(mod, "_wandb_runs", lambda trainer: [run])
    cb = WandbModelArtifacts(use_artifacts=[REF, None, "runs/a/generator.safetensors"])
    cb.on_fit_start(SimpleNamespace(is_global_zero=True), None)
    assert run.updates == [{"inputs/artifacts": [REF]}]
    assert run.used == ([] if offline else ["me/esrgan-lit/generator-abc:best"])


# ---- through the training entry point, offline, read back from the run file --------------


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_training_logs_the_generator_artifact_offline(tmp_path):
    pytest.importorskip("skimage")
    from test_train import run as train_run

    out = tmp_path / "run"
    overrides = ["experiment=psnr_pretrain", "trainer.max_steps=2", "logger=wandb"]
    train_run(out, overrides, str(tmp_path / "data"))
    run_id = (out / "wandb_run_id.txt").read_text().strip()
    (run_file,) = run_files(out)
    arts = artifacts(run_file)
    assert arts, "no artifact record in the offline run"
    last = arts[-1]
    assert last.name == f"generator-{run_id}" and last.type == "model"
    assert {"latest", "best", "step-2"} <= set(last.aliases)
    files = {c.path: c for c in last.manifest.contents}
    assert set(files) == {"generator.safetensors", "metrics.json", "config.yaml"}
    meta = json.loads(last.metadata)
    assert meta["step"] == meta["metrics_step"] == 2
    assert meta["monitor"] == "psnr_y"
    saved = json.loads((out / "metrics.json").read_text())
    assert meta["monitor_value"] == pytest.approx(saved["sample"]["psnr_y"])
    staged = Path(files["config.yaml"].local_path).read_text()
    assert "max_steps: 2" in staged  # the resolved run config

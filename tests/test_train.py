"""End-to-end training runs on the built-in sample photos (tiny nets, a few steps)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import open_dict
from safetensors.torch import load_file

import wandb_records
from esrgan_lit.train import train
from train_helpers import TINY, compose_cfg

pytest.importorskip("skimage")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
    """One sample split for the whole module (built once, reused by every run)."""
    return str(tmp_path_factory.mktemp("data"))


def run(out: Path, overrides: list[str], data_dir: str):
    return train(compose_cfg(out, overrides, data_dir))


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(run_dir / "generator.safetensors")


def _ckpt_generator(run_dir: Path) -> dict[str, torch.Tensor]:
    sd = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    return {k: v for k, v in sd.items() if k.startswith(("generator.", "discriminator."))}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_outputs_determinism_and_gan_stage(tmp_path, data_dir):
    psnr = [
        "experiment=psnr_pretrain",
        "trainer.max_steps=3",
        "logger=csv",
        "trainer.log_every_n_steps=1",
    ]
    metrics, objs = run(tmp_path / "a", psnr, data_dir)
    a = tmp_path / "a"
    assert objs["trainer"].global_step == 3
    for name in ("checkpoints/last.ckpt", "generator.safetensors", "metrics.json"):
        assert (a / name).is_file(), name
    saved = json.loads((a / "metrics.json").read_text())
    assert list(saved) == ["sample"]
    assert saved["sample"]["psnr_y"] == pytest.approx(metrics["val/sample/psnr_y"])
    assert 5.0 < saved["sample"]["psnr_y"] < 60.0
    assert "train/l_pix" in (a / "csv" / "metrics.csv").read_text().splitlines()[0]
    # same command -> same weights
    run(tmp_path / "b", psnr, data_dir)
    assert _same(_weights(a), _weights(tmp_path / "b"))
    assert _same(_ckpt_generator(a), _ckpt_generator(tmp_path / "b"))
    # a different seed gives different weights
    run(tmp_path / "c", [*psnr, "seed=7"], data_dir)
    assert not _same(_weights(a), _weights(tmp_path / "c"))

    # GAN stage from the PSNR model: max_steps counts generator iterations
    gan = [
        "experiment=esrgan",
        f"model.pretrained_generator={a / 'generator.safetensors'}",
        "model.perceptual_loss=null",
        "model.discriminator.num_feat=4",
        "trainer.max_steps=3",
        "logger=none",
    ]
    metrics, objs = run(tmp_path / "g", gan, data_dir)
    model = objs["model"]
    assert objs["trainer"].global_step == 3
    opt_g, opt_d = model.optimizers()
    for opt in (opt_g.optimizer, opt_d.optimizer):
        assert {float(s["step"]) for s in opt.state_dict()["state"].values()} == {3.0}
    assert torch.isfinite(torch.tensor(list(metrics.values()))).all()
    assert (tmp_path / "g" / "metrics.json").is_file()


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("stage", ["psnr", "gan"])
def test_resume_equals_straight_run(tmp_path, data_dir, stage):
    """2N straight == N + resume + N (mid-epoch: data order, EMA, optimisers, schedulers)."""
    base = ["logger=none", "callbacks.model_checkpoint.every_n_train_steps=1000"]
    if stage == "psnr":
        base += ["experiment=psnr_pretrain", "model.scheduler.step_size=3"]
    else:
        base += [
            "experiment=esrgan",
            "model.pretrained_generator=null",
            "model.perceptual_loss=null",
            "model.discriminator.num_feat=4",
            "model.scheduler_g.milestones=[3]",
            "model.scheduler_d.milestones=[3]",
        ]
    run(tmp_path / "straight", [*base, "trainer.max_steps=4", "final_validate=false"], data_dir)
    run(tmp_path / "resumed", [*base, "trainer.max_steps=2", "final_validate=false"], data_dir)
    ckpt = tmp_path / "resumed" / "checkpoints" / "last.ckpt"
    # resuming from DIR/checkpoints/last.ckpt continues DIR, whatever the new run dir is
    _, objs = run(
        tmp_path / "elsewhere", [*base, "trainer.max_steps=4", f"ckpt_path={ckpt}"], data_dir
    )
    assert objs["trainer"].global_step == 4
    assert _same(_ckpt_generator(tmp_path / "straight"), _ckpt_generator(tmp_path / "resumed"))
    assert _same(_weights(tmp_path / "straight"), _weights(tmp_path / "resumed"))
    assert not (tmp_path / "elsewhere" / "generator.safetensors").exists()
    # resume=latest finds DIR/checkpoints/last.ckpt by itself
    _, objs = run(tmp_path / "resumed", [*base, "trainer.max_steps=5", "resume=latest"], data_dir)
    assert objs["trainer"].global_step == 5


def test_missing_data_error_says_how_to_get_it(tmp_path):
    empty = tmp_path / "nodata"
    empty.mkdir()
    cfg = compose_cfg(tmp_path / "run", ["experiment=psnr_pretrain", "logger=none"], str(empty))
    with open_dict(cfg):  # the paper's default data (DIV2K), not the sample photos
        cfg.data = compose_cfg(tmp_path / "run", ["data=div2k"], str(empty)).data
    with pytest.raises(Exception) as info:
        train(cfg)
    msg = str(info.value)
    assert "data.download=true" in msg and "data=sample" in msg


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_ddp_cpu_two_processes(tmp_path, data_dir):
    """gloo, 2 ranks x batch 2 == 1 rank x batch 4 (the same samples, averaged gradients);
    the GAN stage runs with G and D synchronised separately; validation equals one process."""
    fork = ["trainer=ddp_cpu", "trainer.devices=2", "+trainer.strategy.start_method=fork"]
    psnr = ["experiment=psnr_pretrain", "logger=none", "trainer.max_steps=2"]
    ddp, single = tmp_path / "ddp", tmp_path / "single"
    run(ddp, [*psnr, *fork, "data.batch_size=2"], data_dir)
    run(single, [*psnr, "data.batch_size=4"], data_dir)
    a, b = _ckpt_generator(ddp), _ckpt_generator(single)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-6)
    m_ddp = json.loads((ddp / "metrics.json").read_text())["sample"]
    m_one = json.loads((single / "metrics.json").read_text())["sample"]
    assert m_ddp["psnr_y"] == pytest.approx(m_one["psnr_y"], abs=1e-3)

    gan = tmp_path / "gan"
    metrics, _ = run(gan, ["experiment=esrgan", *fork, "trainer.max_steps=2",
                              "logger=none", "model.perceptual_loss=null",
                              "model.discriminator.num_feat=4",
                              f"model.pretrained_generator={ddp / 'generator.safetensors'}"],
                        data_dir)  # fmt: skip
    ckpt = torch.load(gan / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 2  # generator iterations, not G + D optimizer steps
    for key in ("train/l_gan", "train/l_d_real", "train/l_d_fake", "train/l_pix"):
        assert math.isfinite(metrics[key]), key
    # the DDP validation (sharded, unpadded) equals a single-process evaluation of its generator
    from esrgan_lit.metrics import PSNR
    from esrgan_lit.weights import load_generator

    gen = load_generator(gan / "generator.safetensors")
    dm = instantiate(compose_cfg(tmp_path / "eval", ["experiment=psnr_pretrain"], data_dir).data)
    dm.prepare_data()
    dm.setup("validate")
    metric = PSNR(crop_border=4)
    with torch.no_grad():
        for batch in dm.val_dataloader()[0]:
            metric.update(gen(batch["lq"]).clamp(0, 1), batch["gt"])
    m_gan = json.loads((gan / "metrics.json").read_text())["sample"]
    assert m_gan["psnr_y"] == pytest.approx(float(metric.compute()), abs=1e-4)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_multirun_wandb_offline_grouped(tmp_path, data_dir, monkeypatch):
    """``-m seed=1,2 logger=wandb`` offline: one W&B run per job, grouped by the sweep."""
    from esrgan_lit.train import main

    sweep = tmp_path / "sweep"
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setattr(sys, "argv", [
        "esrgan-train", "-m", "experiment=psnr_pretrain", *TINY, f"paths.data_dir={data_dir}",
        "trainer.max_steps=2", "logger=wandb", "seed=1,2", f"hydra.sweep.dir={sweep}",
    ])  # fmt: skip
    import esrgan_lit.train as train_mod

    seen = []

    def recording_train(cfg):
        metrics, objs = train(cfg)
        seen.append(dict(objs["logger"][0]._wandb_init))
        return metrics, objs

    monkeypatch.setattr(train_mod, "train", recording_train)
    GlobalHydra.instance().clear()
    main()
    assert [s["group"] for s in seen] == [sweep.name, sweep.name]
    assert len({s["id"] for s in seen}) == 2
    ids = []
    for job in ("0", "1"):
        d = sweep / job
        assert (d / "metrics.json").is_file() and (d / "generator.safetensors").is_file()
        run_id = (d / "wandb_run_id.txt").read_text().strip()
        runs = list((d / "wandb").glob("offline-run-*"))
        assert [r.name.rsplit("-", 1)[-1] for r in runs] == [run_id]
        ids.append(run_id)
        assert (runs[0] / f"run-{run_id}.wandb").is_file()
        # best-value summaries are in the run's record stream (protobuf; no offline reader API);
        # records() waits for the exit record: wandb.finish() returns before the file is flushed
        run_file = runs[0] / f"run-{run_id}.wandb"
        wandb_records.records(run_file)
        assert b"best/val/sample/psnr_y" in run_file.read_bytes()
        # image panels LR | bicubic | SR | HR, one per held-out photo
        assert len(list(runs[0].glob("files/media/images/val/*.png"))) == 2
    assert len(set(ids)) == 2

"""LightningModules and callbacks on a tiny in-memory dataset (no data package needed)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from safetensors.torch import load_file
from torch.utils.data import DataLoader, Dataset

from esrgan_lit.archs import RRDBNet, VGGStyleDiscriminator
from esrgan_lit.callbacks import AtomicModelCheckpoint, ExportOutputs, GeneratorEMA, SRMetrics
from esrgan_lit.lit import ESRGANModule, NonFiniteStepsError, PSNRModule
from esrgan_lit.losses import GANLoss, PixelLoss


class _Pairs(Dataset):
    def __init__(self, n: int, size: int, seed: int, names: bool = False) -> None:
        g = torch.Generator().manual_seed(seed)
        self.gt = torch.rand(n, 3, size, size, generator=g)
        self.lq = torch.nn.functional.avg_pool2d(self.gt, 4)
        self.names = names

    def __len__(self) -> int:
        return len(self.gt)

    def __getitem__(self, i: int) -> dict:
        item = {"lq": self.lq[i], "gt": self.gt[i]}
        if self.names:
            item.update(name=f"im{i}", grey=False)
        return item


class _Data(L.LightningDataModule):
    def __init__(self, nan: bool = False) -> None:
        super().__init__()
        self.val_set_names = ["setA", "setB"]
        self.nan = nan

    def train_dataloader(self) -> DataLoader:
        ds = _Pairs(4, 32, 0)
        if self.nan:
            ds.lq[:] = float("nan")
        return DataLoader(ds, batch_size=2)

    def val_dataloader(self) -> list[DataLoader]:
        return [
            DataLoader(_Pairs(2, 40, 1, names=True), batch_size=1),
            DataLoader(_Pairs(1, 48, 2, names=True), batch_size=1),
        ]


def _gen() -> RRDBNet:
    return RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)


def _adam(lr: float = 1e-3):
    return functools.partial(torch.optim.Adam, lr=lr, betas=(0.9, 0.999))


def _psnr_module(**kw) -> PSNRModule:
    sched = functools.partial(torch.optim.lr_scheduler.StepLR, step_size=2, gamma=0.5)
    return PSNRModule(_gen(), _adam(), sched, **kw)


def _gan_module(**kw) -> ESRGANModule:
    ms = functools.partial(torch.optim.lr_scheduler.MultiStepLR, milestones=[2], gamma=0.5)
    return ESRGANModule(
        _gen(),
        VGGStyleDiscriminator(num_feat=4, input_size=32),
        _adam(1e-3),
        _adam(1e-3),
        ms,
        ms,
        perceptual_loss=None,
        **kw,
    )


def _fit(model, steps: int, tmp: Path, callbacks=(), data=None, ckpt=None, val=1000) -> L.Trainer:
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=steps,
        logger=False,
        callbacks=list(callbacks),
        enable_progress_bar=False,
        enable_model_summary=False,
        val_check_interval=val,
        check_val_every_n_epoch=None,
        num_sanity_val_steps=0,
        default_root_dir=tmp,
        deterministic=True,
    )
    trainer.fit(model, datamodule=data or _Data(), ckpt_path=ckpt)
    return trainer


def _adam_steps(opt) -> list[float]:
    return sorted({float(s["step"]) for s in opt.state_dict()["state"].values()})


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_psnr_max_steps_counts_iterations(tmp_path):
    L.seed_everything(0)
    m = _psnr_module()
    tr = _fit(m, 5, tmp_path)
    assert tr.global_step == 5
    assert _adam_steps(m.optimizers().optimizer) == [5.0]
    sch = m.lr_schedulers()
    assert sch.last_epoch == 5  # stepped once per iteration
    assert m.optimizers().param_groups[0]["lr"] == pytest.approx(1e-3 * 0.5**2)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("warmup", [0, 2])
def test_esrgan_max_steps_are_generator_iterations(tmp_path, warmup):
    """Lightning counts every optimizer step (#17958); here max_steps=N is N iterations."""
    L.seed_everything(0)
    m = _gan_module(d_warmup_iters=warmup)
    tr = _fit(m, 5, tmp_path)
    opt_g, opt_d = m.optimizers()
    assert tr.global_step == 5
    assert _adam_steps(opt_g.optimizer) == [5.0 - warmup]
    assert _adam_steps(opt_d.optimizer) == [5.0]
    assert [s.last_epoch for s in m.lr_schedulers()] == [5, 5]
    assert opt_g.param_groups[0]["lr"] == pytest.approx(5e-4)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_d_warmup_generator_forward_builds_no_graph(tmp_path):
    """During the D warm-up only sr.detach() is used: the G forward runs without autograd."""
    L.seed_everything(0)
    m = _gan_module(d_warmup_iters=2)
    grad_on: list[bool] = []
    m.generator.register_forward_hook(lambda mod, inp, out: grad_on.append(out.requires_grad))
    _fit(m, 3, tmp_path)
    assert grad_on == [False, False, True]


def _reference_iteration(g, d, lq, gt, opt_g, opt_d, gan, pix, w_pix, w_gan):
    """One ESRGAN iteration written as a plain loop (the oracle for the LightningModule)."""
    for p in d.parameters():
        p.requires_grad_(False)
    sr = g(lq)
    fake = d(sr)
    real = d(gt).detach()
    loss = w_pix * pix(sr, gt) + w_gan * gan.generator_loss(fake, real)
    opt_g.zero_grad()
    loss.backward()
    opt_g.step()
    for p in d.parameters():
        p.requires_grad_(True)
    opt_d.zero_grad()
    fake_d = fake.detach()
    real_d = d(gt)
    gan.discriminator_loss_real(real_d, fake_d).backward()
    fake_d2 = d(sr.detach())
    gan.discriminator_loss_fake(fake_d2, real_d.detach()).backward()
    opt_d.step()


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_esrgan_step_matches_plain_loop(tmp_path):
    L.seed_everything(1)
    m = _gan_module()
    m.scheduler_factories = (None, None)
    g_ref = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)
    g_ref.load_state_dict(m.generator.state_dict())
    d_ref = VGGStyleDiscriminator(num_feat=4, input_size=32)
    d_ref.load_state_dict(m.discriminator.state_dict())
    _fit(m, 2, tmp_path)
    opt_g = torch.optim.Adam(g_ref.parameters(), lr=1e-3)
    opt_d = torch.optim.Adam(d_ref.parameters(), lr=1e-3)
    loader = _Data().train_dataloader()
    for batch, _ in zip(loader, range(2)):
        _reference_iteration(
            g_ref, d_ref, batch["lq"], batch["gt"], opt_g, opt_d, GANLoss("ragan"),
            PixelLoss("l1"), 1e-2, 5e-3,
        )  # fmt: skip
    for a, b in zip(m.generator.state_dict().values(), g_ref.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    for a, b in zip(m.discriminator.state_dict().values(), d_ref.state_dict().values()):
        torch.testing.assert_close(a.float(), b.float(), rtol=1e-5, atol=1e-6)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_nonfinite_steps_are_skipped_then_stop(tmp_path):
    L.seed_everything(0)
    m = _psnr_module(max_nonfinite_steps=3)
    before = {k: v.clone() for k, v in m.generator.state_dict().items()}
    with pytest.raises(NonFiniteStepsError, match="3 iterations in a row"):
        _fit(m, 10, tmp_path, data=_Data(nan=True))
    assert m.nonfinite_total == 3
    for k, v in m.generator.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} changed by a non-finite step"


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_gradient_clipping_bounds_the_update(tmp_path):
    L.seed_everything(0)
    m = PSNRModule(_gen(), functools.partial(torch.optim.SGD, lr=1.0), None, grad_clip=1e-3)
    before = torch.cat([p.detach().clone().flatten() for p in m.generator.parameters()])
    _fit(m, 1, tmp_path)
    after = torch.cat([p.detach().flatten() for p in m.generator.parameters()])
    assert 0 < (after - before).norm() <= 1e-3 * (1 + 1e-4)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_ema_export_and_per_set_metrics(tmp_path):
    """decay 0.5 (no warm-up), one step: EMA = (w0 + w1) / 2 is validated and exported."""
    from esrgan_lit.metrics import PSNR

    L.seed_everything(0)
    m = _psnr_module()
    w0 = {k: v.clone() for k, v in m.generator.state_dict().items()}
    cbs = [
        GeneratorEMA(decay=0.5, warmup=False),
        SRMetrics(["psnr_y", "ssim_y"]),
        ExportOutputs(str(tmp_path)),
    ]
    tr = _fit(m, 1, tmp_path, callbacks=cbs)
    tr.validate(m, datamodule=_Data(), verbose=False)
    w1 = m.generator.state_dict()
    ema = load_file(tmp_path / "generator.safetensors")
    for k in w1:
        torch.testing.assert_close(ema[k], 0.5 * (w0[k] + w1[k]))
    # Validation used the EMA weights and reports one entry per named set.
    ref = _gen()
    ref.load_state_dict(ema)
    metric = PSNR(crop_border=4)
    for batch in _Data().val_dataloader()[0]:
        metric.update(ref(batch["lq"]).clamp(0, 1), batch["gt"])
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert set(saved) == {"setA", "setB"}
    assert saved["setA"]["psnr_y"] == pytest.approx(float(metric.compute()), abs=1e-5)
    assert tr.callback_metrics["val/setB/ssim_y"] == pytest.approx(saved["setB"]["ssim_y"])
    # after validation the raw weights are back in place
    for k, v in m.generator.state_dict().items():
        assert torch.equal(v, w1[k])


def _callbacks(tmp: Path) -> list:
    return [
        GeneratorEMA(decay=0.9),
        AtomicModelCheckpoint(
            dirpath=tmp / "checkpoints", save_last=True, save_top_k=0, every_n_train_steps=1000
        ),
    ]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("kind", ["psnr", "gan"])
def test_resume_equals_straight_run(tmp_path, kind):
    """4 straight == 2 + resume + 2: nets, optimisers, schedulers, EMA and step restored.

    (2 iterations = one epoch here; resuming mid-epoch data order is the data module's job and
    is tested end to end in test_train.py.)"""
    build = _psnr_module if kind == "psnr" else _gan_module

    def run(steps, d, ckpt=None):
        L.seed_everything(0)
        m = build()
        cbs = _callbacks(d)
        tr = _fit(m, steps, d, callbacks=cbs, ckpt=ckpt)
        return m, cbs[0], tr

    straight, ema_s, _ = run(4, tmp_path / "a")
    run(2, tmp_path / "b")
    last = tmp_path / "b" / "checkpoints" / "last.ckpt"
    assert last.is_file()
    resumed, ema_r, tr = run(4, tmp_path / "b", ckpt=str(last))
    assert tr.global_step == 4
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k
    for k, v in ema_s.shadow.items():
        assert torch.equal(v, ema_r.shadow[k]), k
    # the checkpoint also carries the EMA as generator_ema.* for weight loaders
    ckpt = torch.load(last, weights_only=True)
    assert any(k.startswith("generator_ema.") for k in ckpt["state_dict"])


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    L.seed_everything(0)
    m = _psnr_module()
    _fit(m, 2, tmp_path, callbacks=_callbacks(tmp_path))
    last = tmp_path / "checkpoints" / "last.ckpt"
    good = last.read_bytes()

    def crash(self, checkpoint, path, storage_options=None):
        Path(path).write_bytes(b"trunc")
        raise OSError("killed while saving")

    # the bytes are written by Lightning's TorchCheckpointIO, which AtomicCheckpointIO wraps
    monkeypatch.setattr(TorchCheckpointIO, "save_checkpoint", crash)
    with pytest.raises(OSError, match="killed while saving"):
        _fit(_psnr_module(), 4, tmp_path, callbacks=_callbacks(tmp_path), ckpt=str(last))
    assert last.read_bytes() == good
    assert not [p for p in last.parent.iterdir() if p.name != "last.ckpt"]


def test_pretrained_generator_mismatch_is_clear(tmp_path):
    from esrgan_lit.weights import save_generator

    src = tmp_path / "g.safetensors"
    save_generator(RRDBNet(num_feat=16, num_block=1, num_grow_ch=4), src)
    with pytest.raises(ValueError, match="does not fit the configured generator"):
        _psnr_module(pretrained_generator=str(src))
    with pytest.raises(FileNotFoundError, match="pretrained_generator"):
        _psnr_module(pretrained_generator=str(tmp_path / "missing.pth"))
    ok = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)
    save_generator(ok, src)
    m = _psnr_module(pretrained_generator=str(src))
    for a, b in zip(m.generator.state_dict().values(), ok.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("kind", ["psnr", "gan"])
def test_bf16_autocast_keeps_losses_fp32(tmp_path, kind):
    L.seed_everything(0)
    m = _psnr_module() if kind == "psnr" else _gan_module()
    trainer = L.Trainer(
        accelerator="cpu",
        precision="bf16-mixed",
        max_steps=2,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        limit_val_batches=0,
        default_root_dir=tmp_path,
    )
    trainer.fit(m, datamodule=_Data())
    assert trainer.global_step == 2
    logged = {k: v for k, v in trainer.callback_metrics.items() if k.startswith("train/l_")}
    assert logged and all(v.dtype == torch.float32 and torch.isfinite(v) for v in logged.values())
    assert all(p.dtype == torch.float32 for p in m.generator.parameters())

"""GPU paths: inference precision and tiling, a real out-of-memory, training steps in bf16.

Every test here needs CUDA and skips without it (CI has no GPU); run on a lent GPU with
``pytest tests/test_cuda.py``.
"""

from __future__ import annotations

import functools
import logging

import lightning as L
import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from esrgan_lit.archs import RRDBNet, VGGStyleDiscriminator
from esrgan_lit.inference import Upscaler
from esrgan_lit.lit import ESRGANModule, PSNRModule

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def _net(nf: int = 16, nb: int = 2, std: float = 0.05, seed: int = 0) -> RRDBNet:
    torch.manual_seed(seed)
    m = RRDBNet(scale=4, num_feat=nf, num_block=nb, num_grow_ch=8).eval()
    for p in m.parameters():
        p.data.normal_(0.0, std)
    return m


def _photo(h: int = 96, w: int = 80) -> np.ndarray:
    """A smooth colour image with an edge: values a natural photo would have."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx / w, yy / h, ((xx + yy) % 23) / 23], -1) * 200 + 20
    img[h // 3 : h // 2] = 240
    return img.astype(np.uint8)


def test_tiled_cuda_equals_untiled_cpu():
    m, img = _net(), _photo()
    ref = Upscaler(m, device="cpu", tile=0).upscale(img)
    got = Upscaler(m, device="cuda", tile=40, tile_overlap=16, tile_batch=2).upscale(img)
    assert got.shape == ref.shape and got.dtype == np.uint8
    assert np.abs(got.astype(int) - ref.astype(int)).max() <= 1


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_is_close_and_never_black(precision):
    m, img = _net(), _photo()
    ref = Upscaler(m, device="cuda").upscale(img).astype(float)
    up = Upscaler(m, device="cuda", precision=precision, tile=48, tile_overlap=16)
    got = up.upscale(img).astype(float)
    assert ref.mean() > 1 and abs(got.mean() - ref.mean()) < 0.5  # not black, no level shift
    assert np.abs(got - ref).mean() < 1.0 and np.abs(got - ref).max() <= 16


class _Overflow(nn.Module):
    """x2 nearest whose intermediate exceeds fp16's range: fp16 alone would give inf/NaN."""

    scale, num_in_ch, num_out_ch = 2, 3, 3

    def __init__(self) -> None:
        super().__init__()
        self.k = nn.Parameter(torch.tensor(1e5))

    def forward(self, x):
        return nn.functional.interpolate(x * self.k, scale_factor=2, mode="nearest") / self.k


def test_fp16_overflow_falls_back_on_cuda(caplog):
    img = _photo(32, 24)
    up = Upscaler(_Overflow(), device="cuda", precision="fp16", tile=16, tile_overlap=4)
    with caplog.at_level(logging.WARNING, logger="esrgan_lit.inference"):
        out = up.upscale(img)
    np.testing.assert_array_equal(out, img.repeat(2, 0).repeat(2, 1))
    assert up.fallbacks > 0 and "fp32" in caplog.text


def test_real_out_of_memory_halves_the_tile(caplog):
    """A memory cap makes the allocator fail for real; the run continues with smaller tiles."""
    m, img = _net(nf=32, nb=1), _photo(512, 512)
    ref = Upscaler(m, device="cpu", tile=128, tile_overlap=16).upscale(img)
    torch.cuda.empty_cache()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    Upscaler(m, device="cuda", tile=0).upscale(img)  # untiled peak, then cap below it
    need = torch.cuda.max_memory_allocated() - base
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction((torch.cuda.memory_reserved() + need // 2) / total)
    try:
        up = Upscaler(m, device="cuda", tile=0, tile_overlap=16)
        with caplog.at_level(logging.WARNING, logger="esrgan_lit.inference"):
            out = up.upscale(img)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()
    assert "out of memory" in caplog.text and 0 < up.tile < 512
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1


def test_compiled_upscaler_matches_eager():
    m, img = _net(), _photo(64, 64)
    ref = Upscaler(m, device="cuda", tile=32, tile_overlap=8).upscale(img)
    got = Upscaler(m, device="cuda", tile=32, tile_overlap=8, compile=True).upscale(img)
    assert np.abs(got.astype(int) - ref.astype(int)).max() <= 1


class _Pairs(Dataset):
    def __init__(self, n: int = 8, size: int = 32) -> None:
        g = torch.Generator().manual_seed(0)
        self.gt = torch.rand(n, 3, size, size, generator=g)
        self.lq = nn.functional.avg_pool2d(self.gt, 4)

    def __len__(self) -> int:
        return len(self.gt)

    def __getitem__(self, i: int) -> dict:
        return {"lq": self.lq[i], "gt": self.gt[i]}


def _adam(lr: float = 1e-3):
    return functools.partial(torch.optim.Adam, lr=lr, betas=(0.9, 0.999))


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("kind", ["psnr", "gan"])
@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_training_steps_on_gpu(tmp_path, kind, precision):
    L.seed_everything(0)
    gen = RRDBNet(num_feat=16, num_block=1, num_grow_ch=8)
    sched = functools.partial(torch.optim.lr_scheduler.StepLR, step_size=100, gamma=0.5)
    if kind == "psnr":
        model = PSNRModule(gen, _adam(), sched)
    else:
        d = VGGStyleDiscriminator(num_feat=8, input_size=32)
        model = ESRGANModule(gen, d, _adam(), _adam(), sched, sched, perceptual_loss=None)
    trainer = L.Trainer(
        accelerator="gpu",
        devices=1,
        precision=precision,
        max_steps=4,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        limit_val_batches=0,
        default_root_dir=tmp_path,
    )
    before = [p.detach().clone() for p in gen.parameters()]
    trainer.fit(model, train_dataloaders=DataLoader(_Pairs(), batch_size=4))
    assert trainer.global_step == 4
    logged = {k: v for k, v in trainer.callback_metrics.items() if k.startswith("train/l_")}
    assert logged and all(torch.isfinite(v) for v in logged.values())
    assert all(p.dtype == torch.float32 for p in gen.parameters())  # autocast, not a cast
    assert any(not torch.equal(a, b.cpu()) for a, b in zip(before, gen.parameters()))

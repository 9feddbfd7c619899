"""Training fast path (lit/fastpath.py): each switch on CPU, and the CPU defaults staying off."""

from __future__ import annotations

import functools
from pathlib import Path

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from esrgan_lit.archs import RRDBNet, VGGStyleDiscriminator
from esrgan_lit.lit import ESRGANModule, NonFiniteStepsError, PSNRModule
from esrgan_lit.lit.fastpath import FastPath, ScalarReadback, build_optimizer, is_fused


class _Pairs(Dataset):
    def __init__(self, n: int = 4, size: int = 32, nan: bool = False) -> None:
        g = torch.Generator().manual_seed(0)
        self.gt = torch.rand(n, 3, size, size, generator=g)
        self.lq = torch.nn.functional.avg_pool2d(self.gt, 4)
        if nan:
            self.lq[:] = float("nan")

    def __len__(self) -> int:
        return len(self.gt)

    def __getitem__(self, i: int) -> dict:
        return {"lq": self.lq[i], "gt": self.gt[i]}


def adam(fused: bool | None = None, lr: float = 1e-3):
    return functools.partial(torch.optim.Adam, lr=lr, betas=(0.9, 0.999), fused=fused)


def psnr_module(**kw) -> PSNRModule:
    torch.manual_seed(0)
    opt = kw.pop("optimizer", adam())
    return PSNRModule(RRDBNet(num_feat=8, num_block=1, num_grow_ch=4), opt, None, **kw)


def gan_module(**kw) -> ESRGANModule:
    torch.manual_seed(0)
    g = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)
    d = VGGStyleDiscriminator(num_feat=4, input_size=32)
    opt = kw.pop("optimizer", adam())
    return ESRGANModule(g, d, opt, opt, perceptual_loss=None, **kw)


def fit(model, steps: int, tmp: Path, nan: bool = False, **trainer_kw) -> L.Trainer:
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=steps,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        limit_val_batches=0,
        default_root_dir=tmp,
        **trainer_kw,
    )
    trainer.fit(model, train_dataloaders=DataLoader(_Pairs(nan=nan), batch_size=2))
    return trainer


def update_gap(init: dict, a: L.LightningModule, b: L.LightningModule) -> float:
    """||(b - init) - (a - init)|| / ||a - init|| over all floating-point weights.

    NHWC convolutions (or fused Adam) round differently; Adam's first steps are about
    lr * sign(g), so single elements may differ by up to a step while the update as a whole
    agrees to float precision: compare the whole update, not elementwise.
    """
    sa, sb = a.state_dict(), b.state_dict()
    keys = [k for k, v in init.items() if v.is_floating_point()]
    da = torch.cat([(sa[k].float() - init[k].float()).flatten() for k in keys])
    db = torch.cat([(sb[k].float() - init[k].float()).flatten() for k in keys])
    return float((db - da).norm() / da.norm())


def test_resolve_is_on_for_cuda_and_off_for_cpu():
    auto = {"channels_last": None, "sync_free": None, "compile": False, "compile_mode": None}
    assert FastPath.resolve(torch.device("cpu"), **auto) == FastPath()
    gpu = FastPath.resolve(torch.device("cuda", 0), **auto)
    assert gpu.channels_last and gpu.sync_free and not gpu.compile
    forced = FastPath.resolve(torch.device("cuda"), **(auto | {"channels_last": False}))
    assert not forced.channels_last


def test_fused_null_means_fused_on_cuda_only():
    p = [torch.nn.Parameter(torch.ones(2))]
    assert not is_fused(build_optimizer(adam(None), p, torch.device("cpu")))
    assert is_fused(build_optimizer(adam(None), p, torch.device("cuda")))  # CPU kernel exists
    assert not is_fused(build_optimizer(adam(False), p, torch.device("cuda")))
    sgd = build_optimizer(functools.partial(torch.optim.SGD, lr=1.0), p, torch.device("cuda"))
    assert isinstance(sgd, torch.optim.SGD) and not sgd.defaults.get("fused")

    class NoFused(torch.optim.SGD):  # an optimiser swapped in by _target_, without `fused`
        def __init__(self, params, lr: float) -> None:
            super().__init__(params, lr=lr)

    for dev in ("cpu", "cuda"):  # fused: null merged from the yaml must not break it
        opt = build_optimizer(functools.partial(NoFused, lr=1.0, fused=None), p, torch.device(dev))
        assert isinstance(opt, NoFused)


def test_scalar_readback_keeps_order_and_host_numbers():
    rb = ScalarReadback(max_lag=2)
    for step in range(3):
        rb.push(step, {"a": torch.tensor(step + 0.5), "lr": 1e-4 * step})
    rb.push(3, {})
    got = rb.ready()
    assert [t for t, _ in got] == [0, 1, 2, 3]
    assert got[2][1] == {"a": 2.5, "lr": pytest.approx(2e-4)} and got[3][1] == {}
    assert len(rb) == 0


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_cpu_defaults_leave_the_step_unchanged(tmp_path):
    m = psnr_module()
    fit(m, 2, tmp_path)
    assert m.fast == FastPath() and not is_fused(m.optimizers().optimizer)
    assert all(p.is_contiguous() for p in m.generator.parameters())


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_sync_free_guard_skips_on_device_then_stops(tmp_path):
    m = psnr_module(optimizer=adam(True), sync_free=True, max_nonfinite_steps=3)
    before = {k: v.clone() for k, v in m.generator.state_dict().items()}
    with pytest.raises(NonFiniteStepsError, match="3 iterations in a row"):
        fit(m, 10, tmp_path, nan=True)
    assert m.fast.sync_free and is_fused(m.optimizers().optimizer)
    assert m.nonfinite_total == 3 and m._guard_outcome is None
    for k, v in m.generator.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} changed by a non-finite step"
    state = m.optimizers().optimizer.state_dict()["state"]
    assert {float(s["step"]) for s in state.values()} == {0.0}  # found_inf undid the count


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("kind", ["psnr", "gan"])
def test_sync_free_logs_the_same_values(tmp_path, kind):
    make = psnr_module if kind == "psnr" else gan_module
    runs = {}
    for sync_free in (False, True):
        m = make(optimizer=adam(True), sync_free=sync_free)
        tr = fit(m, 3, tmp_path / str(sync_free))
        runs[sync_free] = {k: float(v) for k, v in tr.callback_metrics.items()}
        assert all(v.device.type == "cpu" for v in tr.callback_metrics.values())
    assert runs[True].keys() == runs[False].keys() and "train/l_pix" in runs[True]
    assert "train/grad_norm_g" in runs[True] and "train/lr_g" in runs[True]
    for k, v in runs[False].items():
        assert runs[True][k] == pytest.approx(v, rel=1e-6, abs=1e-8), k


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_channels_last_converts_nets_and_batches(tmp_path):
    plain, fast = gan_module(), gan_module(channels_last=True)
    init = {k: v.clone() for k, v in plain.state_dict().items()}
    fit(plain, 2, tmp_path / "a")
    fit(fast, 2, tmp_path / "b")
    w = fast.generator.conv_first.weight
    assert w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
    batch = fast.train_batch({"lq": torch.rand(2, 3, 8, 8), "name": ["a"]})
    assert batch["lq"].is_contiguous(memory_format=torch.channels_last)
    assert update_gap(init, plain, fast) < 1e-2


def test_batch_hook_is_left_to_the_datamodule():
    """Lightning calls only the DataModule's ``on_after_batch_transfer`` when both define it, so
    a module hook would be silently skipped whenever the data synthesises LR there (Real-ESRGAN)."""
    from lightning.pytorch.utilities.model_helpers import is_overridden

    assert not is_overridden("on_after_batch_transfer", gan_module(channels_last=True))


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_compile_with_manual_optimisation_traces(tmp_path):
    """Dynamo through G, D (toggled requires_grad) and the step; eager backend: no C++ build."""
    torch._dynamo.reset()
    plain, comp = gan_module(), gan_module(compile=True, compile_backend="eager")
    fit(plain, 2, tmp_path / "a")
    fit(comp, 2, tmp_path / "b")
    assert comp.generator._compiled_call_impl is not None
    assert list(comp.generator.state_dict()) == list(plain.generator.state_dict())
    for a, b in zip(plain.state_dict().values(), comp.state_dict().values()):
        torch.testing.assert_close(a.float(), b.float(), rtol=1e-5, atol=1e-6)
    torch._dynamo.reset()


def test_checkpoint_keeps_the_device_counters_exactly():
    """Sync-free counters live on the device and lag on the host; a checkpoint reads them."""
    m = psnr_module(sync_free=True)
    m._nf_dev = torch.tensor([2.0, 5.0])
    m.nonfinite_in_a_row, m.nonfinite_total = 0, 3  # the host copy is behind
    ckpt: dict = {}
    m.on_save_checkpoint(ckpt)
    assert ckpt["nonfinite"] == [2, 5]
    fresh = psnr_module(sync_free=True)
    fresh.on_load_checkpoint(ckpt)
    assert (fresh.nonfinite_in_a_row, fresh.nonfinite_total) == (2, 5) and fresh._nf_dev is None

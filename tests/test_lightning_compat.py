"""One test per shim of ``esrgan_lit.lit.compat`` (private Lightning APIs): each fails loudly when
a Lightning release moves, renames or changes what the shim relies on. Also the public
replacements: the registered ``ddp_gan`` strategy names and the atomic CheckpointIO plugin."""

from __future__ import annotations

import inspect
import os
import tempfile
from pathlib import Path

import lightning as L
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from hydra import compose, initialize_config_dir
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.core.optimizer import LightningOptimizer
from lightning.pytorch.demos.boring_classes import BoringModel
from lightning.pytorch.plugins.io import TorchCheckpointIO

from esrgan_lit.callbacks.checkpoint import AtomicCheckpointIO
from esrgan_lit.config import config_dir
from esrgan_lit.lit import compat
from esrgan_lit.lit.ddp import STRATEGY_NAMES, GANDDPStrategy, register_strategies


def _trainer(tmp_path, **kw) -> L.Trainer:
    kw = {"accelerator": "cpu", "devices": 1, "logger": False, "enable_progress_bar": False,
          "enable_model_summary": False, "default_root_dir": tmp_path, **kw}  # fmt: skip
    return L.Trainer(**kw)


def test_written_against_the_installed_major_minor() -> None:
    # A new minor release may change any private API: rerun this file and bump the version.
    assert L.__version__.split(".")[:2] == compat.WRITTEN_AGAINST.split(".")[:2], (
        f"lit/compat.py was written against Lightning {compat.WRITTEN_AGAINST}, installed is "
        f"{L.__version__}: check every shim there (this file tests each) and update the version"
    )


def test_fits_in_worker_processes(tmp_path) -> None:
    from lightning.pytorch.strategies.launchers.multiprocessing import _MultiProcessingLauncher

    assert "start_method" in inspect.signature(_MultiProcessingLauncher).parameters
    register_strategies()
    assert compat.fits_in_worker_processes(_trainer(tmp_path, strategy="ddp_gan_fork", devices=2))
    assert not compat.fits_in_worker_processes(_trainer(tmp_path, strategy="ddp_gan", devices=2))
    assert not compat.fits_in_worker_processes(_trainer(tmp_path))


def _sync_worker(rank: int, init_file: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        net = torch.nn.Linear(3, 2)
        with torch.no_grad():
            net.weight.fill_(float(rank + 1))
        net.register_buffer("count", torch.tensor([rank + 5.0]))
        compat.sync_module_states(net)
        assert torch.all(net.weight == 1.0) and net.count.item() == 5.0  # rank 0's values
    finally:
        dist.destroy_process_group()


def test_sync_module_states_broadcasts_from_rank_zero() -> None:
    from lightning.pytorch.overrides.distributed import _sync_module_states

    assert list(inspect.signature(_sync_module_states).parameters) == ["module"]
    with tempfile.TemporaryDirectory() as d:
        mp.spawn(_sync_worker, args=(os.path.join(d, "store"),), nprocs=2, join=True)


def test_save_last_checkpoint_and_last_saved_step(tmp_path) -> None:
    sig = inspect.signature(ModelCheckpoint._save_last_checkpoint)
    assert list(sig.parameters) == ["self", "trainer", "monitor_candidates"]
    assert list(inspect.signature(ModelCheckpoint._monitor_candidates).parameters) == [
        "self", "trainer"]  # fmt: skip
    cb = ModelCheckpoint(dirpath=tmp_path / "ck", save_last=True, save_top_k=0,
                         every_n_train_steps=1000)  # fmt: skip
    seen = []

    class SaveAtStepOne(Callback):
        def on_train_batch_end(self, trainer, *args) -> None:
            if trainer.global_step == 1:
                before = compat.last_saved_step(cb)
                compat.save_last_checkpoint(cb, trainer)
                seen.append((before, compat.last_saved_step(cb), (tmp_path / "ck" / "last.ckpt")
                             .is_file()))  # fmt: skip

    trainer = _trainer(tmp_path, max_steps=2, callbacks=[cb, SaveAtStepOne()],
                       limit_val_batches=0)  # fmt: skip
    trainer.fit(BoringModel())
    assert seen == [(0, 1, True)]


class _TwoSteps(BoringModel):
    """Manual optimisation with one counted and one uncounted optimiser step per batch."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False

    def training_step(self, batch, batch_idx):
        opt = self.optimizers()
        for counted in (True, False):
            opt.zero_grad()
            self.manual_backward(self.loss(self(batch)))
            if counted:
                opt.step()
            else:
                with compat.uncounted_step(opt):
                    opt.step()


def test_uncounted_step_does_not_advance_global_step(tmp_path) -> None:
    for name in ("_on_before_step", "_on_after_step"):
        assert callable(getattr(LightningOptimizer(torch.optim.SGD([torch.zeros(1)], lr=1)), name))
    trainer = _trainer(tmp_path, max_steps=3, limit_val_batches=0)
    trainer.fit(_TwoSteps())
    assert trainer.global_step == 3  # 6 optimiser steps, 3 counted


def test_ddp_gan_names_are_registered(tmp_path) -> None:
    register_strategies()
    register_strategies()  # idempotent
    for name, start_method in STRATEGY_NAMES.items():
        strategy = _trainer(tmp_path, strategy=name, devices=2).strategy
        assert isinstance(strategy, GANDDPStrategy) and strategy._start_method == start_method


def test_trainer_config_installs_atomic_checkpoint_io(tmp_path) -> None:
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=[f"paths.output_dir={tmp_path}"])
    assert [p._target_ for p in cfg.trainer.plugins] == [
        "esrgan_lit.callbacks.checkpoint.AtomicCheckpointIO"]  # fmt: skip
    trainer = _trainer(tmp_path, plugins=[AtomicCheckpointIO()])
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)


def test_atomic_checkpoint_io_keeps_the_old_file_on_a_crash(tmp_path, monkeypatch) -> None:
    dst = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"a": torch.ones(1)}, dst)
    good = dst.read_bytes()

    def crash(self, checkpoint, path, storage_options=None):
        Path(path).write_bytes(b"trunc")
        raise OSError("killed while saving")

    monkeypatch.setattr(TorchCheckpointIO, "save_checkpoint", crash)
    with pytest.raises(OSError, match="killed"):
        AtomicCheckpointIO().save_checkpoint({"a": torch.zeros(1)}, dst)
    assert dst.read_bytes() == good and [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]

"""Every use of a private Lightning API, behind one seam.

Lightning offers no public hook for these; each shim says what it relies on and the Lightning
version it was written against (``WRITTEN_AGAINST``). ``tests/test_lightning_compat.py`` checks
each one (the attribute exists, its signature, its behaviour) so an upgrade that changes one
fails there, loudly, instead of silently changing training. Where a public API exists it is used
instead: checkpoint writes are made atomic by a ``CheckpointIO`` plugin
(:class:`esrgan_lit.callbacks.checkpoint.AtomicCheckpointIO`), and the GAN DDP strategy is
registered under a name (:func:`esrgan_lit.lit.ddp.register_strategies`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.overrides.distributed import _sync_module_states
from lightning.pytorch.strategies.launchers.multiprocessing import _MultiProcessingLauncher
from torch import nn

# The Lightning release every shim below was written and tested against (pyproject: lightning>=2.4).
WRITTEN_AGAINST = "2.6.6"
_STEP_HOOKS = ("_on_before_step", "_on_after_step")


def fits_in_worker_processes(trainer: L.Trainer) -> bool:
    """True when ``fit`` ran in fork/spawn child processes (``strategy.launcher`` is Lightning's
    ``_MultiProcessingLauncher``), so this process's callbacks never saw training.

    Private: ``lightning.pytorch.strategies.launchers.multiprocessing._MultiProcessingLauncher``.
    """
    return isinstance(getattr(trainer.strategy, "launcher", None), _MultiProcessingLauncher)


def sync_module_states(module: nn.Module) -> None:
    """Broadcast ``module``'s parameters and buffers from rank 0 (what DDP does when wrapping).

    Private: ``lightning.pytorch.overrides.distributed._sync_module_states(module)``.
    """
    _sync_module_states(module)


def last_saved_step(callback: ModelCheckpoint) -> int:
    """The global step of ``callback``'s latest save.

    Private: ``ModelCheckpoint._last_global_step_saved``.
    """
    return callback._last_global_step_saved


def save_last_checkpoint(callback: ModelCheckpoint, trainer: L.Trainer) -> None:
    """Write ``last.ckpt`` now, as ``ModelCheckpoint`` does at its own save points.

    Private: ``ModelCheckpoint._save_last_checkpoint(trainer, monitor_candidates)`` and
    ``ModelCheckpoint._monitor_candidates(trainer)``.
    """
    callback._save_last_checkpoint(trainer, callback._monitor_candidates(trainer))


def _noop() -> None:
    return None


@contextlib.contextmanager
def uncounted_step(optimizer: Any) -> Iterator[None]:
    """Step a ``LightningOptimizer`` without advancing ``trainer.global_step`` (issue #17958:
    under manual optimisation every ``step()`` counts; an extra D step must not).

    Private: ``LightningOptimizer._on_before_step`` / ``_on_after_step``, the callables
    ``LightningOptimizer.step`` runs around the step (the loop's step counter lives there).
    Raises a clear error when Lightning no longer has them.
    """
    missing = [h for h in _STEP_HOOKS if not callable(getattr(optimizer, h, None))]
    if missing:
        raise RuntimeError(
            f"{type(optimizer).__name__} has no {missing}: the uncounted GAN step relies on "
            f"LightningOptimizer's private step hooks (written against Lightning "
            f"{WRITTEN_AGAINST}); update esrgan_lit.lit.compat.uncounted_step."
        )
    saved = [getattr(optimizer, h) for h in _STEP_HOOKS]
    for h in _STEP_HOOKS:
        setattr(optimizer, h, _noop)
    try:
        yield
    finally:
        for h, fn in zip(_STEP_HOOKS, saved):
            setattr(optimizer, h, fn)

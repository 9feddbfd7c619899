"""Atomic checkpoint writes (a ``CheckpointIO`` plugin) and a ModelCheckpoint that always leaves
``last.ckpt`` at the final step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from esrgan_lit.lit.compat import last_saved_step, save_last_checkpoint
from esrgan_lit.utils.atomic import atomic_write_path


class AtomicCheckpointIO(TorchCheckpointIO):
    """A kill while saving leaves the previous checkpoint, never a truncated one.

    Lightning's ``TorchCheckpointIO`` writes the file in place; this one writes a temporary file
    beside it and renames it (``os.replace``). It is a trainer plugin (``conf/trainer/default.yaml``
    ``plugins``), so every ``trainer.save_checkpoint`` is atomic, whoever calls it.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        with atomic_write_path(path) as tmp:
            super().save_checkpoint(checkpoint, tmp, storage_options)


class AtomicModelCheckpoint(ModelCheckpoint):
    """ModelCheckpoint whose files are written atomically and whose final step is always saved.

    The final training step is saved (as ``last.ckpt`` when ``save_last``), so
    ``ckpt_path=.../last.ckpt`` resumes a finished short run exactly where it stopped. Atomicity
    comes from :class:`AtomicCheckpointIO`; a trainer built without it (e.g. in another script)
    gets it installed at setup, as long as its checkpoint IO is Lightning's plain default.
    """

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        final = trainer.max_steps > 0 and trainer.global_step >= trainer.max_steps
        if final and last_saved_step(self) != trainer.global_step and self.save_last:
            save_last_checkpoint(self, trainer)

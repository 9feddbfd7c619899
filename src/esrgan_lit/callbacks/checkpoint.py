"""ModelCheckpoint that writes atomically and always leaves ``last.ckpt`` at the final step."""

from __future__ import annotations

from weakref import proxy

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

from esrgan_lit.utils.atomic import atomic_write_path


class AtomicModelCheckpoint(ModelCheckpoint):
    """A kill while saving leaves the previous checkpoint, never a truncated one.

    Lightning writes the file in place; here rank zero writes a temporary file beside it and
    renames it. The final training step is always saved (as ``last.ckpt`` when ``save_last``),
    so ``ckpt_path=.../last.ckpt`` resumes a finished short run exactly where it stopped.
    """

    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        if trainer.is_global_zero:
            with atomic_write_path(filepath) as tmp:
                trainer.save_checkpoint(str(tmp), self.save_weights_only)
        else:
            trainer.save_checkpoint(filepath, self.save_weights_only)
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(proxy(self))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        final = trainer.max_steps > 0 and trainer.global_step >= trainer.max_steps
        if final and self._last_global_step_saved != trainer.global_step and self.save_last:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

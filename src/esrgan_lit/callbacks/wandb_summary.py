"""Best-so-far validation metrics in the W&B run summary (one value per set and metric).

W&B's summary otherwise holds the *last* logged value, which is rarely the number one compares
runs by. The best values are also kept in the checkpoint, so a resumed run continues them.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.loggers import WandbLogger

from esrgan_lit.metrics.registry import lower_is_better


def better(name: str, new: float, old: float | None) -> bool:
    if old is None or old != old:  # none yet, or NaN
        return new == new
    # the metric classes' own direction (LPIPS, NIQE, PI, RMSE down; PSNR, SSIM, Ma up)
    return new < old if lower_is_better(name) else new > old


class WandbBestSummary(L.Callback):
    """Writes ``best/<stage>/<set>/<metric>`` into every W&B logger's run summary (rank zero)."""

    def __init__(self, prefixes: tuple[str, ...] = ("val/",)) -> None:
        self.prefixes = tuple(prefixes)
        self.best: dict[str, float] = {}
        self._defined: set[str] = set()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        changed = {}
        for key, value in trainer.callback_metrics.items():
            if not key.startswith(self.prefixes) or value.numel() != 1:
                continue
            v = float(value)
            if better(key, v, self.best.get(key)):
                self.best[key] = changed[key] = v
        if not changed or not trainer.is_global_zero:
            return
        for run in _wandb_runs(trainer):
            for key in changed:
                if key not in self._defined:  # the native per-metric summary, too
                    run.define_metric(key, summary="min" if lower_is_better(key) else "max")
            run.summary.update({f"best/{k}": v for k, v in changed.items()})
            run.summary["best/step"] = trainer.global_step
        self._defined |= set(changed)

    def state_dict(self) -> dict[str, Any]:
        return {"best": dict(self.best)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = dict(state_dict.get("best", {}))


def _wandb_runs(trainer: L.Trainer) -> list[Any]:
    return [lg.experiment for lg in trainer.loggers if isinstance(lg, WandbLogger)]

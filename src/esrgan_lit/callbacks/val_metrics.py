"""Validation / test metrics per named set: ``val/<Set>/psnr_y``, ``val/<Set>/ssim_y``, ...

The metrics are ``esrgan_lit.metrics`` torchmetrics objects (sum/count states), one per set, so
under DDP every rank adds its own unpadded share (``ShardSampler``: no sample repeated, unlike a
padding ``DistributedSampler``) and ``compute`` gives the single-process value. Every configured
set is computed on every rank, also where the rank's share is empty (a set smaller than the
number of processes): ``compute`` is collective, and an empty share adds zero to sum and count.
PSNR/SSIM are cheap; LPIPS, NIQE, Ma and PI are opt-in (and skipped with a note when unavailable).
"""

from __future__ import annotations

import warnings
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_warn
from torchmetrics import Metric

from esrgan_lit.metrics import MetricUnavailableError
from esrgan_lit.metrics.registry import METRICS, metric_spec
from esrgan_lit.metrics.registry import build_metric as registry_build

# Validation LPIPS scores the whole image (its class default), as it always has; every other
# metric shaves ``crop_border``. The names, classes and options live in the metric registry.
_VALIDATION_OPTIONS: dict[str, dict[str, Any]] = {"lpips": {"crop_border": 0}}


def build_metric(name: str, crop_border: int) -> Metric:
    """One validation metric by its log name; raises ``MetricUnavailableError`` when its weights
    are absent, ``ValueError`` for a name the registry does not know."""
    if name not in METRICS:
        raise ValueError(f"unknown validation metric {name!r}; expected one of {sorted(METRICS)}")
    return registry_build(name, crop_border, _VALIDATION_OPTIONS.get(name))


def set_names(trainer: L.Trainer, stage: str, count: int) -> list[str]:
    """Names of the validation (or test) sets, from ``SRDataModule.<stage>_set_names``."""
    dm = getattr(trainer, "datamodule", None)
    names = list(getattr(dm, f"{stage}_set_names", []) or [])
    if len(names) != count:
        names = [f"{stage}{i}" for i in range(count)]
    return names


def _seen(metrics: dict[str, Metric]) -> float:
    """How many batches this rank added to a set (0 for an empty share)."""
    return float(max((int(m.update_count) for m in metrics.values()), default=0))


class SRMetrics(Callback):
    """Accumulates the configured metrics per set and logs them at the end of the epoch."""

    def __init__(
        self, metrics: tuple[str, ...] | list[str] = ("psnr_y", "ssim_y"), crop_border: int = 4
    ):
        self.metric_names = list(metrics)
        self.crop_border = crop_border
        self._metrics: dict[str, dict[str, Metric]] = {}
        self._unavailable: set[str] = set()
        self.last: dict[str, dict[str, float]] = {}

    def _set_metrics(self, set_name: str, device: torch.device) -> dict[str, Metric]:
        if set_name not in self._metrics:
            built: dict[str, Metric] = {}
            for name in self.metric_names:
                if name in self._unavailable:
                    continue
                try:
                    built[name] = build_metric(name, self.crop_border).to(device)
                except MetricUnavailableError as err:
                    self._unavailable.add(name)
                    rank_zero_warn(f"validation metric {name} skipped: {err}")
            self._metrics[set_name] = built
        return self._metrics[set_name]

    @staticmethod
    def _stage_sets(trainer: L.Trainer, stage: str) -> list[str]:
        loaders = trainer.val_dataloaders if stage == "val" else trainer.test_dataloaders
        count = len(loaders) if isinstance(loaders, list | tuple) else 1
        return set_names(trainer, stage, count)

    def _update(self, trainer, pl_module, outputs: Any, dataloader_idx: int, stage: str) -> None:
        if not isinstance(outputs, dict) or "sr" not in outputs:
            return
        name = self._stage_sets(trainer, stage)[dataloader_idx]
        sr, gt = outputs["sr"].float(), outputs["gt"].float()
        for metric_name, metric in self._set_metrics(name, pl_module.device).items():
            if metric_spec(metric_name).full_reference:
                metric.update(sr, gt)
            else:
                metric.update(sr)

    def _log(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Compute every set on every rank, in one order (``compute`` is collective).

        A set no rank saw an image of (e.g. ``limit_val_batches``) is left out, decided from the
        summed per-rank image counts, so every rank leaves out the same sets.
        """
        self.last = {}
        names = self._stage_sets(trainer, stage)
        per_set = [self._set_metrics(n, pl_module.device) for n in names]
        local = [_seen(m) for m in per_set]
        seen = trainer.strategy.reduce(
            torch.tensor(local, dtype=torch.float64, device=pl_module.device), reduce_op="sum"
        )
        for set_name, metrics, total in zip(names, per_set, seen.tolist()):
            if total == 0:
                continue
            self.last[set_name] = {}
            for metric_name, metric in metrics.items():
                value = metric.compute()  # collective under DDP: every rank gets the same value
                metric.reset()
                self.last[set_name][metric_name] = float(value)
                with warnings.catch_warnings():  # already reduced across ranks by torchmetrics
                    warnings.filterwarnings("ignore", message=".*sync_dist=True.*")
                    pl_module.log(
                        f"{stage}/{set_name}/{metric_name}",
                        value.float(),
                        on_step=False,
                        on_epoch=True,
                        add_dataloader_idx=False,
                        rank_zero_only=False,
                    )

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ):
        if not trainer.sanity_checking:
            self._update(trainer, pl_module, outputs, dataloader_idx, "val")

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self._log(trainer, pl_module, "val")

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self._update(trainer, pl_module, outputs, dataloader_idx, "test")

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        self._log(trainer, pl_module, "test")

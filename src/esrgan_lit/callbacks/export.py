"""Run-directory outputs: ``metrics.json`` after each validation, ``generator.safetensors`` at
the end of fit (the EMA weights when the EMA callback is on). Rank zero writes, atomically.

After each write, every callback implementing :class:`ExportListener` gets an ``on_export`` hook
with an :class:`ExportEvent` (e.g. the W&B model artifacts): listeners are told what was written
instead of searching the trainer for this callback.
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import lightning as L
from lightning.pytorch.callbacks import Callback

from esrgan_lit.utils.atomic import atomic_write_path
from esrgan_lit.weights import save_generator
from esrgan_lit.weights.errors import CheckpointError

log = logging.getLogger(__name__)


@runtime_checkable
class AveragedWeights(Protocol):
    """A callback holding averaged generator weights that are exported instead of the raw ones
    (``GeneratorEMA``). The export asks for this role, not for a class name."""

    def ema_state_dict(self, pl_module: L.LightningModule) -> dict[str, Any]: ...


@runtime_checkable
class ValidationResults(Protocol):
    """A callback holding the latest validation values, ``{set: {metric: value}}`` (``SRMetrics``)."""

    last: dict[str, dict[str, float]]


def find_callback(trainer: L.Trainer, role: type) -> Any:
    """The first of ``trainer.callbacks`` that is a ``role`` (a class or a runtime protocol)."""
    return next((cb for cb in trainer.callbacks if isinstance(cb, role)), None)


def generator_weights(trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
    """Averaged weights when a callback keeps them (the EMA), the raw generator otherwise (CPU)."""
    averaged = find_callback(trainer, AveragedWeights)
    if averaged is not None:
        return averaged.ema_state_dict(pl_module)
    return {k: v.detach().cpu().clone() for k, v in pl_module.generator.state_dict().items()}


@dataclass(frozen=True)
class ExportEvent:
    """One file written: ``kind`` says which; ``metrics`` are the latest validation values
    ({set: {metric: value}}) measured at ``metrics_step`` (None before the first validation)."""

    kind: Literal["metrics", "generator"]
    path: Path
    step: int
    output_dir: Path
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    metrics_step: int | None = None


@runtime_checkable
class ExportListener(Protocol):
    """A callback told about each run-directory export (rank zero only)."""

    def on_export(
        self, trainer: L.Trainer, pl_module: L.LightningModule, event: ExportEvent
    ) -> None: ...


class ExportOutputs(Callback):
    """Writes ``<output_dir>/metrics.json`` and ``<output_dir>/generator.safetensors``."""

    def __init__(self, output_dir: str, generator_file: str = "generator.safetensors"):
        self.output_dir = Path(output_dir)
        self.generator_file = generator_file
        self.last_val_step: int | None = None
        self.metrics: dict[str, dict[str, float]] = {}

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics_cb = find_callback(trainer, ValidationResults)
        if metrics_cb is None:
            return
        self.metrics = {k: dict(v) for k, v in metrics_cb.last.items()}
        self.last_val_step = trainer.global_step
        if trainer.is_global_zero:
            self._notify(trainer, pl_module, "metrics", self.write_metrics())

    def write_metrics(self) -> Path:
        dst = self.output_dir / "metrics.json"
        with atomic_write_path(dst) as tmp:
            tmp.write_text(json.dumps(self.metrics, indent=2, sort_keys=True) + "\n")
        return dst

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.export_generator(trainer, pl_module)

    def export_generator(self, trainer: L.Trainer, pl_module: L.LightningModule) -> Path | None:
        if not trainer.is_global_zero:
            return None
        gen = pl_module.generator
        dst = self.output_dir / self.generator_file
        state = generator_weights(trainer, pl_module)
        clone = _clone_with(gen, state)
        try:
            save_generator(clone, dst)
        except CheckpointError:  # not RRDBNet/SRResNet: its weights, and how to load them
            save_any_generator(clone, dst)
        self._notify(trainer, pl_module, "generator", dst)
        return dst

    def _notify(
        self, trainer: L.Trainer, pl_module: L.LightningModule, kind: Any, path: Path
    ) -> None:
        event = ExportEvent(
            kind, path, trainer.global_step, self.output_dir, self.metrics, self.last_val_step
        )
        for cb in trainer.callbacks:
            if cb is not self and isinstance(cb, ExportListener):
                cb.on_export(trainer, pl_module, event)


def save_any_generator(module: Any, dst: Path) -> Path:
    """A generator ``esrgan_lit.weights`` cannot describe (your own class): its state dict as
    safetensors with the class path in the metadata, written atomically. ``load_generator``
    cannot rebuild it; ``YourNet(...).load_state_dict(safetensors.torch.load_file(dst))`` can."""
    from safetensors.torch import save_file

    cls = type(module)
    sd = {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}
    with atomic_write_path(dst) as tmp:
        save_file(
            sd,
            str(tmp),
            metadata={"format": "state_dict", "class": f"{cls.__module__}.{cls.__qualname__}"},
        )
    log.warning(
        "%s: %s is not a network esrgan_lit.weights knows (RRDBNet, SRResNet), so this file is "
        "its plain state dict: load it with %s(...).load_state_dict(safetensors.torch."
        "load_file(path)) and pass the module to esrgan_lit.inference.Upscaler",
        dst,
        cls.__qualname__,
        cls.__qualname__,
    )
    return dst


def _clone_with(module: Any, state: dict[str, Any]) -> Any:
    clone = copy.deepcopy(module).cpu()
    clone.load_state_dict(state)
    return clone.eval()

"""The exported generator as a W&B *model artifact*, and the lineage of the weights a run
started from.

Each ``generator.safetensors`` that :class:`~esrgan_lit.callbacks.ExportOutputs` writes is
logged with ``metrics.json`` and the resolved run config, aliased ``latest`` (and ``best`` when
the monitored metric improved), so ``wandb:ENTITY/PROJECT/NAME:best`` can be handed to
``model.pretrained_generator``, ``evaluate generator=`` or ``esrgan-upscale --model``.
A run started from such a reference declares it with ``use_artifact`` (the lineage graph).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any

import lightning as L
from omegaconf import OmegaConf

from esrgan_lit.callbacks.export import ExportEvent
from esrgan_lit.callbacks.wandb_summary import _wandb_runs
from esrgan_lit.metrics.registry import lower_is_better
from esrgan_lit.weights.wandb_ref import GENERATOR_FILE, artifact_name, is_wandb_ref

log = logging.getLogger(__name__)


def monitored_value(metrics: Mapping[str, Mapping[str, float]], monitor: str) -> float | None:
    """``psnr_y`` (mean over the validation sets), ``Set5/psnr_y`` or ``val/Set5/psnr_y``."""
    key = monitor.removeprefix("val/")
    if "/" in key:
        set_name, metric = key.rsplit("/", 1)
        values = [metrics.get(set_name, {}).get(metric)]
    else:
        values = [m.get(key) for m in metrics.values()]
    values = [float(v) for v in values if v is not None]
    if not values or any(math.isnan(v) for v in values):
        return None
    return sum(values) / len(values)


class WandbModelArtifacts(L.Callback):
    """Logs every generator export as a W&B model artifact (a no-op without a W&B logger).

    ``name``: the artifact name (default ``generator-<run id>``; give several runs one name to
    version them together). ``monitor``: the metric that decides the ``best`` alias, ``mode``
    ``auto`` reads its direction from the metric name (PSNR up, LPIPS down). ``use_artifacts``:
    ``wandb:`` references this run started from (others are ignored), declared as its inputs.
    """

    def __init__(
        self,
        name: str | None = None,
        monitor: str | None = "psnr_y",
        mode: str = "auto",
        aliases: Iterable[str] = (),
        use_artifacts: Iterable[str | None] = (),
        log_config: bool = True,
    ) -> None:
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"WandbModelArtifacts.mode must be auto, min or max; got {mode!r}")
        self.name, self.monitor, self.mode = name, monitor, mode
        self.aliases = [str(a) for a in aliases]
        self.use_artifacts = [str(r) for r in use_artifacts if is_wandb_ref(r)]
        self.log_config = log_config
        self.best: float | None = None
        self._stale: ExportEvent | None = None  # a generator logged before its final metrics

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero or not self.use_artifacts:
            return
        for run in _wandb_runs(trainer):
            run.config.update({"inputs/artifacts": self.use_artifacts}, allow_val_change=True)
            if run.settings._offline:  # W&B records artifact use only online
                log.info(
                    "offline W&B run: lineage of %s kept in the config only", self.use_artifacts
                )
                continue
            for ref in self.use_artifacts:
                run.use_artifact(artifact_name(ref))

    def on_export(
        self, trainer: L.Trainer, pl_module: L.LightningModule, event: ExportEvent
    ) -> None:
        if event.kind == "generator":
            fresh = event.metrics_step == event.step
            self._stale = None if fresh else event
            self._log(trainer, event)
        elif self._stale is not None and event.step == self._stale.step:
            # the final validation of the exported weights: log them again with their metrics
            stale, self._stale = self._stale, None
            self._log(trainer, ExportEvent("generator", stale.path, event.step, event.output_dir,
                                           event.metrics, event.metrics_step))  # fmt: skip

    def _direction_lower(self) -> bool:
        if self.mode == "auto":
            return lower_is_better(str(self.monitor))
        return self.mode == "min"

    def _improves(self, value: float | None, old: float | None) -> bool:
        if value is None:
            return False
        if old is None:
            return True
        return value < old if self._direction_lower() else value > old

    def _log(self, trainer: L.Trainer, event: ExportEvent) -> None:
        runs = _wandb_runs(trainer)
        if not runs:
            return
        import wandb  # optional dependency: only when a W&B run is active

        value = monitored_value(event.metrics, self.monitor) if self.monitor else None
        for run in runs:
            name = self.name or f"generator-{run.id}"
            is_best = self._improves(value, self.best) and self._improves(
                value, _remote_best(run, name)
            )
            metadata = {
                "step": event.step,
                "metrics_step": event.metrics_step,
                "monitor": self.monitor,
                "monitor_value": value,
                "metrics": {f"{s}/{k}": v for s, m in event.metrics.items() for k, v in m.items()},
            }
            artifact = wandb.Artifact(name, type="model", metadata=metadata)
            artifact.add_file(str(event.path), name=GENERATOR_FILE)
            metrics_file = event.output_dir / "metrics.json"
            if metrics_file.is_file():
                artifact.add_file(str(metrics_file), name="metrics.json")
            if self.log_config:
                with artifact.new_file("config.yaml", encoding="utf-8") as fh:
                    fh.write(_config_yaml(run))
            aliases = ["latest", f"step-{event.step}", *self.aliases] + (
                ["best"] if is_best else []
            )
            run.log_artifact(artifact, aliases=aliases)
            log.info("logged W&B artifact %s (%s)", name, ", ".join(aliases))
        if self._improves(value, self.best):
            self.best = value

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = state_dict.get("best")


def _config_yaml(run: Any) -> str:
    """The resolved run config the loggers were given (``train`` logs it as hyperparameters)."""
    config = {k: v for k, v in dict(run.config.as_dict()).items() if not str(k).startswith("_")}
    try:
        return OmegaConf.to_yaml(OmegaConf.create(config))
    except Exception:  # a value OmegaConf cannot hold: JSON still records it
        return json.dumps(config, indent=2, default=str) + "\n"


def _remote_best(run: Any, name: str) -> float | None:
    """The monitored value of the version already aliased ``best`` (online, shared names)."""
    if run.settings._offline:
        return None
    import wandb  # optional dependency: only when a W&B run is active

    try:
        art = wandb.Api().artifact(f"{run.entity}/{run.project}/{name}:best", type="model")
    except Exception:  # no such artifact or alias yet
        return None
    value = (art.metadata or {}).get("monitor_value")
    return None if value is None else float(value)

"""The one table of metric names: which class, which fixed options, what it compares against.

Validation (``callbacks/val_metrics.py``), evaluation (``evaluation/suite.py``) and the
best-value bookkeeping (``callbacks/wandb_summary.py``, ``wandb_artifacts.py``'s ``mode: auto``)
all ask this module, so a new metric is added here once. The better/worse direction is not
written down a second time: it is the class's own torchmetrics ``higher_is_better``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from torchmetrics import Metric

from esrgan_lit.metrics.lpips import LPIPS
from esrgan_lit.metrics.ma import MaScore, PerceptualIndex
from esrgan_lit.metrics.niqe import NIQE
from esrgan_lit.metrics.psnr_ssim import PSNR, RMSE, SSIM


@dataclass(frozen=True)
class MetricSpec:
    """How to build one named metric and how to feed it."""

    cls: type[Metric]
    options: Mapping[str, Any] = field(default_factory=dict)  # fixed constructor kwargs
    full_reference: bool = True  # ``update(sr, gt)``; False: no-reference ``update(sr)``

    @property
    def higher_is_better(self) -> bool:
        """From the class (torchmetrics' own attribute), never from a second table."""
        value = self.cls.higher_is_better
        if value is None:
            raise TypeError(f"{self.cls.__name__}.higher_is_better is not set")
        return bool(value)


METRICS: dict[str, MetricSpec] = {
    "psnr_y": MetricSpec(PSNR, {"test_y_channel": True}),
    "ssim_y": MetricSpec(SSIM, {"test_y_channel": True}),
    "psnr_rgb": MetricSpec(PSNR, {"test_y_channel": False}),
    "rmse": MetricSpec(RMSE),
    "niqe": MetricSpec(NIQE, full_reference=False),
    "lpips": MetricSpec(LPIPS),
    "ma": MetricSpec(MaScore, full_reference=False),
    "pi": MetricSpec(PerceptualIndex, full_reference=False),
}


def metric_spec(name: str) -> MetricSpec:
    """The spec of ``name``; a clear error listing the known names otherwise."""
    try:
        return METRICS[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; expected one of {sorted(METRICS)}") from None


def build_metric(
    name: str, crop_border: int = 4, options: Mapping[str, Any] | None = None
) -> Metric:
    """One metric by name: ``crop_border`` and the spec's options, ``options`` overriding both.

    Raises ``MetricUnavailableError`` when the metric's model/weights are not on this machine.
    """
    spec = metric_spec(name)
    return spec.cls(**{"crop_border": crop_border, **spec.options, **(options or {})})


def lower_is_better(name: str) -> bool:
    """Direction of a metric name or a logged key (``val/<Set>/<metric>``); unknown: False."""
    spec = METRICS.get(name.rsplit("/", 1)[-1])
    return spec is not None and not spec.higher_is_better

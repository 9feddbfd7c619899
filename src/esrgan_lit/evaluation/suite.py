"""The metric columns of an evaluation, built from ``esrgan_lit.metrics.registry``.

Each column is scored per image (for ``per_image.csv``) and per set by the metric classes
themselves: per-image states are kept and merged (``Metric.merge_state``), so a set's RMSE is
PIRM's sqrt of the mean MSE, not a mean of per-image RMSEs. A metric whose model is missing
(``MetricUnavailableError``) or that cannot score an image (NIQE needs 96x96 blocks) gives
``null`` and a one-line note, never a made-up number.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from esrgan_lit.metrics import MetricUnavailableError
from esrgan_lit.metrics.registry import build_metric, metric_spec

# The evaluation's columns, in report order (a subset of the registry's names: metrics.json
# and the CSVs keep exactly these columns).
METRIC_KEYS: tuple[str, ...] = ("psnr_y", "ssim_y", "rmse", "niqe", "lpips", "ma", "pi")


def _clone_state(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v.detach().clone() if isinstance(v, Tensor) else list(v) for k, v in state.items()}


@dataclass
class Column:
    """One metric instance filling one or more columns (PI also fills ``ma``)."""

    keys: tuple[str, ...]
    metric: Metric
    full_reference: bool
    states: list[dict[str, Any]] = field(default_factory=list)
    failure: str | None = None

    def _read(self) -> dict[str, float]:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*was called before the ``update``")
            if hasattr(self.metric, "compute_parts"):
                parts = self.metric.compute_parts()
                return {k: float(parts[k]) for k in self.keys}
            return {self.keys[0]: float(self.metric.compute())}

    def score(self, sr: Tensor, gt: Tensor, name: str = "") -> dict[str, float | None]:
        """Scores of one image (N = 1); remembered for the set value."""
        if self.failure is not None:
            return dict.fromkeys(self.keys)
        self.metric.reset()
        try:
            if self.full_reference:
                self.metric.update(sr, gt)
            else:
                self.metric.update(sr)
        except (ValueError, RuntimeError) as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            self.failure = f"{reason} (image {name!r})"
            return dict.fromkeys(self.keys)
        values = self._read()
        bad = [k for k, v in values.items() if not math.isfinite(v)]
        if bad:  # e.g. NIQE of an image with fewer than 2x2 blocks of 96 px
            self.failure = f"{bad[0]} is not finite for image {name!r} (image too small or flat?)"
            return dict.fromkeys(self.keys)
        self.states.append(_clone_state(self.metric.metric_state))
        return values

    def finish(self) -> dict[str, float | None]:
        """Set value from the per-image states; then ready for the next set."""
        values: dict[str, float | None]
        if self.failure is not None or not self.states:
            values = dict.fromkeys(self.keys)
        else:
            self.metric.reset()
            for state in self.states:
                self.metric.merge_state(state)
            values = self._read()
        self.states = []
        return values


class MetricSuite:
    """The requested metrics, built once (models load once) and reused for every set/method."""

    def __init__(
        self,
        keys: Sequence[str],
        *,
        crop_border: int = 4,
        metric_args: Mapping[str, Mapping[str, Any]] | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        keys = list(dict.fromkeys(keys))
        unknown = [k for k in keys if k not in METRIC_KEYS]
        if unknown:
            raise ValueError(f"unknown metrics {unknown}; choose from {list(METRIC_KEYS)}")
        metric_args = {k: dict(v or {}) for k, v in (metric_args or {}).items()}
        self.keys = keys
        self.unavailable: dict[str, str] = {}
        self.columns: list[Column] = []
        built: dict[str, Metric] = {}
        for key in keys:
            if key == "ma" and "pi" in keys:
                continue  # PerceptualIndex computes Ma on the way: don't run the forests twice
            try:
                built[key] = build_metric(key, crop_border, metric_args.get(key)).to(device)
            except MetricUnavailableError as err:
                self.unavailable[key] = str(err).splitlines()[0]
                if key == "pi" and "ma" in keys:
                    self.unavailable["ma"] = self.unavailable["pi"]
        for key, metric in built.items():
            cols = ("pi", "ma") if key == "pi" and "ma" in keys else (key,)
            self.columns.append(Column(cols, metric, metric_spec(key).full_reference))

    def score(self, sr: Tensor, gt: Tensor, name: str = "") -> dict[str, float | None]:
        """Every requested key for one image (unavailable ones ``None``)."""
        out: dict[str, float | None] = dict.fromkeys(self.keys)
        for col in self.columns:
            out.update(col.score(sr, gt, name))
        return out

    def finish(self) -> tuple[dict[str, float | None], dict[str, str]]:
        """Set values for every key, and notes for the keys that are null."""
        values: dict[str, float | None] = dict.fromkeys(self.keys)
        notes = dict(self.unavailable)
        for col in self.columns:
            if col.failure is not None:
                for k in col.keys:
                    notes[k] = col.failure
            values.update(col.finish())
            col.failure = None
        return values, notes

"""Benchmark evaluation shared by ``esrgan_lit.evaluate`` and ``esrgan_lit.tradeoff``.

``sets`` (what to score), ``suite`` (which metrics, from ``esrgan_lit.metrics``), ``runner``
(upscale + score one method), ``report`` (JSON / markdown / CSV), ``tradeoff_report`` (the
perception-distortion axis, best alpha and figure), ``cli_config`` (reading the entry points'
Hydra configs into sets, suites and devices).
"""

from esrgan_lit.evaluation.runner import BICUBIC, MethodResult, evaluate_method, upscale
from esrgan_lit.evaluation.sets import EvalSet, datamodule_sets, folder_sets
from esrgan_lit.evaluation.suite import METRIC_KEYS, MetricSuite

__all__ = [
    "BICUBIC",
    "METRIC_KEYS",
    "EvalSet",
    "MethodResult",
    "MetricSuite",
    "datamodule_sets",
    "evaluate_method",
    "folder_sets",
    "upscale",
]

"""Lightning callbacks: generator EMA, per-set validation metrics, image panels, run outputs,
best-value W&B summaries, W&B model artifacts."""

from esrgan_lit.callbacks.checkpoint import AtomicModelCheckpoint
from esrgan_lit.callbacks.ema import GeneratorEMA
from esrgan_lit.callbacks.export import (
    AveragedWeights,
    ExportEvent,
    ExportListener,
    ExportOutputs,
    ValidationResults,
    find_callback,
    generator_weights,
)
from esrgan_lit.callbacks.image_logger import SRImageLogger, make_panel
from esrgan_lit.callbacks.val_metrics import SRMetrics, build_metric
from esrgan_lit.callbacks.wandb_artifacts import WandbModelArtifacts
from esrgan_lit.callbacks.wandb_summary import WandbBestSummary

__all__ = [
    "AtomicModelCheckpoint",
    "AveragedWeights",
    "ExportEvent",
    "ExportListener",
    "ExportOutputs",
    "GeneratorEMA",
    "SRImageLogger",
    "SRMetrics",
    "ValidationResults",
    "WandbBestSummary",
    "WandbModelArtifacts",
    "build_metric",
    "find_callback",
    "generator_weights",
    "make_panel",
]

"""Lightning callbacks: generator EMA, per-set validation metrics, image panels, run outputs."""

from esrgan_lit.callbacks.checkpoint import AtomicModelCheckpoint
from esrgan_lit.callbacks.ema import GeneratorEMA
from esrgan_lit.callbacks.export import ExportOutputs, generator_weights
from esrgan_lit.callbacks.image_logger import SRImageLogger, make_panel
from esrgan_lit.callbacks.val_metrics import SRMetrics, build_metric

__all__ = [
    "AtomicModelCheckpoint",
    "ExportOutputs",
    "GeneratorEMA",
    "SRImageLogger",
    "SRMetrics",
    "build_metric",
    "generator_weights",
    "make_panel",
]

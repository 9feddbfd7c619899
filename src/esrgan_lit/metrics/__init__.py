"""Image-quality metrics as torchmetrics ``Metric`` classes (no Lightning, no Hydra).

PSNR/SSIM/RMSE follow the MATLAB protocol of SR papers (uint8, rounded Y, crop border);
NIQE follows MATLAB's ``niqe``; LPIPS wraps the ``lpips`` package without downloads;
Ma and the Perceptual Index live in :mod:`esrgan_lit.metrics.ma`. Per-image functional forms:
``psnr``, ``ssim``, ``mse_per_image`` (here) and ``esrgan_lit.metrics.niqe.niqe``.
"""

from esrgan_lit.metrics.errors import MetricUnavailableError
from esrgan_lit.metrics.lpips import LPIPS
from esrgan_lit.metrics.ma import MaScore, PerceptualIndex
from esrgan_lit.metrics.niqe import NIQE
from esrgan_lit.metrics.psnr_ssim import PSNR, RMSE, SSIM, mse_per_image, psnr, ssim

__all__ = [
    "LPIPS",
    "NIQE",
    "PSNR",
    "RMSE",
    "SSIM",
    "MaScore",
    "MetricUnavailableError",
    "PerceptualIndex",
    "mse_per_image",
    "psnr",
    "ssim",
]

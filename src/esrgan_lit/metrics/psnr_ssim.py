"""PSNR, SSIM and RMSE on the MATLAB protocol that SR papers report.

Protocol: quantise to uint8 (``im2uint8``), take the rounded Y of ``rgb2ycbcr`` (RGB inputs) or
the raw values (grey inputs), shave ``crop_border`` pixels, score each image in float64, then
average over images. Options give plain RGB scoring and BasicSR's unrounded float Y.
The metric classes keep sum/count states only, so DDP reduction by summation is exact as long
as no sample is duplicated.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric

from esrgan_lit.ops.color import quantize_uint8, rgb_to_y

__all__ = ["PSNR", "RMSE", "SSIM", "mse_per_image", "psnr", "scoring_space", "ssim"]


def _as_batch(x: Tensor, name: str) -> Tensor:
    if not isinstance(x, Tensor) or not torch.is_floating_point(x):
        raise TypeError(f"{name} must be a float tensor in [0, 1], got {type(x).__name__}")
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"{name} must be (N, 3|1, H, W) or (3|1, H, W), got {tuple(x.shape)}")
    return x


def scoring_space(
    x: Tensor, *, crop_border: int = 4, test_y_channel: bool = True, round_y: bool = True
) -> Tensor:
    """Map float [0, 1] images to what the metrics compare: (N, C', H-2b, W-2b) float64, 0..255.

    RGB becomes MATLAB's uint8 Y when ``test_y_channel`` (``round_y=False``: unrounded float Y),
    else the quantised RGB; grey (C = 1) is always scored on its quantised raw values.
    """
    x = _as_batch(x, "image")
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    h, w = x.shape[-2:]
    if 2 * crop_border >= min(h, w):
        raise ValueError(f"crop_border={crop_border} leaves nothing of a {h}x{w} image")
    q = quantize_uint8(x)
    if q.shape[1] == 3 and test_y_channel:
        q = rgb_to_y(q, rounded=round_y)
    if crop_border:
        q = q[..., crop_border:-crop_border, crop_border:-crop_border]
    return q


def _pair(preds: Tensor, target: Tensor, **kw) -> tuple[Tensor, Tensor]:
    preds, target = _as_batch(preds, "preds"), _as_batch(target, "target")
    if preds.shape != target.shape:
        raise ValueError(
            f"preds and target shapes differ: {tuple(preds.shape)} vs {tuple(target.shape)}"
        )
    return scoring_space(preds, **kw), scoring_space(target, **kw)


def mse_per_image(
    preds: Tensor,
    target: Tensor,
    *,
    crop_border: int = 4,
    test_y_channel: bool = True,
    round_y: bool = True,
) -> Tensor:
    """Mean squared error per image on the 0..255 scale, shape (N,), float64."""
    p, t = _pair(
        preds, target, crop_border=crop_border, test_y_channel=test_y_channel, round_y=round_y
    )
    return (p - t).square().flatten(1).mean(dim=1)


def psnr(
    preds: Tensor,
    target: Tensor,
    *,
    crop_border: int = 4,
    test_y_channel: bool = True,
    round_y: bool = True,
) -> Tensor:
    """PSNR in dB per image, shape (N,), float64; identical images give ``inf`` (as MATLAB)."""
    mse = mse_per_image(
        preds, target, crop_border=crop_border, test_y_channel=test_y_channel, round_y=round_y
    )
    return 10.0 * torch.log10(255.0**2 / mse)


@functools.lru_cache(maxsize=8)
def _gaussian_1d(size: int, sigma: float) -> Tensor:
    """Normalised 1-D Gaussian; its outer product is MATLAB's ``fspecial('gaussian', size, sigma)``."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    g = torch.exp(-(x**2) / (2.0 * sigma**2))
    return g / g.sum()


def _filter_valid(x: Tensor, g: Tensor) -> Tensor:
    """Separable 'valid' Gaussian filtering of (M, 1, H, W) float64 (MATLAB ``filter2(w, x, 'valid')``)."""
    k = g.numel()
    x = F.conv2d(x, g.view(1, 1, k, 1))
    return F.conv2d(x, g.view(1, 1, 1, k))


def ssim(
    preds: Tensor,
    target: Tensor,
    *,
    crop_border: int = 4,
    test_y_channel: bool = True,
    round_y: bool = True,
) -> Tensor:
    """SSIM per image (Wang et al. 2004, 11x11 Gaussian sigma 1.5, valid region), shape (N,).

    Multi-channel inputs (``test_y_channel=False``) average the per-channel SSIM maps' means.
    """
    p, t = _pair(
        preds, target, crop_border=crop_border, test_y_channel=test_y_channel, round_y=round_y
    )
    n, c, h, w = p.shape
    if min(h, w) < 11:
        raise ValueError(f"SSIM needs at least 11x11 pixels after cropping, got {h}x{w}")
    g = _gaussian_1d(11, 1.5).to(p.device)
    p = p.reshape(n * c, 1, h, w)
    t = t.reshape(n * c, 1, h, w)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu1, mu2 = _filter_valid(p, g), _filter_valid(t, g)
    mu1_sq, mu2_sq, mu12 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    s1 = _filter_valid(p * p, g) - mu1_sq
    s2 = _filter_valid(t * t, g) - mu2_sq
    s12 = _filter_valid(p * t, g) - mu12
    num = (2 * mu12 + c1) * (2 * s12 + c2)
    den = (mu1_sq + mu2_sq + c1) * (s1 + s2 + c2)
    return (num / den).reshape(n, c, -1).mean(dim=(1, 2))


class _MeanOverImages(Metric):
    """Average of a per-image score; sum/count states reduce exactly under DDP."""

    is_differentiable = False
    full_state_update = False

    def __init__(
        self,
        crop_border: int = 4,
        test_y_channel: bool = True,
        *,
        round_y: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if crop_border < 0:
            raise ValueError(f"crop_border must be >= 0, got {crop_border}")
        self.crop_border = int(crop_border)
        self.test_y_channel = bool(test_y_channel)
        self.round_y = bool(round_y)
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def _per_image(self, preds: Tensor, target: Tensor) -> Tensor:
        raise NotImplementedError

    def _kw(self) -> dict:
        return {
            "crop_border": self.crop_border,
            "test_y_channel": self.test_y_channel,
            "round_y": self.round_y,
        }

    def update(self, preds: Tensor, target: Tensor) -> None:
        values = self._per_image(preds, target)
        self.total += values.sum().to(self.total)
        self.count += values.numel()

    def compute(self) -> Tensor:
        return self.total / self.count


class PSNR(_MeanOverImages):
    """Mean over images of the per-image PSNR (dB) on MATLAB's uint8 Y, ``crop_border`` shaved."""

    higher_is_better = True

    def _per_image(self, preds: Tensor, target: Tensor) -> Tensor:
        return psnr(preds, target, **self._kw())


class SSIM(_MeanOverImages):
    """Mean over images of Wang et al.'s SSIM on MATLAB's uint8 Y, ``crop_border`` shaved."""

    higher_is_better = True
    plot_upper_bound = 1.0

    def _per_image(self, preds: Tensor, target: Tensor) -> Tensor:
        return ssim(preds, target, **self._kw())


class RMSE(_MeanOverImages):
    """PIRM-SR 2018 RMSE: sqrt of the mean over images of the per-image MSE (Y, 0..255, crop 4)."""

    higher_is_better = False

    def _per_image(self, preds: Tensor, target: Tensor) -> Tensor:
        return mse_per_image(preds, target, **self._kw())

    def compute(self) -> Tensor:
        return torch.sqrt(self.total / self.count)

"""Additive Gaussian and Poisson noise, colour or grey, one strength per sample.

Facts from BasicSR ``random_add_gaussian_noise_pt`` / ``random_add_poisson_noise_pt``: Gaussian
sigma is drawn uniformly in ``sigma_range`` on the 0-255 scale; Poisson noise is
``Poisson(v * x) / v - x`` on the image rounded to 8 bits, where ``v`` is the number of distinct
8-bit levels in the image rounded up to a power of two (256 for most photos), scaled by a factor
drawn in ``scale_range``; with probability ``gray_prob`` a sample gets one noise image shared by
its three channels (for Poisson: the noise of its luma). The result is clipped to [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from kornia.color import rgb_to_grayscale
from torch import Tensor

from .random import poisson, rand, randn, uniform


def _grey_mask(n: int, gray_prob: float, g: torch.Generator | None, device) -> Tensor:
    return (rand((n,), g, device) < float(gray_prob)).view(n, 1, 1, 1)


def add_gaussian_noise(
    img: Tensor,
    sigma_range: Sequence[float] = (1.0, 30.0),
    gray_prob: float = 0.4,
    generator: torch.Generator | None = None,
) -> Tensor:
    """``img + N(0, sigma^2)`` with sigma ~ U(sigma_range) / 255 per sample, clipped to [0, 1]."""
    n, c, h, w = img.shape
    sigma = uniform(n, float(sigma_range[0]), float(sigma_range[1]), generator, img.device)
    grey = _grey_mask(n, gray_prob, generator, img.device)
    colour_noise = randn((n, c, h, w), generator, img.device)
    grey_noise = randn((n, 1, h, w), generator, img.device).expand(n, c, h, w)
    noise = torch.where(grey, grey_noise, colour_noise) * (sigma / 255.0).view(n, 1, 1, 1)
    return (img + noise.to(img.dtype)).clamp(0, 1)


def _levels(img8: Tensor) -> Tensor:
    """Per sample: distinct 8-bit levels rounded up to a power of two, (n, 1, 1, 1)."""
    n = img8.shape[0]
    idx = (img8 * 255).round().long().clamp(0, 255).view(n, -1)
    present = torch.zeros(n, 256, device=img8.device).scatter_(1, idx, 1.0)
    count = present.sum(dim=1).clamp(min=1)
    return torch.exp2(torch.ceil(torch.log2(count))).view(n, 1, 1, 1)


def _poisson_noise(x: Tensor, g: torch.Generator | None) -> Tensor:
    x8 = (x * 255.0).round().clamp(0, 255) / 255.0
    vals = _levels(x8)
    return poisson(x8 * vals, g) / vals - x8


def add_poisson_noise(
    img: Tensor,
    scale_range: Sequence[float] = (0.05, 3.0),
    gray_prob: float = 0.4,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Shot noise (see module doc) scaled by U(scale_range) per sample, clipped to [0, 1]."""
    n, c, h, w = img.shape
    x = img.float()
    scale = uniform(n, float(scale_range[0]), float(scale_range[1]), generator, img.device)
    grey = _grey_mask(n, gray_prob, generator, img.device)
    colour_noise = _poisson_noise(x, generator)
    grey_noise = _poisson_noise(rgb_to_grayscale(x), generator).expand(n, c, h, w)
    noise = torch.where(grey, grey_noise, colour_noise) * scale.view(n, 1, 1, 1)
    return (x + noise).clamp(0, 1).to(img.dtype)

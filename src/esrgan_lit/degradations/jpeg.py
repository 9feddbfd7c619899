"""JPEG compression with one quality per sample (kornia's differentiable JPEG codec).

Real-ESRGAN uses BasicSR's DiffJPEG (standard tables, 4:2:0 chroma, quality drawn as a float in
``jpeg_range``); kornia's ``jpeg_codec_differentiable`` models the same codec (standard tables,
4:2:0) on tensors, so it runs on the training device without a round trip through an encoder.
Its rounding is a smooth approximation, so pixels differ slightly from a real encoder: the
tests bound the difference to Pillow's JPEG at the same quality.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from kornia.enhance import jpeg_codec_differentiable
from torch import Tensor

from .random import uniform


def jpeg(img: Tensor, quality: Tensor) -> Tensor:
    """Encode + decode ``img`` (N,3,H,W) in [0,1] at ``quality`` (N,) in [0, 100]."""
    x = img.clamp(0, 1)  # out-of-range input gives unpleasant artifacts (as Real-ESRGAN notes)
    q = quality.to(device=x.device, dtype=torch.float32).reshape(-1)
    with torch.no_grad():
        out = jpeg_codec_differentiable(x.float(), q)
    return out.clamp(0, 1).to(img.dtype)


def random_jpeg(
    img: Tensor,
    quality_range: Sequence[float] = (30.0, 95.0),
    generator: torch.Generator | None = None,
) -> Tensor:
    """JPEG at a quality drawn uniformly in ``quality_range`` for each sample."""
    q = uniform(
        img.shape[0], float(quality_range[0]), float(quality_range[1]), generator, img.device
    )
    return jpeg(img, q)

"""Per-sample 2-D filtering and resizing helpers shared by the degradation stages."""

from __future__ import annotations

import torch.nn.functional as F
from kornia.filters import filter2d, filter2d_separable
from torch import Tensor

RESIZE_MODES: tuple[str, ...] = ("area", "bilinear", "bicubic")


def filter_batch(x: Tensor, kernels: Tensor) -> Tensor:
    """Correlate each sample of ``x`` (N,C,H,W) with its own kernel ((N,k,k) or (1,k,k)), one call.

    Reflect padding as BasicSR's ``filter2D``; images smaller than the kernel's half width fall
    back to replicate padding (reflect is undefined there).
    """
    half = kernels.shape[-1] // 2
    border = "reflect" if min(x.shape[-2:]) > half else "replicate"
    return filter2d(x, kernels.to(x.dtype), border_type=border)


def filter_separable(x: Tensor, kernel1d: Tensor) -> Tensor:
    """Correlate with ``outer(k, k)`` as a row pass then a column pass (``kernel1d``: (1, k))."""
    half = kernel1d.shape[-1] // 2
    border = "reflect" if min(x.shape[-2:]) > half else "replicate"
    k = kernel1d.to(x.dtype)
    return filter2d_separable(x, k, k, border_type=border)


def resize(x: Tensor, size: tuple[int, int], mode: str) -> Tensor:
    """``F.interpolate`` to ``size`` (at least 1x1) with ``mode`` from ``RESIZE_MODES``."""
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize mode must be one of {RESIZE_MODES}, got {mode!r}")
    size = (max(1, int(size[0])), max(1, int(size[1])))
    if tuple(x.shape[-2:]) == size:
        return x
    kwargs = {} if mode == "area" else {"align_corners": False}
    return F.interpolate(x, size=size, mode=mode, **kwargs)

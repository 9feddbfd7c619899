"""MATLAB-compatible uint8 quantisation and the Y channel of ``rgb2ycbcr``.

Published SR tables (ESRGAN, PIRM) score images the way MATLAB does: the output is
quantised to uint8 (``im2uint8``: round half away from zero, saturate), then ``rgb2ycbcr``
maps it to YCbCr and rounds Y back to uint8. Getting any of these steps subtly wrong
(half-to-even rounding, float Y, a different summation order) moves PSNR by hundredths of a dB,
which is exactly the size of the differences between papers, so this module reproduces them.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["quantize_uint8", "rgb_to_y", "round_half_away"]

# ITU-R BT.601 rows of MATLAB's rgb2ycbcr for 0..255 data (origT(1,:)), offset 16.
_Y_COEFFS = (65.481, 128.553, 24.966)
_Y_OFFSET = 16.0


def round_half_away(x: Tensor) -> Tensor:
    """Round to nearest, ties away from zero (MATLAB ``round`` and integer casts).

    ``torch.round`` rounds ties to even, which differs on exact .5 values.
    """
    return torch.sign(x) * torch.floor(torch.abs(x) + 0.5)


def quantize_uint8(x: Tensor) -> Tensor:
    """MATLAB ``im2uint8`` of a float image in [0, 1]: float64 values in {0, ..., 255}.

    NaN becomes 0 and out-of-range values saturate, as MATLAB's cast does. The result stays a
    float64 tensor so the callers' arithmetic is exact on integers.
    """
    if not torch.is_floating_point(x):
        raise TypeError(f"quantize_uint8 expects a float image in [0, 1], got dtype {x.dtype}")
    v = x.to(torch.float64) * 255.0  # a new tensor: the in-place steps below are safe
    return v.nan_to_num_(nan=0.0).clamp_(0.0, 255.0).add_(0.5).floor_()


def rgb_to_y(x: Tensor, *, rounded: bool = True) -> Tensor:
    """Y of MATLAB ``rgb2ycbcr`` for RGB values on the 0..255 scale (channel dim -3).

    ``x``: (..., 3, H, W), typically the output of :func:`quantize_uint8`. Returns
    (..., 1, H, W) float64 on the 0..255 scale. ``rounded=True`` reproduces MATLAB on a uint8
    image: coefficients ``(1/255) * origT`` summed in MATLAB's ``imlincomb`` order, plus 16,
    rounded half away from zero (this order decides the ~200 exact .5 ties among all 2^24
    colours the same way MATLAB does). ``rounded=False`` is BasicSR's unrounded float Y.
    """
    if x.dim() < 3 or x.shape[-3] != 3:
        raise ValueError(f"rgb_to_y expects (..., 3, H, W), got shape {tuple(x.shape)}")
    v = x.to(torch.float64)
    r, g, b = v[..., 0:1, :, :], v[..., 1:2, :, :], v[..., 2:3, :, :]
    if not rounded:
        return (r * _Y_COEFFS[0] + g * _Y_COEFFS[1] + b * _Y_COEFFS[2]) / 255.0 + _Y_OFFSET
    t = [(1.0 / 255.0) * c for c in _Y_COEFFS]  # Python floats are IEEE doubles, as in MATLAB
    y = r * t[0]
    y = y + g * t[1]
    y = y + b * t[2]
    y = y + _Y_OFFSET
    return torch.floor(y + 0.5)  # y >= 16 here, so half-up equals half-away-from-zero

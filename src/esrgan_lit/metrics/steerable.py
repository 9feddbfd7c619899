"""Frequency-domain steerable pyramid, as matlabPyrTools' ``buildSFpyr`` builds it.

Ma et al.'s global (GSM) features are computed on a two-scale, six-orientation pyramid of the
grey image. Their MATLAB release uses Simoncelli's ``buildSFpyr`` (raised-cosine radial masks,
``cos^order`` angular masks, all applied to the centred DFT), so the same construction is
reproduced here in float64 NumPy, including its ``pointOp`` table lookups (linear interpolation
with linear extrapolation), so that subband values agree with the release to rounding.
Only what the features use is built: the high-pass residual and the oriented bands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["SteerablePyramid", "build_sf_pyramid"]


@dataclass
class SteerablePyramid:
    """``hi0``: high-pass residual (H, W); ``bands[scale][orientation]``: real subbands."""

    hi0: np.ndarray
    bands: list[list[np.ndarray]]


def _point_op(im: np.ndarray, lut: np.ndarray, origin: float, increment: float) -> np.ndarray:
    """matlabPyrTools ``pointOp``: table lookup with linear interpolation/extrapolation."""
    pos = (im - origin) / increment
    index = np.clip(np.trunc(pos), 0, lut.size - 2).astype(np.int64)  # C cast truncates
    return lut[index] + (lut[index + 1] - lut[index]) * (pos - index)


def _rcos_fn() -> tuple[np.ndarray, np.ndarray]:
    """``rcosFn(1, -0.5, [0 1])``: a raised-cosine step of width one octave."""
    sz = 256
    x = math.pi * np.arange(-sz - 1, 2, dtype=np.float64) / (2 * sz)
    y = np.cos(x) ** 2
    y[0] = y[1]
    y[-1] = y[-2]
    x = -0.5 + (2.0 / math.pi) * (x + math.pi / 4)
    return x, y


def _polar_grid(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """log2 radius and angle of every DFT sample around MATLAB's centre ``ceil((n+0.5)/2)``."""
    ctr_r = math.ceil((rows + 0.5) / 2)
    ctr_c = math.ceil((cols + 0.5) / 2)
    xr = (np.arange(1, cols + 1, dtype=np.float64) - ctr_c) / (cols / 2)
    yr = (np.arange(1, rows + 1, dtype=np.float64) - ctr_r) / (rows / 2)
    x, y = np.meshgrid(xr, yr)
    angle = np.arctan2(y, x)
    rad = np.sqrt(x * x + y * y)
    rad[ctr_r - 1, ctr_c - 1] = rad[ctr_r - 1, ctr_c - 2]
    return np.log2(rad), angle


def _angle_lut(nbands: int) -> tuple[np.ndarray, np.ndarray]:
    lutsize = 1024
    order = nbands - 1
    xcosn = math.pi * np.arange(-(2 * lutsize + 1), lutsize + 2, dtype=np.float64) / lutsize
    const = (2.0 ** (2 * order)) * math.factorial(order) ** 2 / (nbands * math.factorial(2 * order))
    return xcosn, math.sqrt(const) * np.cos(xcosn) ** order


def build_sf_pyramid(im: np.ndarray, height: int = 2, nbands: int = 6) -> SteerablePyramid:
    """``buildSFpyr(im, height, nbands - 1)`` without the low-pass residual (not used by Ma)."""
    im = np.asarray(im, dtype=np.float64)
    rows, cols = im.shape
    if height > math.floor(math.log2(min(rows, cols))) - 2:
        raise ValueError(f"image of size {rows}x{cols} is too small for a {height}-level pyramid")
    log_rad, angle = _polar_grid(rows, cols)
    xrcos, yrcos = _rcos_fn()
    yrcos = np.sqrt(yrcos)
    yircos = np.sqrt(1.0 - yrcos**2)
    inc = xrcos[1] - xrcos[0]
    imdft = np.fft.fftshift(np.fft.fft2(im))
    lodft = imdft * _point_op(log_rad, yircos, xrcos[0], inc)
    hi0dft = imdft * _point_op(log_rad, yrcos, xrcos[0], inc)
    hi0 = np.real(np.fft.ifft2(np.fft.ifftshift(hi0dft)))

    xcosn, ycosn = _angle_lut(nbands)
    rot = (-1j) ** (nbands - 1)
    bands: list[list[np.ndarray]] = []
    for level in range(height):
        xrcos = xrcos - 1.0  # one octave down
        himask = _point_op(log_rad, yrcos, xrcos[0], inc)
        level_bands = []
        for b in range(nbands):
            anglemask = _point_op(
                angle, ycosn, xcosn[0] + math.pi * b / nbands, xcosn[1] - xcosn[0]
            )
            banddft = rot * lodft * anglemask * himask
            level_bands.append(np.real(np.fft.ifft2(np.fft.ifftshift(banddft))))
        bands.append(level_bands)
        if level == height - 1:
            break
        r, c = lodft.shape
        lod = (math.ceil((r - 0.5) / 2), math.ceil((c - 0.5) / 2))
        ctr = (math.ceil((r + 0.5) / 2), math.ceil((c + 0.5) / 2))
        loctr = (math.ceil((lod[0] + 0.5) / 2), math.ceil((lod[1] + 0.5) / 2))
        r0, c0 = ctr[0] - loctr[0], ctr[1] - loctr[1]
        crop = (slice(r0, r0 + lod[0]), slice(c0, c0 + lod[1]))
        log_rad, angle, lodft = log_rad[crop], angle[crop], lodft[crop]
        lodft = lodft * _point_op(log_rad, np.abs(np.sqrt(1.0 - yrcos**2)), xrcos[0], inc)
    return SteerablePyramid(hi0=hi0, bands=bands)

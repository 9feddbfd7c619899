"""The three feature groups of Ma et al. (CVIU 2017), computed as the authors' MATLAB release does.

Input: the grey (Y) image as uint8 levels 0..255, shape (H, W). Output: ``f1`` (18) local
frequency features from 7x7 block DCTs, ``f2`` (45) global frequency features from a steerable
pyramid (see :mod:`esrgan_lit.metrics.ma_gsm`), ``f3`` (75) singular values of 5x5 patches.
``f1`` and ``f3`` are taken on a three-scale Gaussian pyramid of the image scaled to [0, 1]
(3x3 Gaussian, sigma 0.5, zero padding, keep every second pixel starting at the second).
Everything is float64 NumPy: these are scalar statistics where MATLAB's arithmetic is the oracle.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage

from esrgan_lit.metrics.ma_gsm import global_gsm_features
from esrgan_lit.metrics.ma_stats import gaussian_kernel, ggd_shape

__all__ = ["MaFeatures", "block_dct_features", "ggd_shape", "ma_features", "spatial_pyramid"]

MaFeatures = tuple[np.ndarray, np.ndarray, np.ndarray]


def spatial_pyramid(y: np.ndarray) -> list[np.ndarray]:
    """Full, half and quarter scale of ``im2double(y)``: ``imfilter`` (zero pad) then ``(2:2:end)``."""
    im = np.asarray(y, dtype=np.float64) / 255.0
    h = gaussian_kernel(3, 0.5)
    levels = [im]
    for _ in range(2):
        blurred = ndimage.correlate(levels[-1], h, mode="constant", cval=0.0)
        levels.append(blurred[1::2, 1::2])
    return levels


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n, dtype=np.float64)[:, None]
    x = np.arange(n, dtype=np.float64)[None, :]
    c = np.sqrt(2.0 / n) * np.cos(math.pi * (2 * x + 1) * k / (2 * n))
    c[0] /= math.sqrt(2.0)
    return c


def _orientation_masks() -> np.ndarray:
    """The three 16-coefficient orientation groups of a 7x7 DCT block (rows, cols 0-based)."""
    upper = [(0, c) for c in range(1, 7)] + [(1, c) for c in range(2, 7)]
    upper += [(2, c) for c in range(4, 7)] + [(3, c) for c in (5, 6)]
    diag = [(1, 1), (2, 2), (2, 3), (3, 2), (3, 3), (3, 4), (4, 3), (4, 4)]
    diag += [(4, 5), (4, 6), (5, 4), (5, 5), (5, 6), (6, 4), (6, 5), (6, 6)]
    masks = np.zeros((3, 7, 7), dtype=bool)
    for i, group in enumerate((upper, diag, [(c, r) for r, c in upper])):
        for r, c in group:
            masks[i, r, c] = True
    return masks


def _std_over_mean(a: np.ndarray, eps: float) -> np.ndarray:
    return a.std(axis=-1, ddof=1) / (a.mean(axis=-1) + eps)


def block_dct_features(im: np.ndarray, rows_per_chunk: int = 64) -> np.ndarray:
    """Six block-DCT statistics (``block_dct.m``) of one pyramid level in [0, 1].

    ``blkproc(im, [3 3], [2 2], ...)``: a 7x7 window (3x3 block plus a 2-pixel zero-padded border)
    every 3 pixels; per window the DCT's GGD shape, coefficient of variation of |AC|, and the
    variance of the three orientation groups' variation. Returned: mean of the lowest 10% and
    mean of all shapes; mean of the highest 10% and of all for the other two.
    """
    rows, cols = im.shape
    nbr, nbc = -(-rows // 3), -(-cols // 3)
    pad = np.zeros((3 * nbr + 4, 3 * nbc + 4), dtype=np.float64)
    pad[2 : 2 + rows, 2 : 2 + cols] = im
    windows = sliding_window_view(pad, (7, 7))[::3, ::3]
    c = _dct_matrix(7)
    masks = _orientation_masks()
    ac = np.ones((7, 7), dtype=bool)
    ac[0, 0] = False
    gam, cv, ori = [], [], []
    for start in range(0, nbr, rows_per_chunk):
        d = (c @ windows[start : start + rows_per_chunk] @ c.T).reshape(-1, 7, 7)
        coeffs = d[:, ac]
        gam.append(ggd_shape(coeffs))
        cv.append(_std_over_mean(np.abs(coeffs), 1e-7))
        groups = np.stack([_std_over_mean(np.abs(d[:, m]), 1e-8) for m in masks], axis=-1)
        ori.append(groups.var(axis=-1, ddof=1))
    g, v, o = (np.sort(np.concatenate(a)) for a in (gam, cv, ori))
    n = g.size
    low = math.ceil(n * 0.1)
    high = math.trunc(n * 0.9) - 1  # MATLAB fix(), 1-based start index
    return np.array(
        [g[:low].mean(), g.mean(), v[high:].mean(), v.mean(), o[high:].mean(), o.mean()]
    )


def patch_singular_values(im: np.ndarray, patch: int = 5) -> np.ndarray:
    """Singular values of ``im2col(im, [5 5], 'distinct')`` (zero padded), descending (25)."""
    rows, cols = im.shape
    pr, pc = -(-rows // patch) * patch, -(-cols // patch) * patch
    pad = np.zeros((pr, pc), dtype=np.float64)
    pad[:rows, :cols] = im
    cols_mat = pad.reshape(pr // patch, patch, pc // patch, patch).transpose(0, 2, 1, 3)
    return np.linalg.svd(cols_mat.reshape(-1, patch * patch), compute_uv=False)


def ma_features(y: np.ndarray) -> MaFeatures:
    """(f1, f2, f3) of a grey uint8-valued image (H, W), as ``feature_all.m`` returns them."""
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 2:
        raise ValueError(f"Ma features expect a 2-D grey image, got shape {y.shape}")
    levels = spatial_pyramid(y)
    coarse = levels[-1].shape
    if min(y.shape) < 64 or -(-coarse[0] // 5) * -(-coarse[1] // 5) < 25:
        raise ValueError(
            f"Ma features need at least 64x64 pixels and 25 5x5 patches at 1/4 scale, got {y.shape}"
        )
    f1 = np.concatenate([block_dct_features(level) for level in levels])
    f3 = np.concatenate([patch_singular_values(level) for level in levels])
    f2 = global_gsm_features(y)
    return f1, f2, f3

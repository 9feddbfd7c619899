"""Ma et al.'s global frequency features ``f2`` (45 values, the release's ``global_gsm.m``).

A two-scale, six-orientation steerable pyramid of the grey image (0..255) is divisively
normalised under a Gaussian scale mixture model (each coefficient divided by the local energy
predicted from its 3x3 neighbours, its parent and its sibling orientations), then summarised:
12 GGD shapes of the normalised subbands, 6 GGD shapes of each orientation's two scales pooled,
12 SSIM structure terms between each (bicubic-upsampled) subband and the high-pass residual,
and 15 structure terms between pairs of normalised fine-scale subbands.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from esrgan_lit.metrics.ma_features import _gaussian_kernel, ggd_shape
from esrgan_lit.metrics.steerable import SteerablePyramid, build_sf_pyramid
from esrgan_lit.ops.imresize import imresize

__all__ = ["divisive_normalization", "global_gsm_features", "ssim_structure"]

_NOR = 6


def _resize(a: np.ndarray, *, scale: float | None = None, size: tuple[int, int] | None = None):
    """MATLAB bicubic ``imresize`` of a float64 2-D array (our exact PyTorch port)."""
    t = torch.from_numpy(np.ascontiguousarray(a))[None]
    out = imresize(t, scale, size=size) if size is not None else imresize(t, scale)
    return out[0].numpy()


def _normalize_band(pyr: SteerablePyramid, scale: int, orien: int) -> np.ndarray:
    """One subband of ``norm_sender_normalized`` (3x3 block, parent, neighbours), guard band cut."""
    aux = pyr.bands[scale][orien]
    rows, cols = aux.shape
    inner = (slice(1, rows - 1), slice(1, cols - 1))
    columns = [
        aux[1 - dy : rows - 1 - dy, 1 - dx : cols - 1 - dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)
    ]
    # The release gives a parent only to bands 2..6 of its 13-band list: the first five
    # fine-scale orientations (a quirk kept for fidelity).
    has_parent = scale * _NOR + orien + 2 < 13 - _NOR
    if has_parent:
        parent = _resize(pyr.bands[scale + 1][orien], scale=2.0)
        columns.append(parent[inner][: rows - 2, : cols - 2])
    columns += [pyr.bands[scale][k][inner] for k in range(_NOR) if k != orien]
    y = np.stack([c.reshape(-1) for c in columns], axis=1)
    divisor = 9 + int(has_parent)
    cx = y.T @ y / y.shape[0]
    lam, q = np.linalg.eigh(cx)
    total, pos = lam.sum(), (lam * (lam > 0)).sum()
    lam = lam * (lam > 0) * total / (pos + (pos == 0))
    cc = (q * lam) @ q.T
    p = np.linalg.pinv(cc, rcond=cc.shape[0] * np.finfo(np.float64).eps, hermitian=True)
    z = np.sqrt(np.sum((y @ p) * y, axis=1) / divisor)
    if np.any(z == 0):
        raise ValueError("Ma f2: zero local energy in a subband (is the image constant?)")
    centre = aux[inner].reshape(-1)
    g = ((centre - centre.mean()) / z).reshape(rows - 2, cols - 2)
    gb = 16 >> scale
    g = g[gb : rows - 2 - gb, gb : cols - 2 - gb]
    return g - g.mean()


def divisive_normalization(pyr: SteerablePyramid) -> list[np.ndarray]:
    """The 12 normalised subbands (scale-major), each 2-D with its guard band removed."""
    return [_normalize_band(pyr, s, o) for s in range(2) for o in range(_NOR)]


def _valid_filter(x: np.ndarray, w1: np.ndarray) -> np.ndarray:
    """``filter2(w1 * w1', x, 'valid')`` for a separable kernel."""
    half = w1.size // 2
    t = ndimage.correlate1d(x, w1, axis=0, mode="constant")[half:-half]
    return ndimage.correlate1d(t, w1, axis=1, mode="constant")[:, half:-half]


def ssim_structure(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM contrast-structure term (11x11 Gaussian, sigma 1.5, C2 = (0.03*255)^2, valid)."""
    k = _gaussian_kernel(11, 1.5)
    w1 = k.sum(axis=1)  # the separable factor: k == outer(w1, w1)
    mu1, mu2 = _valid_filter(a, w1), _valid_filter(b, w1)
    s11 = _valid_filter(a * a, w1) - mu1 * mu1
    s22 = _valid_filter(b * b, w1) - mu2 * mu2
    s12 = _valid_filter(a * b, w1) - mu1 * mu2
    c2 = (0.03 * 255) ** 2
    return float(np.mean((2 * s12 + c2) / (s11 + s22 + c2)))


def global_gsm_features(y: np.ndarray) -> np.ndarray:
    """The 45 ``f2`` values of a grey image with values 0..255."""
    pyr = build_sf_pyramid(np.asarray(y, dtype=np.float64), height=2, nbands=_NOR)
    sub = divisive_normalization(pyr)
    feats = [float(ggd_shape(s.reshape(-1))) for s in sub]
    for o in range(_NOR):
        pooled = np.concatenate([sub[o].reshape(-1), sub[o + _NOR].reshape(-1)])
        feats.append(float(ggd_shape(pooled)))
    hi0 = pyr.hi0
    for s in range(2):
        for o in range(_NOR):
            band = pyr.bands[s][o]
            if band.shape != hi0.shape:
                band = _resize(band, size=hi0.shape)
            feats.append(ssim_structure(band, hi0))
    for i in range(_NOR):
        for j in range(i + 1, _NOR):
            feats.append(ssim_structure(sub[i], sub[j]))
    return np.asarray(feats, dtype=np.float64)

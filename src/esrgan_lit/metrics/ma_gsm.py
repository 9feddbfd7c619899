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

from esrgan_lit.metrics.ma_stats import gaussian_kernel, ggd_shape
from esrgan_lit.metrics.steerable import SteerablePyramid, build_sf_pyramid
from esrgan_lit.ops.imresize import imresize

__all__ = ["divisive_normalization", "global_gsm_features", "ssim_structure"]

_NOR = 6


def _resize(
    a: np.ndarray, *, scale: float | None = None, size: tuple[int, int] | None = None
) -> np.ndarray:
    """MATLAB bicubic ``imresize`` of a stack of float64 2-D arrays (our exact PyTorch port)."""
    t = torch.from_numpy(np.ascontiguousarray(a))
    out = imresize(t, scale, size=size) if size is not None else imresize(t, scale)
    return out.numpy()


def _normalize_band(
    pyr: SteerablePyramid, scale: int, orien: int, parent: np.ndarray | None
) -> np.ndarray:
    """One subband of ``norm_sender_normalized`` (3x3 block, parent, neighbours), guard band cut.

    Each interior coefficient is divided by sqrt(v' C^+ v / N), v its 3x3 neighbourhood, parent
    (bicubic x2 of the coarser band) and the other orientations at the same place, C their
    covariance over the band (negative eigenvalues clipped, trace kept), N = 9 (+1 with a parent).
    """
    aux = pyr.bands[scale][orien]
    rows, cols = aux.shape
    inner = (slice(1, rows - 1), slice(1, cols - 1))
    columns = [
        aux[1 - dy : rows - 1 - dy, 1 - dx : cols - 1 - dx]
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
    ]
    if parent is not None:
        columns.append(parent[inner])  # parent may be one pixel larger: cut like aux
    columns += [pyr.bands[scale][k][inner] for k in range(_NOR) if k != orien]
    y = np.stack(columns).reshape(len(columns), -1)  # (features, samples)
    cx = y @ y.T / y.shape[1]
    lam, q = np.linalg.eigh(cx)
    total, pos = lam.sum(), (lam * (lam > 0)).sum()
    lam = lam * (lam > 0) * total / (pos + (pos == 0))
    cc = (q * lam) @ q.T
    p = np.linalg.pinv(cc, rcond=cc.shape[0] * np.finfo(np.float64).eps, hermitian=True)
    z = np.sqrt(((p @ y) * y).sum(axis=0) / (9 + int(parent is not None)))
    if np.any(z == 0):
        raise ValueError("Ma f2: zero local energy in a subband (is the image constant?)")
    centre = aux[inner].reshape(-1)
    g = ((centre - centre.mean()) / z).reshape(rows - 2, cols - 2)
    gb = 16 >> scale
    g = g[gb : rows - 2 - gb, gb : cols - 2 - gb]
    return g - g.mean()


def divisive_normalization(pyr: SteerablePyramid) -> list[np.ndarray]:
    """The 12 normalised subbands (scale-major), each 2-D with its guard band removed.

    The release gives a parent only to bands 2..6 of its 13-band list, i.e. to the first five
    fine-scale orientations (a quirk kept for fidelity).
    """
    n_parent = _NOR - 1
    parents = _resize(np.stack(pyr.bands[1][:n_parent]), scale=2.0)
    out = [_normalize_band(pyr, 0, o, parents[o] if o < n_parent else None) for o in range(_NOR)]
    return out + [_normalize_band(pyr, 1, o, None) for o in range(_NOR)]


def _valid_filter(x: np.ndarray) -> np.ndarray:
    """``filter2(fspecial('gaussian', 11, 1.5), x, 'valid')`` as two 1-D passes."""
    w1 = gaussian_kernel(11, 1.5).sum(axis=1)  # the separable factor: k == outer(w1, w1)
    half = w1.size // 2
    t = ndimage.correlate1d(x, w1, axis=0, mode="constant")[half:-half]
    return ndimage.correlate1d(t, w1, axis=1, mode="constant")[:, half:-half]


class _Local:
    """Local Gaussian mean and variance of one image, reused across the pairs it is in."""

    def __init__(self, x: np.ndarray) -> None:
        self.x = x
        self.mu = _valid_filter(x)
        self.var = _valid_filter(x * x) - self.mu * self.mu


def _cs(a: _Local, b: _Local) -> float:
    """Mean SSIM contrast-structure term ``(2 s_ab + C2) / (s_a^2 + s_b^2 + C2)``, C2 = (0.03*255)^2."""
    cov = _valid_filter(a.x * b.x) - a.mu * b.mu
    c2 = (0.03 * 255) ** 2
    return float(np.mean((2 * cov + c2) / (a.var + b.var + c2)))


def ssim_structure(a: np.ndarray, b: np.ndarray) -> float:
    """The release's ``ssim_index_new`` structure term (11x11 Gaussian, sigma 1.5, valid)."""
    return _cs(_Local(a), _Local(b))


def global_gsm_features(y: np.ndarray) -> np.ndarray:
    """The 45 ``f2`` values of a grey image with values 0..255."""
    pyr = build_sf_pyramid(np.asarray(y, dtype=np.float64), height=2, nbands=_NOR)
    sub = divisive_normalization(pyr)
    feats = [float(ggd_shape(s.reshape(-1))) for s in sub]
    for o in range(_NOR):
        pooled = np.concatenate([sub[o].reshape(-1), sub[o + _NOR].reshape(-1)])
        feats.append(float(ggd_shape(pooled)))
    hi0 = _Local(pyr.hi0)
    coarse_up = _resize(np.stack(pyr.bands[1]), size=pyr.hi0.shape)
    for band in [*pyr.bands[0], *coarse_up]:  # fine bands already have hi0's size
        feats.append(_cs(_Local(band), hi0))
    fine = [_Local(s) for s in sub[:_NOR]]
    for i in range(_NOR):
        for j in range(i + 1, _NOR):
            feats.append(_cs(fine[i], fine[j]))
    return np.asarray(feats, dtype=np.float64)

"""Statistics both of Ma et al.'s feature groups use, as the authors' MATLAB release computes them.

Kept apart from :mod:`~esrgan_lit.metrics.ma_features` (local features, the entry point) and
:mod:`~esrgan_lit.metrics.ma_gsm` (global features) so neither has to import the other's module
for them: the entry point imports both, and nothing imports back.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy.special import gamma as gamma_fn

__all__ = ["gaussian_kernel", "ggd_shape"]


def _matlab_colon(a: float, step: float, b: float) -> np.ndarray:
    """MATLAB ``a:step:b`` (first half counted from a, second half back from the end)."""
    n = math.floor((b - a) / step + 1e-10)
    k = np.arange(n + 1, dtype=np.float64)
    last = a + n * step
    return np.where(k <= n // 2, a + k * step, last - (n - k) * step)


@functools.cache
def _ggd_table() -> tuple[np.ndarray, np.ndarray]:
    """Shape grid 0.03:0.001:10 and the GGD ratio Gamma(1/g)Gamma(3/g)/Gamma(2/g)^2 (decreasing)."""
    g = _matlab_colon(0.03, 0.001, 10.0)
    r = gamma_fn(1.0 / g) * gamma_fn(3.0 / g) / gamma_fn(2.0 / g) ** 2
    if not np.all(np.diff(r) < 0):
        raise AssertionError("GGD ratio table is not strictly decreasing")
    return g, r


def ggd_shape(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Generalised-Gaussian shape by moment matching over ``axis`` (the release's ``gama_gen_gauss``).

    rho = var(x) / (mean|x - mean x|^2 + 1e-7) (unbiased variance), then the grid value whose
    ratio is nearest to rho (first one on a tie, as MATLAB ``min``).
    """
    x = np.asarray(x, dtype=np.float64)
    mu = x.mean(axis=axis, keepdims=True)
    var = x.var(axis=axis, ddof=1)
    mad = np.abs(x - mu).mean(axis=axis)
    rho = var / (mad * mad + 1e-7)
    g, r = _ggd_table()
    neg = -r  # increasing
    hi = np.clip(np.searchsorted(neg, -rho, side="left"), 1, r.size - 1)
    lo = hi - 1
    pick = np.where(np.abs(r[hi] - rho) < np.abs(r[lo] - rho), hi, lo)
    pick = np.where(np.isnan(rho), 0, pick)
    return g[pick]


def gaussian_kernel(size: int, sigma: float) -> np.ndarray:
    """MATLAB ``fspecial('gaussian', size, sigma)``."""
    half = (size - 1) / 2.0
    t = np.arange(size, dtype=np.float64) - half
    h = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2.0 * sigma * sigma))
    h[h < np.finfo(np.float64).eps * h.max()] = 0.0
    return h / h.sum()

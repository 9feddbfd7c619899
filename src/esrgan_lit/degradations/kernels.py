"""Blur kernels of the Real-ESRGAN degradation model, built and sampled as batched tensors.

Formulas (facts from BasicSR ``basicsr/data/degradations.py`` and the Real-ESRGAN paper,
Wang et al. ICCVW 2021, Sec. 3.1); the code is ours. With ``x`` a 2-D pixel offset from the
kernel centre and ``S = R(theta) diag(sigma_x^2, sigma_y^2) R(theta)^T``,

* Gaussian:             ``k(x) ~ exp(-1/2 x^T S^-1 x)``
* generalized Gaussian: ``k(x) ~ exp(-1/2 (x^T S^-1 x)^beta)``
* plateau:              ``k(x) ~ 1 / (1 + (x^T S^-1 x)^beta)``
* 2-D sinc (ideal circular low-pass, cut-off ``w`` rad/pixel):
  ``k(x) ~ w J1(w |x|) / (2 pi |x|)`` with ``k(0) = w^2 / (4 pi)``

Every kernel has an odd size ``k`` from {7, 9, ..., 21} and is zero-padded to ``pad_to`` (21)
so a whole batch shares one (N, 21, 21) tensor and one ``filter2d`` call.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from .random import uniform

KERNEL_TYPES: tuple[str, ...] = (
    "iso",
    "aniso",
    "generalized_iso",
    "generalized_aniso",
    "plateau_iso",
    "plateau_aniso",
)
# odd sizes 7..21 (BasicSR's RealESRGANDataset: kernel_range = [2 * v + 1 for v in range(3, 11)])
KERNEL_SIZES: tuple[int, ...] = tuple(2 * v + 1 for v in range(3, 11))


def _grid(pad_to: int, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    half = pad_to // 2
    ax = torch.arange(-half, half + 1, device=device, dtype=dtype)
    yy, xx = torch.meshgrid(ax, ax, indexing="ij")
    return xx, yy


def _size_mask(sizes: Tensor, pad_to: int) -> Tensor:
    """(N, pad_to, pad_to) 1 inside each sample's central ``size x size`` window, else 0."""
    xx, yy = _grid(pad_to, sizes.device, torch.float32)
    half = (sizes.float() // 2).view(-1, 1, 1)
    return ((xx.abs() <= half) & (yy.abs() <= half)).float()


def quadratic_form(sigma_x: Tensor, sigma_y: Tensor, theta: Tensor, pad_to: int) -> Tensor:
    """``x^T S^-1 x`` on the kernel grid for each sample: (N, pad_to, pad_to)."""
    xx, yy = _grid(pad_to, sigma_x.device, sigma_x.dtype)
    c, s = torch.cos(theta).view(-1, 1, 1), torch.sin(theta).view(-1, 1, 1)
    # rotate the offsets into the kernel's principal axes, then scale by 1/sigma^2
    u = c * xx + s * yy
    v = -s * xx + c * yy
    return u**2 / sigma_x.view(-1, 1, 1) ** 2 + v**2 / sigma_y.view(-1, 1, 1) ** 2


def anisotropic_kernels(
    kind: Tensor,
    sigma_x: Tensor,
    sigma_y: Tensor,
    theta: Tensor,
    beta: Tensor,
    sizes: Tensor,
    pad_to: int = 21,
) -> Tensor:
    """Gaussian (kind 0), generalized Gaussian (1) or plateau (2) kernels, each normalised to 1.

    All arguments are (N,) tensors; returns (N, pad_to, pad_to).
    """
    q = quadratic_form(sigma_x, sigma_y, theta, pad_to)
    b = beta.view(-1, 1, 1)
    gauss = torch.exp(-0.5 * q)
    generalized = torch.exp(-0.5 * q.pow(b))
    plateau = 1.0 / (1.0 + q.pow(b))
    k = kind.view(-1, 1, 1)
    out = torch.where(k == 0, gauss, torch.where(k == 1, generalized, plateau))
    out = out * _size_mask(sizes, pad_to).to(out.dtype)
    return out / out.sum(dim=(-2, -1), keepdim=True)


def sinc_kernels(cutoff: Tensor, sizes: Tensor, pad_to: int = 21) -> Tensor:
    """Circular low-pass (2-D sinc) kernels with cut-off ``cutoff`` (rad/pixel), sum 1."""
    xx, yy = _grid(pad_to, cutoff.device, cutoff.dtype)
    r = torch.sqrt(xx**2 + yy**2)
    w = cutoff.view(-1, 1, 1)
    safe_r = torch.where(r == 0, torch.ones_like(r), r)
    k = w * torch.special.bessel_j1(w * safe_r) / (2 * math.pi * safe_r)
    k = torch.where(r == 0, w**2 / (4 * math.pi), k)
    k = k * _size_mask(sizes, pad_to).to(k.dtype)
    return k / k.sum(dim=(-2, -1), keepdim=True)


def identity_kernels(n: int, pad_to: int, device: torch.device) -> Tensor:
    """Unit pulses: filtering with them leaves the image unchanged."""
    k = torch.zeros(n, pad_to, pad_to, device=device)
    k[:, pad_to // 2, pad_to // 2] = 1.0
    return k


def _beta(n: int, lo: float, hi: float, g: torch.Generator | None, device: torch.device) -> Tensor:
    """BasicSR's shape draw: half the time in [lo, 1), half in [1, hi)."""
    below = uniform(n, lo, 1.0, g, device)
    above = uniform(n, 1.0, hi, g, device)
    return torch.where(uniform(n, 0.0, 1.0, g, device) < 0.5, below, above)


def _choice(n: int, probs: Sequence[float], g: torch.Generator | None, device: torch.device):
    p = torch.tensor([float(x) for x in probs], dtype=torch.float32)
    if p.numel() == 0 or (p < 0).any() or float(p.sum()) <= 0:
        raise ValueError(f"probabilities must be >= 0 with a positive sum, got {list(probs)}")
    gdev = g.device if g is not None else device
    return torch.multinomial(p.to(gdev), n, replacement=True, generator=g).to(device)


def sample_blur_kernels(
    n: int,
    *,
    kernel_list: Sequence[str] = KERNEL_TYPES,
    kernel_prob: Sequence[float] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03),
    sigma_range: Sequence[float] = (0.2, 3.0),
    betag_range: Sequence[float] = (0.5, 4.0),
    betap_range: Sequence[float] = (1.0, 2.0),
    sinc_prob: float = 0.1,
    kernel_size: int = 21,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> Tensor:
    """One random blur kernel per sample, (n, kernel_size, kernel_size), as RealESRGANDataset.

    Size uniform in {7, ..., kernel_size}; with ``sinc_prob`` a sinc with cut-off in
    [pi/3, pi] (size < 13) or [pi/5, pi]; otherwise a kernel type from ``kernel_list`` with
    ``kernel_prob``: iso types share one sigma and angle 0, aniso types draw sigma_x, sigma_y
    and an angle in [-pi, pi].
    """
    device = torch.device(device)
    unknown = [k for k in kernel_list if k not in KERNEL_TYPES]
    if unknown or len(kernel_list) != len(kernel_prob):
        raise ValueError(
            f"kernel_list {list(kernel_list)} must name types from {KERNEL_TYPES} and match "
            f"kernel_prob {list(kernel_prob)} in length"
        )
    sizes_all = torch.tensor([s for s in KERNEL_SIZES if s <= kernel_size], device=device)
    if kernel_size % 2 == 0 or sizes_all.numel() == 0:
        raise ValueError(f"blur kernel_size must be odd and >= 7, got {kernel_size}")
    sizes = sizes_all[_choice(n, [1.0] * sizes_all.numel(), generator, device)]
    picked = _choice(n, kernel_prob, generator, device)
    type_index = torch.tensor([KERNEL_TYPES.index(k) for k in kernel_list], device=device)
    t = type_index[picked]  # index into KERNEL_TYPES
    iso = t % 2 == 0
    kind = t // 2  # 0 gaussian, 1 generalized, 2 plateau
    lo, hi = float(sigma_range[0]), float(sigma_range[1])
    sx = uniform(n, lo, hi, generator, device)
    sy = torch.where(iso, sx, uniform(n, lo, hi, generator, device))
    theta = torch.where(iso, torch.zeros_like(sx), uniform(n, -math.pi, math.pi, generator, device))
    beta = torch.where(
        kind == 1,
        _beta(n, float(betag_range[0]), float(betag_range[1]), generator, device),
        _beta(n, float(betap_range[0]), float(betap_range[1]), generator, device),
    )
    kernels = anisotropic_kernels(kind, sx, sy, theta, beta, sizes, kernel_size)
    use_sinc = uniform(n, 0.0, 1.0, generator, device) < float(sinc_prob)
    small = sizes < 13
    cutoff = torch.where(
        small,
        uniform(n, math.pi / 3, math.pi, generator, device),
        uniform(n, math.pi / 5, math.pi, generator, device),
    )
    sinc = sinc_kernels(cutoff, sizes, kernel_size)
    return torch.where(use_sinc.view(-1, 1, 1), sinc, kernels)


def sample_final_sinc(
    n: int,
    *,
    prob: float = 0.8,
    kernel_size: int = 21,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> Tensor:
    """The last stage's sinc (cut-off in [pi/3, pi]) with probability ``prob``, else a pulse."""
    device = torch.device(device)
    sizes_all = torch.tensor([s for s in KERNEL_SIZES if s <= kernel_size], device=device)
    sizes = sizes_all[_choice(n, [1.0] * sizes_all.numel(), generator, device)]
    cutoff = uniform(n, math.pi / 3, math.pi, generator, device)
    use = uniform(n, 0.0, 1.0, generator, device) < float(prob)
    sinc = sinc_kernels(cutoff, sizes, kernel_size)
    return torch.where(use.view(-1, 1, 1), sinc, identity_kernels(n, kernel_size, device))

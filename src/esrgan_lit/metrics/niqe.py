"""NIQE (Mittal et al. 2013) as MATLAB's ``niqe`` computes it, vectorised in torch.

Why another NIQE: ports differ from MATLAB by up to a few tenths through float Y, a different
downscaler or border mode. This one follows MATLAB step by step — uint8 Y, crop to whole 96x96
blocks, MSCN with the 7x7 Gaussian window and replicate borders, AGGD features of each block and
of its four circularly shifted neighbour products, a second scale made by MATLAB's bicubic x0.5
(``esrgan_lit.ops.imresize``), an MVG fit (``nanmean``, ``nancov``) compared with the pristine
model through ``pinv`` — but runs every block of every image of a batch at once, on any device.
"""

from __future__ import annotations

import contextlib
import functools
import io
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric

from esrgan_lit.metrics.errors import MetricUnavailableError
from esrgan_lit.metrics.psnr_ssim import scoring_space
from esrgan_lit.ops.imresize import imresize

__all__ = ["NIQE", "load_pristine_params", "niqe", "niqe_from_y"]

_ZERO_TOL = 1e-8  # |img - mu| (0..255 scale) below this is rounding noise around an exact 0
_CPU_CHUNK_ELEMS = 8 * 96 * 96  # block pixels per feature chunk on CPU
_SHIFTS = ((0, 1), (1, 0), (1, 1), (-1, 1))  # neighbour pairs: H, V, D1, D2 (MATLAB circshift)


def load_pristine_params(path: str | Path | None = None) -> dict[str, Tensor]:
    """The pristine MVG model (``mu_pris_param`` 1x36, ``cov_pris_param`` 36x36, ``gaussian_window``
    7x7) as float64 tensors; by default the copy shipped inside the package."""
    try:
        if path is None:
            res = resources.files("esrgan_lit").joinpath("resources/niqe_pris_params.npz")
            data = np.load(io.BytesIO(res.read_bytes()), allow_pickle=False)
            where = "package resource esrgan_lit/resources/niqe_pris_params.npz"
        else:
            data = np.load(Path(path), allow_pickle=False)
            where = str(path)
    except (OSError, ValueError) as err:
        raise MetricUnavailableError(f"NIQE pristine model not readable: {err}") from err
    out = {}
    for key, shape in (
        ("mu_pris_param", (1, 36)),
        ("cov_pris_param", (36, 36)),
        ("gaussian_window", (7, 7)),
    ):
        if key not in data or data[key].shape != shape:
            raise MetricUnavailableError(f"{where}: expected array {key!r} of shape {shape}")
        out[key] = torch.from_numpy(np.asarray(data[key], dtype=np.float64))
    return out


@functools.lru_cache(maxsize=4)
def _gamma_grid(device: torch.device) -> tuple[Tensor, Tensor]:
    """MATLAB's shape grid ``0.2:0.001:10`` and r(g) = G(2/g)^2 / (G(1/g) G(3/g)), increasing in g."""
    gam = 0.2 + 0.001 * torch.arange(9801, dtype=torch.float64, device=device)
    r = torch.exp(2 * torch.lgamma(2 / gam) - torch.lgamma(1 / gam) - torch.lgamma(3 / gam))
    return gam, r


def _aggd(v: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Moment-matching AGGD fit along the last dim: shape alpha, left and right scales.

    Empty sides give NaN (MATLAB's mean of an empty vector) and a NaN ratio picks the first grid
    point, as MATLAB's ``min`` does; ``nancov`` later drops such blocks.
    """
    neg, pos = v.clamp(max=0.0), v.clamp(min=0.0)
    left_sq = torch.linalg.vecdot(neg, neg)  # sums of squares as BLAS dots: one pass each
    right_sq = torch.linalg.vecdot(pos, pos)
    left = torch.sqrt(left_sq / torch.count_nonzero(neg, dim=-1))  # 0/0 -> NaN
    right = torch.sqrt(right_sq / torch.count_nonzero(pos, dim=-1))
    g = left / right
    n = v.shape[-1]
    rhat = ((pos.sum(-1) - neg.sum(-1)) / n).square() / ((left_sq + right_sq) / n)
    rnorm = rhat * (g**3 + 1) * (g + 1) / (g**2 + 1).square()
    gam, r = _gamma_grid(v.device)
    # argmin((r - rnorm)^2) on a strictly increasing grid: the nearer of the two neighbours.
    hi = torch.searchsorted(r, rnorm.nan_to_num(0.0).contiguous()).clamp(max=r.numel() - 1)
    lo = (hi - 1).clamp(min=0)
    take_lo = (r[lo] - rnorm).square() <= (r[hi] - rnorm).square()
    idx = torch.where(take_lo | rnorm.isnan(), lo, hi)
    idx = torch.where(rnorm.isnan(), torch.zeros_like(idx), idx)
    alpha = gam[idx]
    k = torch.exp(0.5 * (torch.lgamma(1 / alpha) - torch.lgamma(3 / alpha)))
    return alpha, left * k, right * k


def _block_features(blocks: Tensor) -> Tensor:
    """(N, B, s, s) MSCN blocks -> (N, B, 18): [alpha, mean beta] + 4 x [alpha, mean, bl, br]."""
    n, b, h, w = blocks.shape
    prods = blocks.new_empty(n, b, 5, h, w)
    prods[:, :, 0] = blocks
    for i, shift in enumerate(_SHIFTS, start=1):
        torch.mul(blocks, torch.roll(blocks, shifts=shift, dims=(-2, -1)), out=prods[:, :, i])
    alpha, bl, br = _aggd(prods.view(n, b, 5, h * w))  # each (N, B, 5)
    mean = (br - bl) * torch.exp(torch.lgamma(2 / alpha) - torch.lgamma(1 / alpha))
    pairs = torch.stack([alpha, mean, bl, br], dim=-1)[:, :, 1:].flatten(2)  # (N, B, 16)
    first = torch.stack([alpha[..., 0], (bl[..., 0] + br[..., 0]) / 2], dim=-1)
    return torch.cat([first, pairs], dim=-1)


def _features_chunked(blocks: Tensor) -> Tensor:
    """(M, s, s) blocks -> (M, 18), a few blocks at a time on CPU.

    Small chunks keep every temporary in cache and below glibc's mmap threshold; whole-batch
    temporaries (tens of MB each) cost more in fresh-page faults than in arithmetic (4x here).
    """
    if blocks.device.type != "cpu":
        return _block_features(blocks.unsqueeze(0))[0]
    step = max(1, _CPU_CHUNK_ELEMS // blocks[0].numel())
    return torch.cat([_block_features(c.unsqueeze(0))[0] for c in blocks.split(step)])


def _separable(window: Tensor) -> tuple[Tensor, Tensor] | None:
    """Column/row factors of a rank-1 window (a Gaussian is), else None."""
    col, row = window.sum(dim=1), window.sum(dim=0)
    col, row = col / col.sum().sqrt(), row / row.sum().sqrt()
    return (col, row) if torch.allclose(torch.outer(col, row), window, rtol=0, atol=1e-12) else None


def _filter1d(x: Tensor, weights: list[float], dim: int) -> Tensor:
    """'Valid' correlation with a 1-D kernel along ``dim`` as a sum of shifted slices."""
    k = len(weights)
    n = x.shape[dim] - k + 1
    out = x.narrow(dim, 0, n) * weights[0]
    for i in range(1, k):
        out.add_(x.narrow(dim, i, n), alpha=weights[i])
    return out


def _mscn(img: Tensor, window: Tensor) -> Tensor:
    """Mean-subtracted contrast-normalised coefficients, ``imfilter(..., 'replicate')``.

    The Gaussian is applied as two 1-D passes of shifted slices (as MATLAB's ``imfilter`` does for
    separable kernels; float64 ``conv2d`` is several times slower on CPU). Where ``img - mu`` is
    exactly 0 in exact arithmetic (flat neighbourhoods, mirror-symmetric ones) any filter leaves
    +-1e-14 noise whose sign is arbitrary; the AGGD fit counts every negative/positive value, so
    that noise moves NIQE by ~4e-4 on the baboon oracle, whose MATLAB score needs exact zeros in
    its flat regions. Such deviations are set to exactly 0. An image without texture (all blocks
    flat) has no usable block and scores NaN.
    """
    k = window.shape[-1]
    pad = k // 2
    padded = F.pad(img, (pad, pad, pad, pad), mode="replicate")
    factors = _separable(window)
    if factors is None:
        w = window.view(1, 1, k, k)

        def blur(x: Tensor) -> Tensor:
            return F.conv2d(x, w)

    else:
        col, row = factors[0].tolist(), factors[1].tolist()

        def blur(x: Tensor) -> Tensor:
            return _filter1d(_filter1d(x, col, -2), row, -1)

    mu = blur(padded)
    sigma = torch.sqrt((blur(padded * padded) - mu * mu).abs())
    dev = img - mu
    dev = torch.where(dev.abs() <= _ZERO_TOL, torch.zeros_like(dev), dev)
    return dev / (sigma + 1)


def niqe_from_y(img: Tensor, params: dict[str, Tensor], block_size: int = 96) -> Tensor:
    """NIQE of (N, 1, H, W) intensities on the 0..255 scale (already rounded as wanted), (N,)."""
    if img.dim() != 4 or img.shape[1] != 1:
        raise ValueError(f"niqe_from_y expects (N, 1, H, W), got {tuple(img.shape)}")
    if block_size % 2:
        raise ValueError(f"block_size must be even (halved at scale 2), got {block_size}")
    n, _, h, w = img.shape
    nh, nw = h // block_size, w // block_size
    if nh == 0 or nw == 0:
        raise ValueError(f"NIQE needs an image of at least {block_size}x{block_size}, got {h}x{w}")
    dev = img.device
    window = params["gaussian_window"].to(dev)
    img = img.to(torch.float64)[..., : nh * block_size, : nw * block_size]
    feats = []
    for scale in (1, 2):
        bs = block_size // scale
        blocks = _mscn(img, window).view(n, nh, bs, nw, bs).permute(0, 1, 3, 2, 4)
        feats.append(_features_chunked(blocks.reshape(n * nh * nw, bs, bs)).view(n, nh * nw, -1))
        if scale == 1:
            img = imresize(img, 0.5)
    feat = torch.cat(feats, dim=-1)  # (N, B, 36)

    mu = torch.nanmean(feat, dim=1)
    valid = (~feat.isnan().any(dim=-1)).to(feat.dtype).unsqueeze(-1)  # nancov: whole rows
    nv = valid.sum(dim=1)
    clean = feat.nan_to_num(0.0) * valid
    centred = (clean - clean.sum(dim=1, keepdim=True) / nv.unsqueeze(1)) * valid
    cov = centred.transpose(1, 2) @ centred / (nv.unsqueeze(-1) - 1)
    ok = (
        (nv.squeeze(-1) >= 2)
        & torch.isfinite(cov).flatten(1).all(dim=1)
        & torch.isfinite(mu).all(1)
    )
    mu_p = params["mu_pris_param"].to(dev)
    pooled = (params["cov_pris_param"].to(dev) + torch.where(ok[:, None, None], cov, 0.0)) / 2
    d = (mu_p - torch.where(ok[:, None], mu, 0.0)).unsqueeze(1)  # (N, 1, 36)
    q = (d @ torch.linalg.pinv(pooled) @ d.transpose(1, 2)).flatten()
    return torch.where(ok, torch.sqrt(q), torch.full_like(q, float("nan")))


@contextlib.contextmanager
def _intra_op_threads(n: int | None, device: torch.device) -> Iterator[None]:
    """Run CPU work with ``n`` intra-op threads, restoring torch's setting afterwards."""
    if n is None or device.type != "cpu" or n == torch.get_num_threads():
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def niqe(
    x: Tensor,
    *,
    crop_border: int = 0,
    round_y: bool = True,
    block_size: int = 96,
    params: dict[str, Tensor] | None = None,
    cpu_threads: int | None = 1,
) -> Tensor:
    """NIQE per image of float [0, 1] images (N, 3|1, H, W), shape (N,), float64 (lower = better).

    RGB is scored on MATLAB's uint8 Y (``round_y=False``: unrounded float Y), grey on its
    quantised values; ``crop_border`` pixels are shaved first. On CPU the work is hundreds of
    millisecond-sized ops, where OpenMP hand-offs cost more than they gain (4x slower with two
    threads on a busy 2-core machine), so it runs on ``cpu_threads`` threads (None: torch's own).
    """
    with _intra_op_threads(cpu_threads, x.device):
        y = scoring_space(x, crop_border=crop_border, test_y_channel=True, round_y=round_y)
        return niqe_from_y(y, params if params is not None else load_pristine_params(), block_size)


class NIQE(Metric):
    """Mean NIQE over images (no reference: ``update(preds)``); sum/count states for DDP."""

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(
        self,
        crop_border: int = 0,
        *,
        round_y: bool = True,
        block_size: int = 96,
        params_path: str | Path | None = None,
        cpu_threads: int | None = 1,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if crop_border < 0:
            raise ValueError(f"crop_border must be >= 0, got {crop_border}")
        self.crop_border = int(crop_border)
        self.round_y = bool(round_y)
        self.block_size = int(block_size)
        self.cpu_threads = cpu_threads
        self._params = load_pristine_params(params_path)
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Tensor) -> None:
        values = niqe(
            preds,
            crop_border=self.crop_border,
            round_y=self.round_y,
            block_size=self.block_size,
            cpu_threads=self.cpu_threads,
            params=self._params,
        )
        self.total += values.sum().to(self.total)
        self.count += values.numel()

    def compute(self) -> Tensor:
        return self.total / self.count

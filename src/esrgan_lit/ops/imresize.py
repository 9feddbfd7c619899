"""MATLAB-exact bicubic ``imresize`` in PyTorch.

MATLAB's ``imresize(I, s, 'bicubic')`` is the reference that every published SR number was made
with (the LR inputs and the bicubic baselines). Its details matter for the last digit: a cubic
kernel with a = -0.5, a kernel stretched by 1/scale when shrinking with antialiasing, mirror
("symmetric") borders, output size ``ceil(in * scale)``, and the two axes resized one after the
other, the one with the smaller scale first.

Each axis is one linear map (out, in), precomputed once per (in, out, scale), its mirrored border
taps folded back onto real pixels. The general path applies it on CPU as a sparse CSR product;
on other devices (and for autograd) as a gather + weighted sum (exact fp32/fp64, never TF32).

Fast CPU paths (same float64-computed weights; they agree with the general path to rounding):

* float32 rows, any factor: an output row is a weighted sum of ~16 input rows (mirrored taps are
  plain row indices), i.e. an embedding bag (sum mode, per-sample weights) over the B*H rows.
  fbgemm's JIT kernel reads the image once: ~1.5x faster than a bmm over row windows.
* Integer factors (x1/s, xs: the usual SR degradations) have periodic taps: every group of P
  output samples uses the same P kernels at an input offset advanced by Q (P = 1, Q = s down;
  P = s, Q = 1 up). float32 columns, when ``in = Q * out / P``: rows laid end to end are one long
  signal whose groups keep advancing by Q, so the whole axis is one oneDNN strided convolution
  reading the rows in place, whose channels-last output is the result in place; only the border
  samples (mirrored taps, windows running into the next row) are rewritten from a small dense
  block. float64 (no fast fp64 convolution on CPU): rows as one batched matmul over overlapping
  row windows (a strided view), columns by transposing and using that.

x1/4 of a DIV2K image, float32: see benchmarks/bench_imresize.py (vs a NumPy loop port).
"""

from __future__ import annotations

import functools
import math
import threading
import warnings
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["imresize"]


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``)."""
    ax = np.abs(x)
    ax2 = ax * ax
    ax3 = ax2 * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


def _raw_weights(
    in_len: int, out_len: int, scale: float, antialias: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(out, taps) normalised weights, zero taps kept, and each row's first 0-based input index.

    MATLAB's ``contributions``: output pixel x (1-based) maps to input coordinate
    ``u = x / scale + 0.5 * (1 - 1 / scale)``; taps from ``floor(u - width / 2)`` on.
    """
    kernel_width = 4.0
    stretch = scale if (scale < 1 and antialias) else 1.0
    kernel_width /= stretch
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - kernel_width / 2.0)
    idx = left[:, None] + np.arange(math.ceil(kernel_width) + 2, dtype=np.float64)[None, :]
    weights = stretch * _cubic(stretch * (u[:, None] - idx))
    weights = weights / weights.sum(axis=1, keepdims=True)
    return weights, left.astype(np.int64) - 1


@functools.lru_cache(maxsize=128)
def _contributions(
    in_len: int, out_len: int, scale: float, antialias: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Per output pixel: float64 weights and 0-based mirror-folded input indices (no zero taps)."""
    weights, left = _raw_weights(in_len, out_len, scale, antialias)
    idx = left[:, None] + np.arange(weights.shape[1])[None, :]
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    idx = mirror[np.mod(idx, 2 * in_len)]
    keep = np.any(weights != 0, axis=0)
    return weights[:, keep], idx[:, keep]


def _dense_matrix(in_len: int, out_len: int, scale: float, antialias: bool) -> torch.Tensor:
    """The (out, in) float64 resampling matrix (mirrored taps summed onto their pixel)."""
    weights, idx = _contributions(in_len, out_len, scale, antialias)
    mat = torch.zeros(out_len, in_len, dtype=torch.float64)
    mat.scatter_add_(1, torch.from_numpy(idx), torch.from_numpy(weights))
    return mat


@functools.lru_cache(maxsize=64)
def _csr_matrix(
    in_len: int, out_len: int, scale: float, antialias: bool, dtype: torch.dtype
) -> torch.Tensor:
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the product we use is stable
        warnings.simplefilter("ignore", UserWarning)
        return _dense_matrix(in_len, out_len, scale, antialias).to(dtype).to_sparse_csr()


def _resize_last_gather(
    y: torch.Tensor, out_len: int, scale: float, antialias: bool
) -> torch.Tensor:
    """Resize the last axis with a gather + weighted sum (any device, autograd-friendly)."""
    weights, idx = _contributions(y.shape[-1], out_len, scale, antialias)
    w = torch.from_numpy(weights).to(device=y.device, dtype=y.dtype)
    i = torch.from_numpy(idx).to(y.device)
    taps = y.index_select(-1, i.reshape(-1)).unflatten(-1, tuple(i.shape))
    return (taps * w).sum(-1)


def _resize_rows_cpu(y: torch.Tensor, out_len: int, scale: float, antialias: bool) -> torch.Tensor:
    """(B, H, W) -> (B, out, W) on CPU: one sparse (out, H) @ (H, W) product per slice."""
    mat = _csr_matrix(y.shape[-2], out_len, scale, antialias, y.dtype)
    return torch.stack([mat @ y[b] for b in range(y.shape[0])])


def _resize_cols_cpu(y: torch.Tensor, out_len: int, scale: float, antialias: bool) -> torch.Tensor:
    """(B, H, W) -> (B, H, out) on CPU: one sparse (out, W) @ (W, B*H) product."""
    b, h, w = y.shape
    mat = _csr_matrix(w, out_len, scale, antialias, y.dtype)
    res = mat @ y.reshape(b * h, w).T.contiguous()
    return res.T.reshape(b, h, out_len).contiguous()


class _Periodic(NamedTuple):
    """An integer-factor axis: output ``g*P + r`` = ``kernel[r] . x[g*Q + start : ... + L]``."""

    period: int  # P outputs per group
    step: int  # Q input samples per group
    start: int  # input offset of group 0's window (negative: it reaches into the mirror)
    kernel: np.ndarray  # (P, L) float64 taps
    first: int  # first group whose window lies inside the input
    last: int  # last such group (inclusive)
    borders: tuple  # ((out_lo, out_hi, in_lo, in_hi, dense float64 block), ...) for the rest


@functools.lru_cache(maxsize=128)
def _periodic(in_len: int, out_len: int, scale: float, antialias: bool) -> _Periodic | None:
    """The periodic form of an axis' taps, or None (non-integer factor, or no inner group)."""
    if scale < 1:
        period, step = 1, round(1 / scale)
        integer = abs(step * scale - 1) < 1e-12
    else:
        period, step = round(scale), 1
        integer = abs(scale / period - 1) < 1e-12
    groups = out_len // period
    if not integer or groups == 0:
        return None
    weights, left = _raw_weights(in_len, out_len, scale, antialias)
    w = weights[: groups * period].reshape(groups, period, -1)
    lft = left[: groups * period].reshape(groups, period)
    expected = lft[:1] + step * np.arange(groups)[:, None]
    if np.abs(w - w[:1]).max() > 1e-12 or not np.array_equal(lft, expected):
        return None  # not periodic after all: keep the general path
    lead = lft[0] - lft[0, 0]
    kernel = np.zeros((period, int(lead.max()) + w.shape[2]))
    for r in range(period):
        kernel[r, lead[r] : lead[r] + w.shape[2]] = w[0, r]
    nonzero = np.flatnonzero(np.any(kernel != 0, axis=0))
    kernel = kernel[:, nonzero[0] : nonzero[-1] + 1]
    start = int(lft[0, 0]) + int(nonzero[0])
    first = max(0, -(start // step))
    last = min(groups - 1, (in_len - kernel.shape[1] - start) // step)
    if last < first:
        return None
    dense = _dense_matrix(in_len, out_len, scale, antialias).numpy()
    borders = []
    for lo, hi in ((0, first * period), ((last + 1) * period, out_len)):
        if hi > lo:
            cols = np.flatnonzero(np.any(dense[lo:hi] != 0, axis=0))
            a, b = int(cols[0]), int(cols[-1]) + 1
            borders.append((lo, hi, a, b, dense[lo:hi, a:b].copy()))
    return _Periodic(period, step, start, kernel, first, last, tuple(borders))


_WORKSPACE = threading.local()
_WORKSPACE_MAX_BYTES = 64 * 2**20


def _workspace(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """A per-thread scratch tensor for the intermediate of the two passes (float64 rows).

    Freshly allocated multi-MB tensors cost page faults comparable to the resize itself; the
    intermediate never leaves ``imresize``, so one buffer (<= the max) is kept and reused.
    """
    numel = math.prod(shape)
    if numel * dtype.itemsize > _WORKSPACE_MAX_BYTES:
        return torch.empty(shape, dtype=dtype)
    buf = getattr(_WORKSPACE, "buf", None)
    if buf is None or buf.dtype != dtype or buf.numel() < numel or buf.numel() > 4 * numel:
        # A normal tensor even when first asked for under inference_mode: an inference tensor
        # could not be written by a later call made outside it (e.g. training after validation).
        with torch.inference_mode(False):
            buf = torch.empty(numel, dtype=dtype)
        _WORKSPACE.buf = buf
    return buf[:numel].view(shape)


def _periodic_rows(y: torch.Tensor, plan: _Periodic, out_len: int, scratch: bool) -> torch.Tensor:
    """Axis 1 of a contiguous (B, H, W): one bmm of the kernel over overlapping row windows."""
    b, h, w = y.shape
    p, q, length = plan.period, plan.step, plan.kernel.shape[1]
    kernel = torch.from_numpy(plan.kernel).to(y.dtype)
    shape = (b, out_len, w)
    out = _workspace(shape, y.dtype) if scratch else torch.empty(shape, dtype=y.dtype)
    n = plan.last - plan.first + 1
    origin = y.storage_offset() + (plan.first * q + plan.start) * w
    if h % q == 0 and out_len * q == h * p:
        # slices stacked: group g of slice i is group i*h/q + g of the whole stack; the groups
        # that straddle two slices land exactly on border rows, rewritten below
        count = (b - 1) * (h // q) + n
        windows = y.as_strided((count, length, w), (q * w, w, 1), origin)
        dst = out.view(b * out_len, w)[plan.first * p : plan.first * p + count * p]
        torch.bmm(kernel.expand(count, p, length), windows, out=dst.view(count, p, w))
    else:
        for i in range(b):
            windows = y.as_strided((n, length, w), (q * w, w, 1), origin + i * h * w)
            dst = out[i, plan.first * p : (plan.last + 1) * p].view(n, p, w)
            torch.bmm(kernel.expand(n, p, length), windows, out=dst)
    for lo, hi, a, c, block in plan.borders:  # mirrored taps: a small dense product each
        torch.matmul(torch.from_numpy(block).to(y.dtype), y[:, a:c], out=out[:, lo:hi])
    return out


def _periodic_cols(y: torch.Tensor, plan: _Periodic, out_len: int) -> torch.Tensor:
    """Axis 2 of a contiguous (B, H, W) by transposing: float64, and rows that do not stack."""
    t = _periodic_rows(y.transpose(1, 2).contiguous(), plan, out_len, scratch=False)
    return t.transpose(1, 2).contiguous()


class _ConvPlan(NamedTuple):
    """An integer-factor axis as a strided convolution with ``C * P`` output channels."""

    weight: torch.Tensor  # (C*P, 1, 1, K): channel c*P + r = kernel[r] shifted by c*Q
    groups: int  # C groups of P outputs per conv position
    step: int  # Q input samples per group
    start: int  # input offset of group 0's window (negative: it reaches into the mirror)
    borders: tuple  # ((out_lo, out_hi, in_lo, in_hi, (out, in) dense block), ...)


@functools.lru_cache(maxsize=64)
def _conv_plan(
    in_len: int, out_len: int, scale: float, antialias: bool, dtype: torch.dtype
) -> _ConvPlan | None:
    """``_periodic`` regrouped for ``_resize_cols_conv``; None unless float32, in = Q*out/P.

    Then rows laid end to end are one long input whose groups advance by Q across row ends too.
    C groups side by side make >= 8 output channels: oneDNN's direct convolution reads the rows
    in place, and its channels-last output is the resized rows in place.
    """
    plan = _periodic(in_len, out_len, scale, antialias)
    p = 0 if plan is None else plan.period
    if dtype != torch.float32 or plan is None or in_len * p != plan.step * out_len:
        return None  # (no fast float64 convolution on CPU)
    q, length = plan.step, plan.kernel.shape[1]
    c = 8 // math.gcd(8, p)
    kernel = np.zeros((c * p, (c - 1) * q + length))
    for i in range(c):
        kernel[i * p : (i + 1) * p, i * q : i * q + length] = plan.kernel
    with torch.inference_mode(False):  # cached: must stay usable outside inference_mode
        weight = torch.from_numpy(kernel).to(dtype).view(c * p, 1, 1, -1)
        borders = tuple(
            (lo, hi, a, b, torch.from_numpy(block).to(dtype))
            for lo, hi, a, b, block in plan.borders
        )
    return _ConvPlan(weight, c, q, plan.start, borders)


def _resize_cols_conv(y: torch.Tensor, plan: _ConvPlan, out_len: int) -> torch.Tensor | None:
    """Axis 2 of a contiguous float32 (B, H, W) by ``plan``; None if no padding fits.

    Position u computes groups u*C - d ... u*C - d + C - 1: with zero padding d*Q - start, a
    shift d in [0, C) makes the output hold every group of every row at a fixed offset (no copy
    out). Border samples (mirrored taps; windows running into the next row) are then rewritten.
    """
    b, h, w = y.shape
    c, q = plan.groups, plan.step
    p = plan.weight.shape[0] // c
    n, k, groups = b * h * w, plan.weight.shape[-1], b * h * out_len // p
    flat = y.as_strided((1, 1, 1, n), (n, 1, n, 1), y.storage_offset())  # channels last
    for d in range(c):
        pad = d * q - plan.start
        count = (n + 2 * pad - k) // (c * q) + 1
        if pad >= 0 and count > 0 and count * c - d >= groups:
            res = F.conv2d(flat, plan.weight, stride=(1, c * q), padding=(0, pad))
            out = res.permute(0, 2, 3, 1).reshape(-1)[d * p : (d + groups) * p].view(b, h, -1)
            for lo, hi, a, e, block in plan.borders:  # elementwise: a tiny BLAS call spins threads
                out[:, :, lo:hi] = (y[:, :, None, a:e] * block).sum(-1)
            return out
    return None


@functools.lru_cache(maxsize=64)
def _bags(
    in_len: int, out_len: int, scale: float, antialias: bool, batch: int, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Row indices, bag offsets and weights of ``_resize_rows_bags`` for ``batch`` slices."""
    weights, idx = _contributions(in_len, out_len, scale, antialias)
    taps = idx.shape[1]
    with torch.inference_mode(False):  # cached: must stay usable outside inference_mode
        rows = torch.from_numpy(idx)[None] + in_len * torch.arange(batch).view(-1, 1, 1)
        offsets = torch.arange(0, batch * out_len * taps, taps)
        w = torch.from_numpy(weights).to(dtype).repeat(batch, 1)
        return rows.flatten(), offsets, w.flatten()


def _resize_rows_bags(y: torch.Tensor, out_len: int, scale: float, antialias: bool) -> torch.Tensor:
    """Axis 1 of a contiguous (B, H, W), any factor: an embedding bag over the B*H rows.

    Sum mode with per-sample weights, i.e. fbgemm's JIT kernel: the image is read once from
    memory (each row a few times from cache); mirrored border taps are plain row indices.
    """
    b, h, w = y.shape
    idx, offsets, weights = _bags(h, out_len, scale, antialias, b, y.dtype)
    table = y.view(b * h, w)
    res = torch.ops.aten._embedding_bag_forward_only(table, idx, offsets, False, 0, False, weights)
    return res[0].view(b, out_len, w)


def _resize_axis(
    y: torch.Tensor, axis: int, out_len: int, scale: float, antialias: bool, scratch: bool = False
) -> torch.Tensor:
    """Resize axis 1 (rows) or 2 (columns) of a (B, H, W) tensor.

    ``scratch``: the result is an intermediate that may live in the reused workspace.
    """
    if y.device.type == "cpu" and not y.requires_grad:
        y = y.contiguous()
        if axis == 1 and y.dtype == torch.float32:
            return _resize_rows_bags(y, out_len, scale, antialias)
        plan = _periodic(y.shape[axis], out_len, scale, antialias)
        if plan is None:
            resize = _resize_rows_cpu if axis == 1 else _resize_cols_cpu
            return resize(y, out_len, scale, antialias)
        if axis == 1:
            return _periodic_rows(y, plan, out_len, scratch)
        conv = _conv_plan(y.shape[2], out_len, scale, antialias, y.dtype)
        res = None if conv is None else _resize_cols_conv(y, conv, out_len)
        return res if res is not None else _periodic_cols(y, plan, out_len)
    if axis == 2:
        return _resize_last_gather(y, out_len, scale, antialias)
    return _resize_last_gather(y.transpose(1, 2), out_len, scale, antialias).transpose(1, 2)


def _pair(value: float | Sequence[float], name: str) -> tuple[float, float]:
    if isinstance(value, (int, float)):
        return float(value), float(value)
    vals = tuple(float(v) for v in value)
    if len(vals) != 2:
        raise ValueError(f"imresize: {name} must be a number or a pair (h, w), got {value!r}")
    return vals  # type: ignore[return-value]


def imresize(
    x: torch.Tensor,
    scale: float | Sequence[float] | None = None,
    *,
    size: Sequence[int] | None = None,
    antialias: bool = True,
) -> torch.Tensor:
    """Resize like MATLAB ``imresize(x, scale, 'bicubic')`` (or ``imresize(x, size, ...)``).

    ``x`` is a float tensor (C, H, W) or (N, C, H, W), float32 or float64, in any value range
    ([0, 1] or [0, 255]), on any device. Give exactly one of ``scale`` (a factor, or an (h, w)
    pair; the output is ``ceil(in * scale)``) and ``size`` (the output (h, w)). The result keeps
    the layout, dtype and device and is *not* rounded or clamped: for a MATLAB-identical uint8
    image round half away from zero (``floor(v + 0.5)`` for v >= 0) and clamp, in float64 for
    the last bit.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"imresize expects a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"imresize expects a float32/float64 tensor, got {x.dtype}; convert first "
            "(e.g. x.double()) and round the result yourself"
        )
    if x.ndim not in (3, 4):
        raise ValueError(f"imresize expects (C, H, W) or (N, C, H, W), got shape {tuple(x.shape)}")
    if (scale is None) == (size is None):
        raise ValueError("imresize: give exactly one of scale= and size=")
    in_h, in_w = x.shape[-2:]
    if size is not None:
        out_h, out_w = (int(s) for s in size)
        if out_h <= 0 or out_w <= 0:
            raise ValueError(f"imresize: size must be positive, got {tuple(size)}")
        scales = (out_h / in_h, out_w / in_w)
    else:
        scales = _pair(scale, "scale")  # type: ignore[arg-type]
        if min(scales) <= 0:
            raise ValueError(f"imresize: scale must be positive, got {scale!r}")
        out_h, out_w = math.ceil(in_h * scales[0]), math.ceil(in_w * scales[1])
    lead = x.shape[:-2]
    if x.dtype in (torch.float16, torch.bfloat16):  # sparse/gather kernels want fp32 or fp64
        return imresize(x.float(), scale, size=size, antialias=antialias).to(x.dtype)
    y = x.reshape(-1, in_h, in_w)
    # MATLAB resizes the axis with the smaller scale first (rows first on a tie).
    order = sorted([(scales[0], 0), (scales[1], 1)], key=lambda t: t[0])
    for step, (axis_scale, axis) in enumerate(order):
        out_len = out_h if axis == 0 else out_w
        y = _resize_axis(y, axis + 1, out_len, axis_scale, antialias, scratch=step == 0)
    return y.reshape(*lead, out_h, out_w)

"""Seam-free tiled inference in bounded memory.

The image stays on the CPU; patches go to the network one batch at a time. Each tile owns a
*core* (cores partition the image) and its patch extends ``overlap`` input pixels beyond the core on
every side. Neighbouring tiles are blended over a band of half-width ``h = min(overlap, core) / 2``
around each core boundary with a raised-sine ramp; the ramps of the two sides sum to exactly one,
and the 2-D window is the product of the two 1-D ones, so the weights form a partition of unity and
no normalisation pass (no float weight image) is needed.

Overlap margin: a blended pixel lies at least ``overlap - h >= overlap / 2`` input pixels inside
every patch that contributes to it. If that is at least the network's receptive-field radius ``R``
(see :func:`receptive_radius`), each contribution equals untiled inference up to float rounding, so
``overlap >= 2 * R`` makes tiled == untiled. Real networks are smoother than their nominal radius
(the full 23-block RRDBNet nominally sees ~350 px), so the default ``overlap=32`` already hides the
tile borders; the exact bound is what the tests check on small networks.

Sums are held in float32 only where tiles still overlap (one tile's area plus the rows the next
tile row blends into, see :class:`_Blender`); finished pixels are rounded straight into the
caller's uint8/uint16 array, so the full float32 output is never held.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from esrgan_lit.archs.rrdbnet_striped import conv_radius


@dataclass(frozen=True)
class Span:
    """One tile along an axis: core ``[c0, c1)`` and patch ``[p0, p1)`` in input pixels."""

    c0: int
    c1: int
    p0: int
    p1: int


def plan_axis(
    n: int, tile: int, overlap: int, multiple: int = 1, *, uniform: bool = False
) -> list[Span]:
    """Split ``[0, n)`` into near-equal cores of at most ``tile`` pixels (multiples of ``multiple``).

    Every patch covers its core plus at least ``overlap`` pixels each side (clipped to the image).
    ``uniform`` widens the edge patches (more context never hurts) to one common length, so that
    tiles can share a batch.
    """
    if tile <= 0 or tile >= n:
        return [Span(0, n, 0, n)]
    count = math.ceil(n / tile)
    bounds = sorted({min(n, multiple * round(i * n / count / multiple)) for i in range(count + 1)})
    bounds[-1] = n
    length = max(
        min(n, c1 + overlap) - max(0, c0 - overlap) for c0, c1 in itertools.pairwise(bounds)
    )
    spans = []
    for c0, c1 in itertools.pairwise(bounds):
        p0, p1 = max(0, c0 - overlap), min(n, c1 + overlap)
        if uniform:
            p1 = min(n, p0 + length)
            p0 = max(0, p1 - length)
        spans.append(Span(c0, c1, p0, p1))
    return spans


def _ramp(t: np.ndarray) -> np.ndarray:
    """0 for t <= -1, 1 for t >= 1, a smooth sine step between; ramp(t) + ramp(-t) == 1."""
    return 0.5 + 0.5 * np.sin(0.5 * np.pi * np.clip(t, -1.0, 1.0))


def axis_window(span: Span, n: int, scale: int, half: float) -> tuple[np.ndarray, int, int]:
    """Blend weights of one tile along an axis, at output resolution.

    Returns ``(weights, o0, o1)``: the weights for output pixels ``[o0, o1)``, the part of the patch
    where the weight is non-zero.
    """
    lo = span.c0 - half if span.c0 > 0 else span.p0
    hi = span.c1 + half if span.c1 < n else span.p1
    o0, o1 = (
        max(span.p0 * scale, math.floor(lo * scale)),
        min(span.p1 * scale, math.ceil(hi * scale)),
    )
    x = (np.arange(o0, o1, dtype=np.float64) + 0.5) / scale  # pixel centres in input pixels
    w = np.ones_like(x)
    if span.c0 > 0:
        w *= _ramp((x - span.c0) / half) if half > 0 else (x > span.c0)
    if span.c1 < n:
        w *= _ramp((span.c1 - x) / half) if half > 0 else (x < span.c1)
    return w.astype(np.float32), o0, o1


def quantise_into(dst: np.ndarray, src: torch.Tensor, rows: int = 64) -> None:
    """Write float (C, h, w) in [0, 1] into ``dst`` (h, w, C) of dtype uint8, uint16 or float32.

    Works in place on ``src`` (clobbering it) a few rows at a time, so rounding a band needs no
    second float copy of it.
    """
    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(dst.dtype)
    cast = torch.uint8 if dst.dtype == np.uint8 else torch.int32
    for y in range(0, src.shape[1], rows):
        part = src[:, y : y + rows].clamp_(0.0, 1.0)
        if scale is not None:
            part = part.mul_(scale).round_().to(cast)
        dst[y : y + rows] = part.permute(1, 2, 0).numpy()


def upscale_tiled(
    run: Callable[[torch.Tensor], torch.Tensor],
    image: torch.Tensor,
    out: np.ndarray,
    *,
    scale: int,
    tile: int = 0,
    overlap: int = 32,
    tile_batch: int = 1,
    multiple: int = 1,
) -> None:
    """Upscale ``image`` (C, H, W) on the CPU tile by tile into ``out`` (H*s, W*s, C_out).

    ``run`` maps a CPU batch (N, C, h, w), of ``image``'s dtype, to its CPU float32 output in
    [0, 1] (N, C_out, h*s, w*s); it owns normalisation, device transfer and precision. ``H``,
    ``W``, ``tile`` and ``overlap`` must be multiples of ``multiple`` (pixel-unshuffle networks).
    """
    _, height, width = image.shape
    if height % multiple or width % multiple:
        raise ValueError(f"image size {height}x{width} is not a multiple of {multiple}")
    tile = multiple * math.ceil(tile / multiple) if tile > 0 else 0
    overlap = multiple * math.ceil(max(overlap, 0) / multiple)
    rows, cols = (
        plan_axis(height, tile, overlap, multiple),
        plan_axis(width, tile, overlap, multiple, uniform=tile_batch > 1),
    )
    min_core = min(s.c1 - s.c0 for s in rows + cols)
    half = min(overlap, min_core) / 2
    xwin = [axis_window(c, width, scale, half) for c in cols]
    ywin = [axis_window(r, height, scale, half) for r in rows]
    blend = _Blender(out, ywin, xwin)
    for i, r in enumerate(rows):
        blend.start_row(i)
        # Batch only patches of the same shape (interior tiles), in row order.
        j = 0
        while j < len(cols):
            k = j + 1
            shape = cols[j].p1 - cols[j].p0
            while k < len(cols) and k - j < tile_batch and cols[k].p1 - cols[k].p0 == shape:
                k += 1
            batch = torch.stack([image[:, r.p0 : r.p1, c.p0 : c.p1] for c in cols[j:k]])
            result = run(batch)
            del batch
            for b, c in enumerate(cols[j:k]):
                blend.add(j + b, result[b], r.p0 * scale, c.p0 * scale)
            del result
            j = k
        blend.finish_row()


class _Blender:
    """Weighted sum of the tiles, rounded into ``out`` as soon as each pixel is final.

    Tiles arrive row by row, left to right. Floats are held only for a *window* as large as one
    tile's weighted area, sliding right along the tile row, and a *carry* of the rows that the next
    tile row blends into, across the width: a few tens of MB at 8000 px wide where a whole band of
    tile rows would be ~100 MB.
    """

    def __init__(self, out: np.ndarray, ywin: list, xwin: list) -> None:
        self.out, self.ywin, self.xwin = out, ywin, xwin
        chans, width = out.shape[2], out.shape[1]
        carry = max((ywin[i][2] - ywin[i + 1][1] for i in range(len(ywin) - 1)), default=0)
        self.carry = torch.zeros(chans, max(carry, 0), width)
        self.carried = 0  # rows of ``carry`` holding sums from the previous tile row
        self.win = torch.zeros(
            chans, max(r1 - r0 for _, r0, r1 in ywin), max(x1 - x0 for _, x0, x1 in xwin)
        )
        self.row = self.done = 0  # current tile row; its output rows < done are final
        self.wx0 = self.wx1 = 0  # output columns [wx0, wx1) have sums in ``win``
        self.wy = torch.ones(0, 1)

    def start_row(self, i: int) -> None:
        self.row, self.wx0, self.wx1 = i, 0, 0
        wy, _, r1 = self.ywin[i]
        self.done = self.ywin[i + 1][1] if i + 1 < len(self.ywin) else r1
        self.wy = torch.from_numpy(wy)[:, None]

    def add(self, j: int, tile: torch.Tensor, oy: int, ox: int) -> None:
        """Blend ``tile`` (C, h, w), whose top-left output pixel is (``oy``, ``ox``)."""
        wx, x0, x1 = self.xwin[j]
        _, r0, r1 = self.ywin[self.row]
        if x0 > self.wx0:  # columns left of this tile get nothing more in this tile row
            self._flush(self.wx0, x0)
            keep = max(0, self.wx1 - x0)
            shift = x0 - self.wx0
            self.win[:, :, :keep] = self.win[:, :, shift : shift + keep].clone()
            self.win[:, :, keep : self.wx1 - self.wx0] = 0
            self.wx0 = x0
        if x1 > self.wx1:  # new columns start from the previous tile row's sums, as a band did
            c0 = max(self.wx1, x0)
            n = self.carried
            self.win[:, :n, c0 - self.wx0 : x1 - self.wx0] = self.carry[:, :n, c0:x1]
        piece = tile[:, r0 - oy : r1 - oy, x0 - ox : x1 - ox]
        self.win[:, : r1 - r0, x0 - self.wx0 : x1 - self.wx0] += piece * (
            self.wy * torch.from_numpy(wx)[None]
        )
        self.wx1 = max(self.wx1, x1)

    def finish_row(self) -> None:
        self._flush(self.wx0, self.wx1)
        self.win.zero_()
        _, _, r1 = self.ywin[self.row]
        self.carried = r1 - self.done

    def _flush(self, c0: int, c1: int) -> None:
        """Columns [c0, c1) of this tile row are complete: round the final rows, carry the rest."""
        _, r0, r1 = self.ywin[self.row]
        block = self.win[:, : r1 - r0, c0 - self.wx0 : c1 - self.wx0]
        final = self.done - r0
        self.carry[:, : r1 - self.done, c0:c1] = block[:, final:]
        quantise_into(self.out[r0 : self.done, c0:c1], block[:, :final])


def receptive_radius(model: nn.Module) -> int:
    """Receptive-field radius in input pixels: an upper bound from the model's convolutions.

    A model that knows its own (``RRDBNet.receptive_radius``: exact) is asked; for other models
    every conv is counted at input resolution, which over-estimates for upsampling tails and is
    exact otherwise.
    """
    own = getattr(model, "receptive_radius", None)
    if callable(own):
        return int(own())
    return sum(conv_radius(m) for m in model.modules())

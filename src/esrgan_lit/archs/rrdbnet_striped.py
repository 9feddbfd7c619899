"""RRDBNet's locality: its receptive radius and a low-memory (striped) forward for CPU inference.

The striped forward computes the x4 tail in stripes, optionally the trunk's dense blocks too.

At x4 the last three convs of RRDBNet work on 64-channel maps at output resolution, which for a
320-pixel patch is ~420 MB per tensor: more than everything else in a tiled run together. The tail
is local (its receptive field is under two trunk pixels), so computing it stripe by stripe, each
step on just the rows its output needs, gives the same numbers while holding only a stripe of
those maps at a time.

The trunk as a whole is not local, but each dense block is (five 3x3 convs: radius 5). Plain
``model.body`` concatenates ever wider tensors (up to ``nf + 4 gc`` channels, 78 MB at 320x320)
and leaves all of them for the allocator: on CPU that costs page faults (~15 % of the time) and
a heap that fragments to several hundred MB. :func:`striped_forward` with ``trunk_stripe_pixels``
instead runs each dense block in horizontal stripes, concatenating into one reused workspace and
writing into one of three rotating full-size buffers. Results are those of ``model(x)``.

Nothing here imports :class:`~esrgan_lit.archs.rrdbnet.RRDBNet` (it calls these as methods); the
functions read its attributes (``conv_first``, ``body``, ``conv_up{n}``, ``unshuffle``, ...).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

_RDB_CONVS = ("conv1", "conv2", "conv3", "conv4", "conv5")


def receptive_radius(model: nn.Module) -> int:
    """Receptive-field radius in input pixels, exact for RRDBNet's layout.

    Convs after each x2 upsampling count half as much, and a pixel-unshuffle factor ``r``
    multiplies the trunk's radius by ``r`` (the trunk runs at 1/r of the input resolution).
    """
    r = getattr(model, "unshuffle", 1)
    head = (model.conv_first, model.body, model.conv_body)
    trunk = sum(conv_radius(m) for part in head for m in part.modules())
    radius, res = float(trunk * r), 1.0
    for i in range(1, model.num_up + 1):
        res *= 2
        radius += conv_radius(getattr(model, f"conv_up{i}")) * r / res
    radius += (conv_radius(model.conv_hr) + conv_radius(model.conv_last)) * r / res
    return math.ceil(radius)


def conv_radius(m: nn.Module) -> int:
    """How many pixels to each side a 2-D conv looks (0 for anything else)."""
    if isinstance(m, nn.Conv2d):
        k, d = m.kernel_size, m.dilation
        return max((k[0] - 1) // 2 * d[0], (k[1] - 1) // 2 * d[1])
    return 0


def striped_forward(
    model: nn.Module,
    x: torch.Tensor,
    stripe_pixels: int = 1 << 17,
    trunk_stripe_pixels: int | None = None,
) -> torch.Tensor:
    """Same result as ``model(x)``; the tail's peak memory scales with ``stripe_pixels`` (output px).

    ``trunk_stripe_pixels`` (trunk px per dense-block stripe; 0 = whole blocks) switches to the
    workspace trunk of :func:`_trunk`, whose peak memory then scales with it; ``None`` runs
    ``model.body`` as it is (its allocation pattern is harmless under a caching GPU allocator).
    The workspace trunk writes with ``out=``, so it is for inference only (no autograd).
    """
    r = getattr(model, "unshuffle", 1)
    if r > 1:
        if x.shape[-2] % r or x.shape[-1] % r:
            raise ValueError(f"input {tuple(x.shape[-2:])} must be a multiple of {r}")
        x = F.pixel_unshuffle(x, r)
    if trunk_stripe_pixels is not None and _has_dense_blocks(model):
        # ``feat`` is not kept through the trunk: conv_first is cheap to run again for the skip.
        body = model.conv_body(_trunk(model.body, model.conv_first(x), trunk_stripe_pixels))
        feat = body.add_(model.conv_first(x))  # == feat + body: float addition commutes
    else:
        feat = model.conv_first(x)
        feat = feat + model.conv_body(model.body(feat))
    up = 2**model.num_up
    height, width = feat.shape[-2:]
    rows = max(1, stripe_pixels // max(1, width * up * up))
    if rows >= height:
        return _tail(model, feat, 0, height)
    out = None
    for y0 in range(0, height, rows):
        part = _tail(model, feat, y0, min(height, y0 + rows))
        if out is None:
            shape = (part.shape[0], part.shape[1], height * up, width * up)
            out = torch.empty(
                shape, dtype=part.dtype, device=part.device, memory_format=_format_of(part)
            )
        out[:, :, y0 * up : y0 * up + part.shape[2]] = part
    return out


def _tail(model: nn.Module, feat: torch.Tensor, y0: int, y1: int) -> torch.Tensor:
    """Output rows of trunk rows ``[y0, y1)``; each step gets only the rows its output needs."""
    steps: list[nn.Module | None] = []  # None: nearest x2
    for i in range(1, model.num_up + 1):
        steps += [None, getattr(model, f"conv_up{i}")]
    steps += [model.conv_hr, model.conv_last]
    # Input rows each step needs, from the output rows backwards (a conv's halo is its padding).
    up = 2**model.num_up
    a, b, size = y0 * up, y1 * up, feat.shape[2] * up
    need = []
    for step in reversed(steps):
        if step is None:
            a, b, size = a // 2, -(-b // 2), size // 2
        else:
            pad = step.padding[0]
            a, b = max(0, a - pad), min(size, b + pad)
        need.append((a, b))
    need.reverse()
    t, t0 = feat, 0  # t holds rows [t0, ...) of the current resolution
    for step, (a, b) in zip(steps, need, strict=True):
        t, t0 = t[:, :, a - t0 : b - t0], a
        if step is None:
            t, t0 = F.interpolate(t, scale_factor=2, mode="nearest"), 2 * t0
        else:
            t = step(t)
            if step is not model.conv_last:
                t = model.lrelu(t)
    return t[:, :, y0 * up - t0 : y1 * up - t0]


def _has_dense_blocks(model: nn.Module) -> bool:
    """True when ``model.body`` is RRDBs of three five-conv dense blocks (the layout we re-run)."""
    for block in model.body:
        for name in ("rdb1", "rdb2", "rdb3"):
            rdb = getattr(block, name, None)
            if rdb is None or not all(hasattr(rdb, c) for c in (*_RDB_CONVS, "lrelu")):
                return False
    return True


def _trunk(body: nn.Module, h: torch.Tensor, stripe_pixels: int) -> torch.Tensor:
    """``body(h)`` in three full-size buffers plus one stripe workspace; ``h`` is overwritten."""
    n, _, height, width = h.shape
    count = math.ceil(height * width / stripe_pixels) if stripe_pixels > 0 else 1
    rows = math.ceil(height / max(1, min(count, height)))
    halo = max((sum(getattr(b.rdb1, c).padding[0] for c in _RDB_CONVS) for b in body), default=0)
    channels = max((b.rdb1.conv5.in_channels for b in body), default=0)
    slab = min(height, rows + 2 * halo)
    work = torch.empty(n * channels * slab * width, dtype=h.dtype, device=h.device)
    a, b = torch.empty_like(h), torch.empty_like(h)
    for block in body:
        _dense_block(block.rdb1, h, a, work, rows)
        _dense_block(block.rdb2, a, b, work, rows)
        _dense_block(block.rdb3, b, a, work, rows)
        a.mul_(0.2).add_(h)  # RRDB: h + 0.2 * rdb3(...); h's buffer is free from here on
        h, a, b = a, h, b
    return h


def _dense_block(
    rdb: nn.Module, x: torch.Tensor, out: torch.Tensor, work: torch.Tensor, rows: int
) -> None:
    """``out = rdb(x)``, ``rows`` output rows at a time, each stripe from a halo slab of ``x``.

    After each conv the slab loses its padding's worth of rows at every side that is not the image
    edge (those rows saw zeros instead of their neighbours), so a stripe costs only the rows it
    needs: ~2 extra rows' worth of work per stripe boundary and side.
    """
    height = x.shape[2]
    fmt = _format_of(x)
    convs = [getattr(rdb, name) for name in _RDB_CONVS]
    halo = sum(conv.padding[0] for conv in convs)
    last = len(convs) - 1
    for y0 in range(0, height, rows):
        y1 = min(height, y0 + rows)
        lo, hi = max(0, y0 - halo), min(height, y1 + halo)
        pieces = [(x[:, :, lo:hi], lo)]  # (tensor, its first row)
        for k, conv in enumerate(convs):
            if k == 0:
                inp = pieces[0][0]
            else:
                inp = _concat([p[:, :, lo - p0 : hi - p0] for p, p0 in pieces], work, fmt)
            if k == last:
                pieces.clear()  # copied into the workspace: free x1..x4 before x5 is allocated
            y = conv(inp)
            del inp
            pad = conv.padding[0]
            top, bottom = pad * (lo > 0), pad * (hi < height)
            y = y[:, :, top : y.shape[2] - bottom]
            lo, hi = lo + top, hi - bottom
            if k < last:
                pieces.append((rdb.lrelu(y), lo))
                del y
        y = y[:, :, y0 - lo : y1 - lo].mul_(0.2)
        torch.add(y, x[:, :, y0:y1], out=out[:, :, y0:y1])  # x + 0.2 * x5 (addition commutes)


def _concat(
    parts: list[torch.Tensor], work: torch.Tensor, fmt: torch.memory_format
) -> torch.Tensor:
    """``torch.cat(parts, 1)`` written into the front of the flat ``work`` buffer."""
    n, _, h, w = parts[0].shape
    c = sum(p.shape[1] for p in parts)
    flat = work[: n * c * h * w]
    if fmt == torch.channels_last:
        dst = flat.view(n, h, w, c).permute(0, 3, 1, 2)
    else:
        dst = flat.view(n, c, h, w)
    return torch.cat(parts, 1, out=dst)


def _format_of(t: torch.Tensor) -> torch.memory_format:
    if (
        t.dim() == 4
        and t.is_contiguous(memory_format=torch.channels_last)
        and not t.is_contiguous()
    ):
        return torch.channels_last
    return torch.contiguous_format


rrdbnet_forward = striped_forward  # the name it had in esrgan_lit.inference.lean

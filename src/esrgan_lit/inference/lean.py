"""Memory-lean RRDBNet forward: the x4 tail runs in horizontal stripes.

At x4 the last three convs of RRDBNet work on 64-channel maps at output resolution, which for a
320-pixel patch is ~420 MB per tensor: more than everything else in a tiled run together. The tail
is local (its receptive field is under two trunk pixels), so computing it stripe by stripe with a
two-pixel halo gives the same numbers while holding only a stripe of those maps at a time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_HALO = 2  # trunk pixels; the tail's radius is 1 + 1/2 + ... < 2 trunk pixels at any scale


def is_rrdbnet(model: nn.Module) -> bool:
    """Duck-typed: anything with RRDBNet's attribute layout (ours or a subclass)."""
    names = ("conv_first", "body", "conv_body", "conv_hr", "conv_last", "num_up", "lrelu")
    return all(hasattr(model, n) for n in names)


def rrdbnet_forward(
    model: nn.Module, x: torch.Tensor, stripe_pixels: int = 1 << 17
) -> torch.Tensor:
    """Same result as ``model(x)``; the tail's peak memory scales with ``stripe_pixels`` (output px)."""
    r = getattr(model, "unshuffle", 1)
    if r > 1:
        if x.shape[-2] % r or x.shape[-1] % r:
            raise ValueError(f"input {tuple(x.shape[-2:])} must be a multiple of {r}")
        x = F.pixel_unshuffle(x, r)
    feat = model.conv_first(x)
    feat = feat + model.conv_body(model.body(feat))
    up = 2**model.num_up
    height, width = feat.shape[-2:]
    rows = max(1, stripe_pixels // max(1, width * up * up))
    if rows >= height:
        return _tail(model, feat)
    out = None
    for y0 in range(0, height, rows):
        y1 = min(height, y0 + rows)
        a0, a1 = max(0, y0 - _HALO), min(height, y1 + _HALO)
        part = _tail(model, feat[:, :, a0:a1])
        part = part[:, :, (y0 - a0) * up : (y1 - a0) * up]
        if out is None:
            shape = (part.shape[0], part.shape[1], height * up, width * up)
            out = torch.empty(
                shape, dtype=part.dtype, device=part.device, memory_format=_format_of(part)
            )
        out[:, :, y0 * up : y1 * up] = part
    return out


def _tail(model: nn.Module, feat: torch.Tensor) -> torch.Tensor:
    for i in range(1, model.num_up + 1):
        conv = getattr(model, f"conv_up{i}")
        feat = model.lrelu(conv(F.interpolate(feat, scale_factor=2, mode="nearest")))
    return model.conv_last(model.lrelu(model.conv_hr(feat)))


def _format_of(t: torch.Tensor) -> torch.memory_format:
    if (
        t.dim() == 4
        and t.is_contiguous(memory_format=torch.channels_last)
        and not t.is_contiguous()
    ):
        return torch.channels_last
    return torch.contiguous_format

"""Random draws from an optional ``torch.Generator`` on whatever device it lives on.

All randomness of the degradations goes through these helpers, so one generator state fixes
the whole output. Draws are made on the generator's device (a CUDA generator for CUDA batches
keeps the noise images on the GPU) and moved to the data's device.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def _dev(g: torch.Generator | None, device: torch.device | str) -> torch.device:
    return g.device if g is not None else torch.device(device)


def rand(shape: Sequence[int], g: torch.Generator | None, device: torch.device | str) -> Tensor:
    return torch.rand(tuple(shape), generator=g, device=_dev(g, device)).to(device)


def randn(shape: Sequence[int], g: torch.Generator | None, device: torch.device | str) -> Tensor:
    return torch.randn(tuple(shape), generator=g, device=_dev(g, device)).to(device)


def uniform(
    n: int, lo: float, hi: float, g: torch.Generator | None, device: torch.device | str
) -> Tensor:
    """(n,) floats uniform in [lo, hi)."""
    return lo + (hi - lo) * rand((n,), g, device)


def scalar(g: torch.Generator | None) -> float:
    """One uniform float in [0, 1) (a per-batch decision)."""
    return float(torch.rand((), generator=g, device=_dev(g, "cpu")).item())


def pick(options: Sequence[str], probs: Sequence[float] | None, g: torch.Generator | None) -> str:
    """One of ``options`` (uniform, or with ``probs``), drawn from ``g``."""
    weights = [1.0] * len(options) if probs is None else [float(p) for p in probs]
    if len(weights) != len(options) or min(weights) < 0 or sum(weights) <= 0:
        raise ValueError(f"probabilities {list(weights)} do not fit options {list(options)}")
    u, acc = scalar(g) * sum(weights), 0.0
    for option, w in zip(options, weights):
        acc += w
        if u < acc:
            return option
    return options[-1]


def poisson(rate: Tensor, g: torch.Generator | None) -> Tensor:
    """Poisson samples with the given rates, drawn from ``g``."""
    dev = _dev(g, rate.device)
    return torch.poisson(rate.to(dev), generator=g).to(rate.device)


def randperm(n: int, g: torch.Generator | None, device: torch.device | str) -> Tensor:
    return torch.randperm(n, generator=g, device=_dev(g, device)).to(device)

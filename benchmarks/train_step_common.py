"""Timing helpers shared by the training-step benchmarks (bench_train_step*.py).

Two clocks per measurement (wall, and process CPU time: on a loaded shared CPU the work done),
per-phase timers that double as per-phase FLOP counters, and a dense matmul peak.
"""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager, nullcontext
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

PHASES = ("data", "G fwd", "G bwd", "D fwd", "D bwd", "VGG fwd", "VGG bwd", "losses")
PHASES += ("grad norm", "optimiser", "EMA", "logging")

Pair = tuple[float, float]  # (wall-clock, process CPU time), seconds or rates


def _now() -> Pair:
    return time.perf_counter(), time.process_time()


def _diff(t0: Pair, t1: Pair) -> Pair:
    return t1[0] - t0[0], t1[1] - t0[1]


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


class _Phases:
    """Per-phase wall clock (synchronised), or per-phase FLOPs while ``counting``."""

    def __init__(self, device: str, flops: dict[str, int]) -> None:
        self.device, self.flops, self.counting = device, flops, False
        self.times: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])

    @contextmanager
    def __call__(self, name: str) -> Any:
        if self.counting:
            with FlopCounterMode(display=False) as fc:
                yield
            self.flops[name] += int(fc.get_total_flops())
            return
        _sync(self.device)
        t0 = _now()
        yield
        _sync(self.device)
        for i, dt_ in enumerate(_diff(t0, _now())):
            self.times[name][i] += dt_


def _no_phase(name: str) -> Any:
    return nullcontext()


def matmul_peak(cfg: Any, dtype: torch.dtype = torch.float32) -> list[Pair]:
    """GFLOP/s (wall, CPU time) of a large square ``torch.mm``, one sample per repetition."""
    a, b = (torch.randn(cfg.peak_n, cfg.peak_n, device=cfg.device, dtype=dtype) for _ in "ab")
    c, out = torch.mm(a, b), []
    for _ in range(cfg.peak_reps):
        _sync(cfg.device)
        t0 = _now()
        torch.mm(a, b, out=c)
        _sync(cfg.device)
        out.append(tuple(2 * cfg.peak_n**3 / max(t, 1e-9) / 1e9 for t in _diff(t0, _now())))
    return out

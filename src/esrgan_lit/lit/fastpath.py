"""Training fast path helpers: switches that keep the math but cut launches and host syncs.

Each switch is a ``model.*`` override (``null`` = automatic: on for a CUDA device, off on CPU,
so CPU runs stay exactly as before). See docs/training.md, "Fast path".

* ``channels_last``: G, D and VGG weights and the training batches in NHWC (cuDNN's native
  layout for convolutions, most of all in bf16).
* fused Adam: an optimiser factory with ``fused: null`` gets ``fused=True`` on CUDA (one kernel
  for all parameters instead of a loop over them).
* ``sync_free``: no host-device synchronisation inside the step. The per-step scalars that are
  logged (losses, grad norms, learning rates) are copied to pinned host memory without waiting and
  logged when the copy has landed (a step or two later); the non-finite guard runs on the
  device (a fused optimiser skips the update itself through its ``found_inf`` input, as it does
  for ``GradScaler``) and its counters are read back the same asynchronous way.
* ``compile``: ``torch.compile`` of G, D and the perceptual loss (opt-in; see the docs for
  what works with manual optimisation).
"""

from __future__ import annotations

import collections
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class FastPath:
    """The resolved switches for one run (``None`` in the config = automatic)."""

    channels_last: bool = False
    sync_free: bool = False
    compile: bool = False
    compile_mode: str | None = None
    compile_backend: str = "inductor"

    @classmethod
    def resolve(
        cls,
        device: torch.device,
        *,
        channels_last: bool | None,
        sync_free: bool | None,
        compile: bool,
        compile_mode: str | None,
        compile_backend: str = "inductor",
    ) -> FastPath:
        cuda = device.type == "cuda"
        return cls(
            channels_last=cuda if channels_last is None else bool(channels_last),
            sync_free=cuda if sync_free is None else bool(sync_free),
            compile=bool(compile),
            compile_mode=compile_mode,
            compile_backend=compile_backend,
        )


def build_optimizer(
    factory: Callable[..., torch.optim.Optimizer], params: Any, device: torch.device
) -> torch.optim.Optimizer:
    """Call an optimiser factory; ``fused=None`` in a ``functools.partial`` means: fused on CUDA.

    ``fused: null`` is dropped where it cannot apply (not CUDA, or an optimiser swapped in by
    ``_target_`` that takes no ``fused`` argument); ``fused: false`` / ``true`` pass through.
    """
    if not (isinstance(factory, functools.partial) and factory.keywords.get("fused", 0) is None):
        return factory(params=params)
    kw = {k: v for k, v in factory.keywords.items() if k != "fused"}
    try:
        accepts = "fused" in inspect.signature(factory.func).parameters
    except (TypeError, ValueError):
        accepts = False
    if device.type == "cuda" and accepts:
        kw["fused"] = True
    return factory.func(*factory.args, params=params, **kw)


def is_fused(optimizer: torch.optim.Optimizer) -> bool:
    """True when ``optimizer`` applies ``found_inf`` itself (skips the update on the device)."""
    return bool(getattr(optimizer, "_step_supports_amp_scaling", False)) and bool(
        optimizer.defaults.get("fused")
    )


def to_channels_last(batch: Any) -> Any:
    """4-D tensors of a batch dict in channels_last; everything else unchanged."""
    if not isinstance(batch, dict):
        return batch
    return {
        k: v.contiguous(memory_format=torch.channels_last)
        if isinstance(v, Tensor) and v.dim() == 4
        else v
        for k, v in batch.items()
    }


def compile_modules(
    modules: list[nn.Module | None], mode: str | None, backend: str = "inductor"
) -> None:
    """``nn.Module.compile`` in place: parameter names, state dicts and EMA keys stay the same."""
    for m in modules:
        if m is not None:
            m.compile(mode=mode, backend=backend)


class ScalarReadback:
    """Device scalars to the host without waiting: non-blocking copy into pinned memory + event.

    ``push`` queues one step's scalars; ``ready`` returns the steps whose copy has landed, in
    order. At most ``max_lag`` steps stay in flight: beyond that the oldest is waited for, which
    bounds how late a non-finite run is noticed. On CPU the values are ready at once.
    """

    def __init__(self, max_lag: int = 4) -> None:
        self.max_lag = max_lag
        self._queue: collections.deque[tuple[Any, dict, list[str], Tensor | None, Any]] = (
            collections.deque()
        )

    def __len__(self) -> int:
        return len(self._queue)

    def push(self, tag: Any, values: dict[str, Tensor | float]) -> None:
        """Queue one step's values; Python numbers stay on the host (no host-to-device copy)."""
        names = [k for k, v in values.items() if isinstance(v, Tensor)]
        host_vals = {k: float(v) for k, v in values.items() if not isinstance(v, Tensor)}
        if not names:
            self._queue.append((tag, host_vals, [], None, None))
            return
        flat = torch.stack([values[k].detach().reshape(()).float() for k in names])
        if flat.device.type == "cuda":
            host = torch.empty(flat.shape, dtype=flat.dtype, pin_memory=True)
            host.copy_(flat, non_blocking=True)
            event = torch.cuda.Event()
            event.record()
        else:
            host, event = flat, None
        self._queue.append((tag, host_vals, names, host, event))

    def ready(self, wait: bool = False) -> list[tuple[Any, dict[str, float]]]:
        """The queued steps whose values are on the host, oldest first (``wait``: all of them)."""
        out: list[tuple[Any, dict[str, float]]] = []
        while self._queue:
            tag, host_vals, names, host, event = self._queue[0]
            if event is not None and not event.query():
                if not (wait or len(self._queue) > self.max_lag):
                    break
                event.synchronize()
            self._queue.popleft()
            vals = dict(zip(names, host.tolist())) if host is not None else {}
            out.append((tag, {**host_vals, **vals}))
        return out

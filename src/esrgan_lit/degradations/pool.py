"""Real-ESRGAN's training-pair pool: mixes degraded pairs across batches.

Several degradation draws are made once per batch (resize factor and mode, noise type), so a
batch is less diverse than the data. The pool (Real-ESRGAN ``_dequeue_and_enqueue``, default
``queue_size`` 180) keeps ``size`` pairs: while it fills, batches pass through unchanged and are
copied in; once full, it is shuffled, the first ``batch`` pairs go out and the new batch takes
their place. Its contents are part of ``state_dict`` (stored as 8-bit, exact for 8-bit data since
LR is rounded to 8-bit levels and GT comes from 8-bit images), so a resumed run continues exactly.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .random import randperm


class PairPool:
    """``__call__(lq, gt, generator)`` -> the (lq, gt) batch to train on."""

    def __init__(self, size: int = 180) -> None:
        if int(size) < 1:
            raise ValueError(f"pool size must be >= 1, got {size}")
        self.size = int(size)
        self.lq: Tensor | None = None
        self.gt: Tensor | None = None
        self.ptr = 0

    def __call__(
        self, lq: Tensor, gt: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        b = lq.shape[0]
        if self.size % b:
            raise ValueError(
                f"degradation pool_size {self.size} must be a multiple of the batch size {b} "
                "(Real-ESRGAN: queue_size 180 with batch 12 per GPU)"
            )
        if (
            self.lq is None
            or self.gt is None
            or self.lq.shape[1:] != lq.shape[1:]
            or (self.gt.shape[1:] != gt.shape[1:] or self.lq.device != lq.device)
        ):
            self.lq = lq.new_zeros((self.size, *lq.shape[1:]))
            self.gt = gt.new_zeros((self.size, *gt.shape[1:]))
            self.ptr = 0
        if self.ptr < self.size:  # filling: pass the batch through
            self.lq[self.ptr : self.ptr + b] = lq
            self.gt[self.ptr : self.ptr + b] = gt
            self.ptr += b
            return lq, gt
        idx = randperm(self.size, generator, lq.device)
        self.lq, self.gt = self.lq[idx], self.gt[idx]
        out_lq, out_gt = self.lq[:b].clone(), self.gt[:b].clone()
        self.lq[:b], self.gt[:b] = lq, gt
        return out_lq, out_gt

    def state_dict(self) -> dict[str, Any]:
        if self.lq is None or self.gt is None or self.ptr == 0:
            return {"size": self.size, "ptr": 0}
        to8 = lambda t: (t[: self.ptr] * 255).round().clamp(0, 255).to(torch.uint8).cpu()  # noqa: E731
        return {"size": self.size, "ptr": self.ptr, "lq": to8(self.lq), "gt": to8(self.gt)}

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str = "cpu") -> None:
        """Restore the pool (starts empty if the checkpoint's pool had another size)."""
        self.lq = self.gt = None
        self.ptr = 0
        if int(state.get("size", -1)) != self.size or not int(state.get("ptr", 0)):
            return
        ptr = int(state["ptr"])
        lq8, gt8 = state["lq"], state["gt"]
        self.lq = torch.zeros((self.size, *lq8.shape[1:]), device=device)
        self.gt = torch.zeros((self.size, *gt8.shape[1:]), device=device)
        self.lq[:ptr] = lq8.to(device).float() / 255
        self.gt[:ptr] = gt8.to(device).float() / 255
        self.ptr = ptr

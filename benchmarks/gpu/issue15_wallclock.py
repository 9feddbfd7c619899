"""A callback for the issue-15 GPU run: log training wall time at each validation.

``time/elapsed_s`` counts seconds of ``fit`` (validation included) across resumes: the elapsed
time is kept in the checkpoint. Loaded by Hydra from ``+callbacks.wallclock._target_=...`` with
benchmarks/gpu on PYTHONPATH (benchmarks/gpu/run_issue15.sh does this).
"""

from __future__ import annotations

import time
from typing import Any

import lightning as L


class WallClock(L.Callback):
    """Seconds of training so far, logged with every validation (for PSNR-Y vs wall time)."""

    def __init__(self) -> None:
        self.offset, self.t0 = 0.0, time.perf_counter()

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.t0 = time.perf_counter()

    def elapsed(self) -> float:
        return self.offset + time.perf_counter() - self.t0

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            pl_module.log("time/elapsed_s", self.elapsed(), on_step=False, on_epoch=True)

    def state_dict(self) -> dict[str, Any]:
        return {"elapsed": self.elapsed()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.offset = float(state_dict.get("elapsed", 0.0))

"""Exponential moving average of the generator only (not D, not the VGG).

The shadow weights are validated and exported in place of the raw ones, and they travel in
checkpoints twice: in this callback's own ``state_dict`` (what resume restores) and as
``generator_ema.*`` keys in the model state dict (what ``esrgan_lit.weights.load_generator``
prefers when it reads a Lightning checkpoint).
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor


class GeneratorEMA(Callback):
    """``ema = decay * ema + (1 - decay) * w`` after every training iteration."""

    def __init__(self, decay: float = 0.999, update_every: int = 1) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.update_every = update_every
        self.num_updates = 0
        self.shadow: dict[str, Tensor] | None = None
        self._pending: dict[str, Any] | None = None
        self._backup: dict[str, Tensor] | None = None

    @staticmethod
    def _params(pl_module: L.LightningModule) -> dict[str, Tensor]:
        return dict(pl_module.generator.state_dict())

    def _ensure_shadow(self, pl_module: L.LightningModule) -> dict[str, Tensor]:
        if self.shadow is None:
            self.shadow = {k: v.detach().clone() for k, v in self._params(pl_module).items()}
            if self._pending is not None:
                self._load(self._pending)
                self._pending = None
        return self.shadow

    def _load(self, state: dict[str, Any]) -> None:
        assert self.shadow is not None
        missing = set(self.shadow) ^ set(state["shadow"])
        if missing:
            raise KeyError(f"EMA state does not match the generator: keys {sorted(missing)[:5]}")
        for k, v in state["shadow"].items():
            self.shadow[k].copy_(v)
        self.num_updates = int(state["num_updates"])

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._ensure_shadow(pl_module)

    @torch.no_grad()
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step % self.update_every:
            return
        shadow = self._ensure_shadow(pl_module)
        for k, w in self._params(pl_module).items():
            s = shadow[k]
            if s.dtype.is_floating_point:
                s.lerp_(w.detach().to(s.dtype), 1.0 - self.decay)
            else:
                s.copy_(w)
        self.num_updates += 1

    # -- validation / test use the averaged weights ------------------------------------------
    def swap_in(self, pl_module: L.LightningModule) -> None:
        if self._backup is not None:
            return
        shadow = self._ensure_shadow(pl_module)
        params = self._params(pl_module)
        self._backup = {k: v.detach().clone() for k, v in params.items()}
        with torch.no_grad():
            for k, v in params.items():
                v.copy_(shadow[k])

    def swap_out(self, pl_module: L.LightningModule) -> None:
        if self._backup is None:
            return
        with torch.no_grad():
            for k, v in self._params(pl_module).items():
                v.copy_(self._backup[k])
        self._backup = None

    def on_validation_start(self, trainer, pl_module) -> None:
        self.swap_in(pl_module)

    def on_validation_end(self, trainer, pl_module) -> None:
        self.swap_out(pl_module)

    def on_test_start(self, trainer, pl_module) -> None:
        self.swap_in(pl_module)

    def on_test_end(self, trainer, pl_module) -> None:
        self.swap_out(pl_module)

    def ema_state_dict(self, pl_module: L.LightningModule) -> dict[str, Tensor]:
        """The averaged generator weights (a copy, on CPU)."""
        return {k: v.detach().cpu().clone() for k, v in self._ensure_shadow(pl_module).items()}

    # -- checkpointing -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        if self.shadow is None:
            return {"decay": self.decay, "num_updates": self.num_updates}
        return {"decay": self.decay, "num_updates": self.num_updates, "shadow": self.shadow}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if "shadow" not in state_dict:
            return
        if self.shadow is None:
            self._pending = state_dict
        else:
            self._load(state_dict)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        if self.shadow is not None:
            for k, v in self.shadow.items():
                checkpoint["state_dict"][f"generator_ema.{k}"] = v

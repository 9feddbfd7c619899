"""Exponential moving average of the generator only (not D, not the VGG).

The shadow weights are validated and exported in place of the raw ones, and they travel in
checkpoints twice: in this callback's own ``state_dict`` (what resume restores) and as
``generator_ema.*`` keys in the model state dict (what ``esrgan_lit.weights.load_generator``
prefers when it reads a Lightning checkpoint).

The shadow is created from the generator as it is at ``on_fit_start``, i.e. after the
LightningModule's ``__init__`` has loaded ``model.pretrained_generator``: a fine-tuning run's
shadow starts from the pretrained weights, not from a random initialisation.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor


class GeneratorEMA(Callback):
    """``ema = d * ema + (1 - d) * w`` after every ``update_every`` training iterations.

    With ``warmup`` (the default) the decay after ``n`` updates is
    ``d = min(decay, (1 + n) / (10 + n))``, the ``num_updates`` form of TensorFlow's
    ``tf.train.ExponentialMovingAverage``. Why: with a fixed 0.999 the shadow keeps
    ``0.999**n`` of the random initialisation (74 % after 300 updates), so short runs export and
    validate a blend dominated by noise; the warm-up ramps the memory up with the run (0.1 at the
    first update, 0.5 after 8, 0.9 after 80, 0.99 after 890) and reaches ``decay`` = 0.999 after
    ~8990 updates, leaving long runs unchanged. ``warmup=False`` gives the plain fixed decay,
    and so does a fit whose generator was loaded from ``model.pretrained_generator`` (there is
    no random initialisation to forget).
    """

    def __init__(self, decay: float = 0.999, update_every: int = 1, warmup: bool = True) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        if int(update_every) < 1:
            raise ValueError(f"EMA update_every must be >= 1, got {update_every}")
        self.decay = decay
        self.update_every = int(update_every)
        self.warmup = bool(warmup)
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

    def current_decay(self) -> float:
        """The decay the next update uses (``num_updates`` updates done so far)."""
        if not self.warmup:
            return self.decay
        n = self.num_updates
        return min(self.decay, (1.0 + n) / (10.0 + n))

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        fresh = self.shadow is None and self._pending is None and self.num_updates == 0
        self._ensure_shadow(pl_module)
        if fresh and self.warmup and getattr(pl_module, "generator_pretrained", False):
            # The warm-up only forgets a random initialisation. A shadow that starts from
            # model.pretrained_generator has none: it averages with the fixed decay from the
            # first update (as BasicSR's GAN stage), so a short fine-tune stays near the
            # pretrained weights instead of following the first noisy GAN steps.
            self.warmup = False

    @torch.no_grad()
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step % self.update_every:
            return
        shadow = self._ensure_shadow(pl_module)
        weight = 1.0 - self.current_decay()
        for k, w in self._params(pl_module).items():
            s = shadow[k]
            if s.dtype.is_floating_point:
                s.lerp_(w.detach().to(s.dtype), weight)
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
        state: dict[str, Any] = {
            "decay": self.decay,
            "num_updates": self.num_updates,
            "warmup": self.warmup,
        }
        if self.shadow is not None:
            state["shadow"] = self.shadow
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the update count and warm-up mode the checkpointed run used.

        A resumed run continues the schedule it was saved with, so that it stays bit-identical
        to an uninterrupted one; checkpoints written before the warm-up existed carry no
        ``warmup`` field and were averaged with the fixed decay, so they resume without it.
        """
        if "num_updates" in state_dict:
            self.num_updates = int(state_dict["num_updates"])
            self.warmup = bool(state_dict.get("warmup", False))
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

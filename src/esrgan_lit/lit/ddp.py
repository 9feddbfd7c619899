"""DDP for GANs: keep G and D out of one DistributedDataParallel wrapper.

Lightning's DDP wraps the whole LightningModule; with two optimisers and manual steps that breaks
(issues #20328, #20866: unused-parameter errors, D gradients reduced in the G step). Here nothing
is wrapped: parameters are broadcast from rank 0 once, and :class:`~esrgan_lit.lit.base.SRModule`
averages each network's gradients itself right before its optimiser steps.
"""

from __future__ import annotations

from lightning.pytorch.overrides.distributed import _sync_module_states
from lightning.pytorch.strategies import DDPStrategy


class GANDDPStrategy(DDPStrategy):
    """A DDP strategy that leaves the module unwrapped; gradients are averaged per optimiser."""

    strategy_name = "gan_ddp"

    def configure_ddp(self) -> None:
        assert self.model is not None
        _sync_module_states(self.model)

"""DDP for GANs: keep G and D out of one DistributedDataParallel wrapper.

Lightning's DDP wraps the whole LightningModule; with two optimisers and manual steps that breaks
(issues #20328, #20866: unused-parameter errors, D gradients reduced in the G step). Here nothing
is wrapped: parameters are broadcast from rank 0 once, and :class:`~esrgan_lit.lit.base.SRModule`
averages each network's gradients itself right before its optimiser steps.

The strategy is registered with Lightning as ``ddp_gan`` (and ``ddp_gan_spawn`` / ``ddp_gan_fork``
for the multiprocessing launchers), so ``trainer.strategy=ddp_gan`` works like ``ddp``.
"""

from __future__ import annotations

from lightning.pytorch.strategies import DDPStrategy, StrategyRegistry

from esrgan_lit.lit.compat import sync_module_states

STRATEGY_NAMES = {"ddp_gan": "popen", "ddp_gan_spawn": "spawn", "ddp_gan_fork": "fork"}


class GANDDPStrategy(DDPStrategy):
    """A DDP strategy that leaves the module unwrapped; gradients are averaged per optimiser."""

    strategy_name = "gan_ddp"

    def configure_ddp(self) -> None:
        assert self.model is not None
        sync_module_states(self.model)


def register_strategies() -> None:
    """Make ``Trainer(strategy="ddp_gan")`` (and the spawn/fork variants) build this strategy.

    Idempotent; runs when this module is imported, and ``esrgan_lit.train`` calls it explicitly.
    """
    for name, start_method in STRATEGY_NAMES.items():
        if name not in StrategyRegistry:
            StrategyRegistry.register(
                name,
                GANDDPStrategy,
                description=f"GAN DDP (G and D unwrapped), start_method={start_method}",
                start_method=start_method,
            )


register_strategies()

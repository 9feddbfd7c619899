"""Stage 1: the PSNR-oriented generator, trained with a pixel loss only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from esrgan_lit.lit.base import SRModule
from esrgan_lit.lit.fastpath import build_optimizer


class PSNRModule(SRModule):
    """L1 training of the generator (paper: Adam 2e-4, lr halved every 2e5 iterations)."""

    def __init__(
        self,
        generator: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        pixel_loss: nn.Module | None = None,
        *,
        pretrained_generator: str | None = None,
        grad_clip: float | None = None,
        max_nonfinite_steps: int = 25,
        **fast_path: Any,
    ) -> None:
        super().__init__(
            generator,
            pretrained_generator=pretrained_generator,
            grad_clip=grad_clip,
            max_nonfinite_steps=max_nonfinite_steps,
            **fast_path,
        )
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        if pixel_loss is None:
            from esrgan_lit.losses import PixelLoss

            pixel_loss = PixelLoss("l1")
        self.pixel_loss = pixel_loss

    def configure_optimizers(self) -> Any:
        opt = build_optimizer(self.optimizer_factory, self.generator.parameters(), self.device)
        if self.scheduler_factory is None:
            return opt
        return {"optimizer": opt, "lr_scheduler": self.scheduler_factory(optimizer=opt)}

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Forward, L1, backward, guarded step, then schedulers and the non-finite guard."""
        opt = self.optimizers()
        sch = self.lr_schedulers()
        self.log_lr(opt, "g")
        batch = self.train_batch(batch)
        sr = self.generator(batch["lq"])
        with torch.autocast(device_type=sr.device.type, enabled=False):
            # data/degradation=realesrgan adds the unsharp-masked GT: Real-ESRNet's L1 target
            target = batch.get("gt_usm", batch["gt"])
            l_pix = self.pixel_loss(sr.float(), target.float())
        opt.zero_grad(set_to_none=True)
        self.manual_backward(l_pix)
        step_g = self.step_optimizer(opt, "g")
        self.finish_iteration([sch] if sch is not None else [], [step_g])
        self.log("train/l_pix", l_pix.detach(), prog_bar=True, on_step=True, on_epoch=False)

"""Stage 2: GAN fine-tuning (relativistic average D, VGG loss before activation), manual steps.

One iteration = one G step then one D step. Only the G step advances ``global_step`` (the D step
is uncounted), so ``trainer.max_steps=N`` is N generator iterations; during the optional D
warm-up only D steps, and that step counts instead.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from esrgan_lit.lit.base import SRModule
from esrgan_lit.lit.fastpath import build_optimizer


class ESRGANModule(SRModule):
    """Total G loss = w_p * L_percep + lambda * L_G^Ra + eta * L1 (paper: 1, 5e-3, 1e-2)."""

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        optimizer_g: Callable[..., torch.optim.Optimizer],
        optimizer_d: Callable[..., torch.optim.Optimizer],
        scheduler_g: Callable[..., Any] | None = None,
        scheduler_d: Callable[..., Any] | None = None,
        pixel_loss: nn.Module | None = None,
        perceptual_loss: nn.Module | None = None,
        gan_loss: nn.Module | None = None,
        *,
        pixel_weight: float = 1e-2,
        perceptual_weight: float = 1.0,
        gan_weight: float = 5e-3,
        d_warmup_iters: int = 0,
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
        from esrgan_lit.losses import GANLoss, PixelLoss

        self.discriminator = discriminator
        self.pixel_loss = pixel_loss if pixel_loss is not None else PixelLoss("l1")
        self.perceptual_loss = perceptual_loss
        self.gan_loss = gan_loss if gan_loss is not None else GANLoss("ragan")
        self.pixel_weight = pixel_weight
        self.perceptual_weight = perceptual_weight
        self.gan_weight = gan_weight
        self.d_warmup_iters = d_warmup_iters
        self.optimizer_factories = (optimizer_g, optimizer_d)
        self.scheduler_factories = (scheduler_g, scheduler_d)
        if perceptual_loss is None and perceptual_weight:
            warnings.warn(
                "ESRGANModule without a perceptual loss: the generator trains on the GAN and "
                "pixel terms only (not the paper's objective).",
                stacklevel=2,
            )

    def configure_optimizers(self) -> Any:
        make_g, make_d = self.optimizer_factories
        opt_g = build_optimizer(make_g, self.generator.parameters(), self.device)
        opt_d = build_optimizer(make_d, self.discriminator.parameters(), self.device)
        scheds = [
            f(optimizer=o)
            for f, o in zip(self.scheduler_factories, (opt_g, opt_d))
            if f is not None
        ]
        if len(scheds) not in (0, 2):
            raise ValueError("give both scheduler_g and scheduler_d, or neither")
        return [opt_g, opt_d], scheds

    def _f32(self, device: torch.device) -> Any:
        return torch.autocast(device_type=device.type, enabled=False)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """One GAN iteration, top to bottom: G step, D step, then schedulers and NaN guard.

        During the D warm-up (``global_step < d_warmup_iters``) there is no G step and the D
        step is the iteration's counted step; afterwards G's step counts and D's does not, so
        ``global_step`` counts iterations (#17958).
        """
        opt_g, opt_d = self.optimizers()
        scheds = self.lr_schedulers() or []
        batch = self.train_batch(batch)
        lq, gt = batch["lq"], batch["gt"]
        warmup = self.global_step < self.d_warmup_iters
        self.log_lr(opt_g, "g")
        self.log_lr(opt_d, "d")
        with torch.set_grad_enabled(not warmup):  # D warm-up uses only sr.detach(): no graph
            sr = self.generator(lq)
        steps = []

        # 1. generator step (counted), D frozen by toggle_optimizer
        fake_pred_g: Tensor | None = None
        if not warmup:
            self.toggle_optimizer(opt_g)
            # Real-ESRGAN: pixel + perceptual terms against the USM GT when the data gives one
            l_g, fake_pred_g = self._generator_loss(sr, gt, batch.get("gt_usm"))
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(l_g)
            steps.append(self.step_optimizer(opt_g, "g"))
            self.untoggle_optimizer(opt_g)

        # 2. discriminator step on sr.detach(), G frozen; uncounted unless it is the only step
        self.toggle_optimizer(opt_d)
        opt_d.zero_grad(set_to_none=True)
        self._discriminator_backward(sr.detach(), gt, fake_pred_g)
        steps.append(self.step_optimizer(opt_d, "d", counted=warmup))
        self.untoggle_optimizer(opt_d)

        # 3. bookkeeping: schedulers once per iteration, grad norms, the non-finite guard
        self.finish_iteration(scheds if isinstance(scheds, list) else [scheds], steps)

    def _generator_loss(
        self, sr: Tensor, gt: Tensor, gt_usm: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Total G loss (logged by term) and D's detached prediction on ``sr`` for D's step."""
        fake_pred = self.discriminator(sr)
        real_pred = self.discriminator(gt).detach() if self.gan_loss.relativistic else None
        with self._f32(sr.device):
            sr32 = sr.float()
            target = (gt if gt_usm is None else gt_usm).float()
            l_pix = self.pixel_loss(sr32, target)
            l_gan = self.gan_loss.generator_loss(
                fake_pred.float(), None if real_pred is None else real_pred.float()
            )
            total = self.pixel_weight * l_pix + self.gan_weight * l_gan
            if self.perceptual_loss is not None:
                l_percep = self.perceptual_loss(sr32, target)
                total = total + self.perceptual_weight * l_percep
                self.log("train/l_percep", l_percep.detach(), on_step=True, on_epoch=False)
        self.log("train/l_pix", l_pix.detach(), on_step=True, on_epoch=False)
        self.log("train/l_gan", l_gan.detach(), on_step=True, on_epoch=False)
        self.log("train/l_g_total", total.detach(), prog_bar=True, on_step=True, on_epoch=False)
        return total, fake_pred.detach()

    def _discriminator_backward(self, sr: Tensor, gt: Tensor, fake_pred: Tensor | None) -> None:
        """D's loss in two backward halves (real, then fake), as the official code does.

        BatchNorm in D sees one kind of batch per forward, and each half detaches the other
        side's predictions; ``fake_pred`` is G's step's D prediction (recomputed in warm-up).
        """
        if fake_pred is None and self.gan_loss.relativistic:
            with torch.no_grad():
                fake_pred = self.discriminator(sr)
        real_pred = self.discriminator(gt)
        with self._f32(sr.device):
            l_d_real = self.gan_loss.discriminator_loss_real(
                real_pred.float(), None if fake_pred is None else fake_pred.float()
            )
        self.manual_backward(l_d_real)
        fake_pred_d = self.discriminator(sr)
        with self._f32(sr.device):
            l_d_fake = self.gan_loss.discriminator_loss_fake(
                fake_pred_d.float(), real_pred.detach().float()
            )
        self.manual_backward(l_d_fake)
        self.log("train/l_d_real", l_d_real.detach(), on_step=True, on_epoch=False)
        self.log("train/l_d_fake", l_d_fake.detach(), on_step=True, on_epoch=False)
        self.log("train/d_real", real_pred.detach().float().mean(), on_step=True, on_epoch=False)
        self.log("train/d_fake", fake_pred_d.detach().float().mean(), on_step=True, on_epoch=False)

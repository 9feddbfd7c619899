"""ESRGANModule.training_step + GeneratorEMA written out by hand (bench_train_step.py's oracle).

The same order and math as the LightningModule (toggled requires_grad, grad-norm guard, Adam,
MultiStepLR, EMA, the same logged scalars), with optional per-phase timers.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import torch
from torch import Tensor, nn
from train_step_common import _no_phase

from esrgan_lit.losses import GANLoss, PixelLoss

W_PIX, W_PERCEP, W_GAN, LR, EMA_DECAY = 1e-2, 1.0, 5e-3, 1e-4, 0.999
MILESTONES = [50_000, 100_000, 200_000, 300_000]
ADAM = functools.partial(torch.optim.Adam, lr=LR, betas=(0.9, 0.999))
SCHED = functools.partial(torch.optim.lr_scheduler.MultiStepLR, milestones=MILESTONES, gamma=0.5)


def _variant(name: str) -> tuple[torch.dtype | None, torch.memory_format]:
    prec, *rest = name.split("-")
    if prec not in ("fp32", "bf16") or rest not in ([], ["cl"]):
        raise ValueError(f"unknown variant {name!r}; expected fp32, bf16, fp32-cl or bf16-cl")
    fmt = torch.channels_last if rest else torch.contiguous_format
    return (torch.bfloat16 if prec == "bf16" else None), fmt


def _guard(net: nn.Module) -> Tensor:
    """SRModule.on_before_optimizer_step: grad norm, drop the grads (skip) if non-finite."""
    params = [p for p in net.parameters() if p.grad is not None]
    norm = nn.utils.clip_grad_norm_(params, max_norm=math.inf, error_if_nonfinite=False)
    if not torch.isfinite(norm):
        for p in params:
            p.grad = None
    return norm.detach()


def _state(g: nn.Module, d: nn.Module) -> dict[str, Tensor]:
    out = {f"g.{k}": v.detach().float().clone() for k, v in g.state_dict().items()}
    return out | {f"d.{k}": v.detach().float().clone() for k, v in d.state_dict().items()}


class HandLoop:
    """ESRGANModule.training_step + GeneratorEMA written out by hand (same order, same math)."""

    def __init__(self, nets: tuple[nn.Module, ...], cfg: Any, variant: str) -> None:
        self.dtype, self.fmt = _variant(variant)
        self.device = cfg.device
        self.g, self.d, self.p = (n.to(cfg.device, memory_format=self.fmt) for n in nets)
        self.pix, self.gan = PixelLoss("l1"), GANLoss("ragan")
        self.opt_g, self.opt_d = ADAM(self.g.parameters()), ADAM(self.d.parameters())
        self.scheds = [SCHED(self.opt_g), SCHED(self.opt_d)]
        self.ema = {k: v.detach().clone() for k, v in self.g.state_dict().items()}
        self.logged: list[list[float]] = []

    def step(self, it: Any, ph: Any = _no_phase, split: bool = False) -> None:
        f32 = functools.partial(torch.autocast, self.device, enabled=False)
        with ph("data"):
            batch = next(it)
            lq, gt = (
                batch[k].to(self.device).contiguous(memory_format=self.fmt) for k in ("lq", "gt")
            )
        amp = torch.autocast(self.device, torch.bfloat16, enabled=self.dtype is not None)
        with amp:  # Lightning's bf16-mixed wraps the whole training_step the same way
            with ph("G fwd"):
                sr = self.g(lq)
            self.d.requires_grad_(False)  # toggle_optimizer(opt_g)
            with ph("D fwd"):
                fake = self.d(sr)
                real = self.d(gt).detach()
            with ph("losses"), f32():
                l_pix = self.pix(sr.float(), gt.float())
                l_gan = self.gan.generator_loss(fake.float(), real.float())
            with ph("VGG fwd"), f32():
                l_per = self.p(sr.float(), gt.float())
            total = W_PIX * l_pix + W_GAN * l_gan + W_PERCEP * l_per
            self.opt_g.zero_grad(set_to_none=True)
            if split:  # the same FLOPs as total.backward(), attributed to each network
                with ph("VGG bwd"):
                    (g_per,) = torch.autograd.grad(W_PERCEP * l_per, sr)
                with ph("D bwd"):
                    (g_adv,) = torch.autograd.grad(W_PIX * l_pix + W_GAN * l_gan, sr)
                with ph("G bwd"):
                    sr.backward(g_per + g_adv)
            else:
                with ph("G bwd"):
                    total.backward()
            with ph("grad norm"):
                gn_g = _guard(self.g)
            with ph("optimiser"):
                self.opt_g.step()
                self.d.requires_grad_(True)
                self.g.requires_grad_(False)  # toggle_optimizer(opt_d)
                self.opt_d.zero_grad(set_to_none=True)
            srd, fake = sr.detach(), fake.detach()
            with ph("D fwd"):
                real_d = self.d(gt)
                with f32():
                    l_real = self.gan.discriminator_loss_real(real_d.float(), fake.float())
            with ph("D bwd"):
                l_real.backward()
            with ph("D fwd"):
                fake_d = self.d(srd)
                with f32():
                    l_fake = self.gan.discriminator_loss_fake(
                        fake_d.float(), real_d.detach().float()
                    )
            with ph("D bwd"):
                l_fake.backward()
            with ph("grad norm"):
                gn_d = _guard(self.d)
            with ph("optimiser"):
                self.opt_d.step()
                self.g.requires_grad_(True)
                for s in self.scheds:
                    s.step()
        with ph("EMA"), torch.no_grad():
            for k, w in dict(self.g.state_dict()).items():
                self.ema[k].lerp_(w.detach().to(self.ema[k].dtype), 1.0 - EMA_DECAY)
        with ph("logging"):
            vals = [l_per, l_pix, l_gan, total, l_real, l_fake, real_d.float().mean()]
            vals += [fake_d.float().mean(), gn_g, gn_d]
            lrs = [self.opt_g.param_groups[0]["lr"], self.opt_d.param_groups[0]["lr"]]
            self.logged.append(lrs + [float(v.detach()) for v in vals])

"""A plain PyTorch training loop written the way BasicSR's SRModel / ESRGANModel run (our code).

Facts taken from BasicSR (not its code): ``update_learning_rate`` before ``optimize_parameters``;
the G step freezes D, sums L1 (x1e-2), the VGG loss and the relativistic GAN loss (x5e-3, the
mean of the real and fake terms with BCE-with-logits); the D step runs D on the SR image once
more for the detached fake prediction, then two halves (x0.5) with separate backward passes;
``model_ema`` averages parameters one tensor at a time; ``reduce_loss_dict`` reads every loss
back with ``.item()`` each iteration. fp32, PyTorch's default TF32 settings, no compile.
"""

from __future__ import annotations

import argparse
import copy
import functools
import time
import warnings
from typing import Any

import torch
from bench_train_numerics import loader
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

LR = {"psnr": 2e-4, "gan": 1e-4}
MILESTONES = [50_000, 100_000, 200_000, 300_000]
EMA = 0.999


def reset_peak(device: str) -> None:
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()


def peak_gib(device: str) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


class BasicSRLoop:
    """One BasicSR-style iteration (update_learning_rate, optimize_parameters, model_ema, log)."""

    def __init__(self, stage: str, nets: tuple[nn.Module, ...], device: str) -> None:
        self.stage, self.device = stage, device
        g, d, vgg = (copy.deepcopy(n).to(device) for n in nets)
        self.g, self.d, self.vgg = g, d, vgg
        self.g_ema = copy.deepcopy(g).eval()
        adam = functools.partial(torch.optim.Adam, lr=LR[stage], betas=(0.9, 0.999))
        self.opts = [adam(g.parameters())] + ([adam(d.parameters())] if stage == "gan" else [])
        ms = functools.partial(torch.optim.lr_scheduler.MultiStepLR, milestones=MILESTONES)
        self.scheds = [ms(o, gamma=0.5) for o in self.opts]
        self.l1, self.bce = nn.L1Loss(), nn.BCEWithLogitsLoss()
        self.log: dict[str, float] = {}

    def _gan(self, pred: torch.Tensor, real: bool) -> torch.Tensor:
        return self.bce(pred, torch.full_like(pred, 1.0 if real else 0.0))

    def step(self, batch: dict[str, torch.Tensor]) -> None:
        lq, gt = batch["lq"].to(self.device), batch["gt"].to(self.device)
        with warnings.catch_warnings():  # BasicSR steps the schedulers first: intended
            warnings.simplefilter("ignore")
            for s in self.scheds:
                s.step()
        losses = self._gan_step(lq, gt) if self.stage == "gan" else self._psnr_step(lq, gt)
        with torch.no_grad():  # model_ema: parameters only, one tensor at a time
            ema = dict(self.g_ema.named_parameters())
            for k, p in self.g.named_parameters():
                ema[k].mul_(EMA).add_(p, alpha=1 - EMA)
        self.log = {k: v.mean().item() for k, v in losses.items()}  # reduce_loss_dict

    def _psnr_step(self, lq: torch.Tensor, gt: torch.Tensor) -> dict[str, torch.Tensor]:
        opt = self.opts[0]
        opt.zero_grad()
        l_pix = self.l1(self.g(lq), gt)
        l_pix.backward()
        opt.step()
        return {"l_pix": l_pix}

    def _gan_step(self, lq: torch.Tensor, gt: torch.Tensor) -> dict[str, torch.Tensor]:
        opt_g, opt_d = self.opts
        for p in self.d.parameters():
            p.requires_grad = False
        opt_g.zero_grad()
        out = self.g(lq)
        l_pix = 1e-2 * self.l1(out, gt)
        l_percep = self.vgg(out, gt)
        real_pred = self.d(gt).detach()
        fake_pred = self.d(out)
        l_g_real = self._gan(real_pred - fake_pred.mean(), False)
        l_g_fake = self._gan(fake_pred - real_pred.mean(), True)
        l_g_gan = 5e-3 * (l_g_real + l_g_fake) / 2
        (l_pix + l_percep + l_g_gan).backward()
        opt_g.step()
        for p in self.d.parameters():
            p.requires_grad = True
        opt_d.zero_grad()
        fake_d = self.d(out).detach()
        real_d = self.d(gt)
        l_d_real = self._gan(real_d - fake_d.mean(), True) * 0.5
        l_d_real.backward()
        fake_d = self.d(out.detach())
        l_d_fake = self._gan(fake_d - real_d.detach().mean(), False) * 0.5
        l_d_fake.backward()
        opt_d.step()
        return {"l_pix": l_pix, "l_percep": l_percep, "l_g_gan": l_g_gan, "l_d_real": l_d_real}


def time_basicsr(stage: str, nets: tuple, sz: dict, args: argparse.Namespace) -> dict[str, Any]:
    loop = BasicSRLoop(stage, nets, args.device)
    batches = list(loader(args.warmup + args.steps + 1, sz))
    with FlopCounterMode(display=False) as fc:
        loop.step(batches[0])
    for b in batches[1 : 1 + args.warmup]:
        loop.step(b)
    reset_peak(args.device)
    _sync(args.device)
    t0 = time.perf_counter()
    for b in batches[1 + args.warmup :]:
        loop.step(b)
    _sync(args.device)
    ms = 1e3 * (time.perf_counter() - t0) / args.steps
    return {"ms": ms, "flop": int(fc.get_total_flops()), "peak_mem": peak_gib(args.device)}

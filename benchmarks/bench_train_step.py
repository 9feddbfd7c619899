"""Full-size ESRGAN training step: Lightning vs a hand-written loop, time breakdown, FLOPs, peak.

One iteration = ESRGANModule.training_step (G step, then the two-half RaGAN D step, schedulers)
plus the GeneratorEMA callback. All in one process, from the same initial weights and batches:

* Lightning: a real ``lightning.Trainer`` (max_steps, CSVLogger, log_every_n_steps=1) driving
  ``ESRGANModule``; an iteration is the interval between consecutive ``on_train_batch_end``
  (data loading, hooks and logging included).
* hand: the same math written out (toggled requires_grad, grad-norm guard, Adam, MultiStepLR,
  EMA, the same logged scalars), timed end to end; run before *and* after Lightning and pooled,
  so load drift on a shared machine favours neither side.
* breakdown: the hand loop with a timer per phase; the G-step backward is split at the SR image
  with ``torch.autograd.grad`` (VGG part, D part, then G): the same FLOPs as one backward. Its
  first iteration runs under ``FlopCounterMode`` (conv/matmul FLOPs, forward + backward).
* peak: a large fp32 ``torch.mm`` loop before and after, with the same threads.

Each time is taken on two clocks: wall, and (on CPU) the process CPU time, which on a loaded,
shared machine measures the work done however often the scheduler took the core away.

VGG19 has random weights (``pretrained=False``; no ImageNet weights here): the same FLOPs.
Run: ``python benchmarks/bench_train_step.py [--quick] [--device cuda]``.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import functools
import math
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import CSVLogger
from torch import Tensor, nn
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

from esrgan_lit.archs import RRDBNet, VGGStyleDiscriminator
from esrgan_lit.callbacks import GeneratorEMA
from esrgan_lit.lit import ESRGANModule
from esrgan_lit.losses import GANLoss, PerceptualLoss, PixelLoss
from esrgan_lit.utils.atomic import atomic_write_path

RESULTS = Path(__file__).resolve().parent / "results"
W_PIX, W_PERCEP, W_GAN, LR, EMA_DECAY = 1e-2, 1.0, 5e-3, 1e-4, 0.999
MILESTONES = [50_000, 100_000, 200_000, 300_000]
PHASES = ("data", "G fwd", "G bwd", "D fwd", "D bwd", "VGG fwd", "VGG bwd", "losses")
PHASES += ("grad norm", "optimiser", "EMA", "logging")
ADAM = functools.partial(torch.optim.Adam, lr=LR, betas=(0.9, 0.999))
SCHED = functools.partial(torch.optim.lr_scheduler.MultiStepLR, milestones=MILESTONES, gamma=0.5)


Pair = tuple[float, float]  # (wall-clock, process CPU time), seconds or rates


def _now() -> Pair:
    return time.perf_counter(), time.process_time()


def _diff(t0: Pair, t1: Pair) -> Pair:
    return t1[0] - t0[0], t1[1] - t0[1]


@dataclass
class Config:
    device: str = "cpu"
    batch: int = 1
    gt_size: int = 64
    scale: int = 4
    num_feat: int = 64
    num_block: int = 23
    num_grow_ch: int = 32
    d_feat: int = 64
    warmup: int = 1
    steps: int = 4
    variants: tuple[str, ...] = ("fp32",)
    threads: int = 1
    peak_n: int = 1536
    peak_reps: int = 6


@dataclass
class VariantResult:
    name: str
    hand: list[Pair] = field(default_factory=list)
    lightning: list[Pair] = field(default_factory=list)
    phases: dict[str, list[Pair]] = field(default_factory=lambda: defaultdict(list))
    breakdown: list[Pair] = field(default_factory=list)
    flops: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    max_diff: float = math.nan
    log_ms: float = math.nan
    global_step: int = -1
    iterations: int = -1


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _variant(name: str) -> tuple[torch.dtype | None, torch.memory_format]:
    prec, *rest = name.split("-")
    if prec not in ("fp32", "bf16") or rest not in ([], ["cl"]):
        raise ValueError(f"unknown variant {name!r}; expected fp32, bf16, fp32-cl or bf16-cl")
    fmt = torch.channels_last if rest else torch.contiguous_format
    return (torch.bfloat16 if prec == "bf16" else None), fmt


def _loader(n_iter: int, cfg: Config) -> DataLoader:
    """``n_iter`` batches cycling over 4 fixed random patches (no I/O: the step only)."""
    gt = torch.rand(4, 3, cfg.gt_size, cfg.gt_size, generator=torch.Generator().manual_seed(1))
    lq = nn.functional.avg_pool2d(gt, cfg.scale)
    items = [{"lq": lq[i % 4], "gt": gt[i % 4]} for i in range(n_iter * cfg.batch)]
    return DataLoader(items, batch_size=cfg.batch)


def build_nets(cfg: Config) -> tuple[nn.Module, nn.Module, nn.Module]:
    torch.manual_seed(0)
    g = RRDBNet(3, 3, cfg.scale, cfg.num_feat, cfg.num_block, cfg.num_grow_ch)
    d = VGGStyleDiscriminator(num_feat=cfg.d_feat, input_size=cfg.gt_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "random VGG weights": intended, see the module doc
        p = PerceptualLoss(layer_weights={"conv5_4": 1.0}, before_relu=True, pretrained=False)
    return g, d, p


class _Phases:
    """Per-phase wall clock (synchronised), or per-phase FLOPs while ``counting``."""

    def __init__(self, device: str, flops: dict[str, int]) -> None:
        self.device, self.flops, self.counting = device, flops, False
        self.times: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])

    @contextmanager
    def __call__(self, name: str) -> Any:
        if self.counting:
            with FlopCounterMode(display=False) as fc:
                yield
            self.flops[name] += int(fc.get_total_flops())
            return
        _sync(self.device)
        t0 = _now()
        yield
        _sync(self.device)
        for i, dt_ in enumerate(_diff(t0, _now())):
            self.times[name][i] += dt_


def _no_phase(name: str) -> Any:
    return nullcontext()


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

    def __init__(self, nets: tuple[nn.Module, ...], cfg: Config, variant: str) -> None:
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


class _BenchModule(ESRGANModule):
    """ESRGANModule unchanged, except batches take the variant's memory format."""

    fmt = torch.contiguous_format

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        return {k: v.contiguous(memory_format=self.fmt) for k, v in batch.items()}


def _time_calls(obj: Any, name: str, sink: list[float]) -> None:
    """Wrap the bound method ``obj.name`` so that its wall time is added to ``sink[0]``."""
    fn = getattr(obj, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        sink[0] += time.perf_counter() - t0
        return out

    setattr(obj, name, timed)


class _Clock(L.Callback):
    """Timestamps each iteration end; keeps G/D weights after the first (same-math check)."""

    def __init__(self, device: str) -> None:
        self.device, self.ends, self.logs, self.first, self.log_s = device, [], [], None, [0.0]

    def on_train_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        _time_calls(pl_module, "log", self.log_s)
        conn = getattr(trainer, "_logger_connector", None)  # private API: timed when present
        if hasattr(conn, "update_train_step_metrics"):
            _time_calls(conn, "update_train_step_metrics", self.log_s)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.first is None:  # copied before the timestamp: not inside a timed interval
            _sync(self.device)
            self.first = _state(pl_module.generator, pl_module.discriminator)
        _sync(self.device)
        self.ends.append(_now())
        self.logs.append(self.log_s[0])


def run_lightning(nets: tuple[nn.Module, ...], cfg: Config, variant: str, res: VariantResult):
    """Fit for warmup + steps iterations; returns the weights after the first iteration."""
    dtype, fmt = _variant(variant)
    g, d, p = nets
    losses = {"pixel_loss": PixelLoss("l1"), "perceptual_loss": p, "gan_loss": GANLoss("ragan")}
    weights = {"pixel_weight": W_PIX, "perceptual_weight": W_PERCEP, "gan_weight": W_GAN}
    module = _BenchModule(g, d, ADAM, ADAM, SCHED, SCHED, **losses, **weights)
    module.to(memory_format=fmt)
    module.fmt = fmt
    n_iter, clock = cfg.warmup + cfg.steps, _Clock(cfg.device)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "few dataloader workers", "no validation loop" ...
        trainer = L.Trainer(
            accelerator=cfg.device,
            devices=1,
            max_steps=n_iter,
            precision="bf16-mixed" if dtype else "32-true",
            logger=CSVLogger(tmp),
            log_every_n_steps=1,
            callbacks=[GeneratorEMA(decay=EMA_DECAY), clock],
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            limit_val_batches=0,
            deterministic=False,
            default_root_dir=tmp,
        )
        trainer.fit(module, train_dataloaders=_loader(n_iter, cfg))
    res.lightning = [_diff(a, b) for a, b in zip(clock.ends, clock.ends[1:])][cfg.warmup - 1 :]
    logs = [b - a for a, b in zip(clock.logs, clock.logs[1:])][cfg.warmup - 1 :]
    res.global_step, res.iterations = trainer.global_step, len(clock.ends)
    res.log_ms = 1e3 * statistics.median(logs)
    return clock.first


def run_hand(loop: HandLoop, cfg: Config, n_warm: int, first: list) -> list[Pair]:
    it, times = iter(_loader(n_warm + cfg.steps, cfg)), []
    for _ in range(n_warm + cfg.steps):
        t0 = _now()
        loop.step(it)
        _sync(cfg.device)
        times.append(_diff(t0, _now()))
        if not first:
            first.append(_state(loop.g, loop.d))
    return times[n_warm:]


def run_breakdown(loop: HandLoop, cfg: Config, res: VariantResult) -> None:
    it, ph = iter(_loader(1 + cfg.steps, cfg)), _Phases(cfg.device, res.flops)
    ph.counting = True  # the first iteration counts FLOPs per phase (and is the warm-up)
    loop.step(it, ph, split=True)
    ph.counting = False
    for _ in range(cfg.steps):
        ph.times.clear()
        loop.step(it, ph, split=True)
        for name in PHASES:
            res.phases[name].append(tuple(ph.times.get(name, (0.0, 0.0))))
        res.breakdown.append(tuple(sum(t[i] for t in ph.times.values()) for i in (0, 1)))


def matmul_peak(cfg: Config, dtype: torch.dtype = torch.float32) -> list[Pair]:
    """GFLOP/s (wall, CPU time) of a large square ``torch.mm``, one sample per repetition."""
    a, b = (torch.randn(cfg.peak_n, cfg.peak_n, device=cfg.device, dtype=dtype) for _ in "ab")
    c, out = torch.mm(a, b), []
    for _ in range(cfg.peak_reps):
        _sync(cfg.device)
        t0 = _now()
        torch.mm(a, b, out=c)
        _sync(cfg.device)
        out.append(tuple(2 * cfg.peak_n**3 / max(t, 1e-9) / 1e9 for t in _diff(t0, _now())))
    return out


def run(cfg: Config) -> dict[str, Any]:
    """Everything, in one process; the raw numbers that :func:`render` formats."""
    torch.set_num_threads(cfg.threads)
    if cfg.device == "cuda":  # fp32 means fp32: no TF32 in matmuls or convolutions
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
    info: dict[str, Any] = {"cfg": cfg, "load_start": os.getloadavg(), "variants": []}
    info["peak"] = {"fp32": matmul_peak(cfg)}
    if cfg.device == "cuda" and any(v.startswith("bf16") for v in cfg.variants):
        info["peak"]["bf16"] = matmul_peak(cfg, torch.bfloat16)
    nets = build_nets(cfg)
    info["params"] = [sum(p.numel() for p in n.parameters()) for n in nets]
    for name in cfg.variants:
        res, first_hand = VariantResult(name), []
        loop = HandLoop(copy.deepcopy(nets), cfg, name)
        res.hand = run_hand(loop, cfg, cfg.warmup, first_hand)
        first_l = run_lightning(copy.deepcopy(nets), cfg, name, res)
        torch.set_num_threads(cfg.threads)
        res.hand += run_hand(loop, cfg, 1, first_hand)
        res.max_diff = max(float((first_hand[0][k] - v).abs().max()) for k, v in first_l.items())
        run_breakdown(loop, cfg, res)
        info["variants"].append(res)
        del loop
    info["peak"]["fp32"] += matmul_peak(cfg)
    lq_px = cfg.batch * (cfg.gt_size // cfg.scale) ** 2
    info["g_mflop_per_px"] = info["variants"][0].flops["G fwd"] / lq_px / 1e6
    info["load_end"], info["threads"] = os.getloadavg(), torch.get_num_threads()
    return info


def _ms(seconds: float) -> str:
    return f"{1e3 * seconds:,.0f}" if seconds >= 1 else f"{1e3 * seconds:.1f}"


def _med(xs: list[Pair], i: int) -> float:
    return statistics.median(x[i] for x in xs)


def _iqr(xs: list[Pair], i: int) -> str:
    if len(xs) < 2:
        return "-"
    q = statistics.quantiles([x[i] for x in xs], n=4, method="inclusive")
    return f"{_ms(q[0])}-{_ms(q[2])}"


def _rate(flop: float, seconds: float, peak: float) -> list[str]:
    if not flop or not seconds:
        return ["-", "-"]
    return [f"{flop / seconds / 1e9:,.1f}", f"{100 * flop / seconds / 1e9 / peak:.0f}%"]


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def render(info: dict[str, Any], command: str) -> str:
    """The dated markdown report (also printed)."""
    cfg: Config = info["cfg"]
    # Rates and shares use CPU time on CPU (robust to a loaded machine), wall time on a GPU.
    clocks = [(0, "wall")] if cfg.device == "cuda" else [(0, "wall"), (1, "CPU")]
    r, rname = clocks[-1]
    peak = {k: (_med(v, 0), _med(v, 1)) for k, v in info["peak"].items()}
    pk32 = [x[0] for x in info["peak"]["fp32"]]
    load = {k: " / ".join(f"{x:.1f}" for x in info[k]) for k in ("load_start", "load_end")}
    g_p, d_p, v_p = info["params"]
    lines = [
        f"# ESRGAN training step - {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        "",
        f"- Command: `{command}`",
        f"- Machine: {platform.machine()}, {os.cpu_count()} CPUs, device {cfg.device}, torch "
        f"{torch.__version__}, lightning {L.__version__}, {info['threads']} intra-op thread(s) (--threads 0 takes 1 when the "
        "load average exceeds the cores: oversubscribed OpenMP threads spin-wait, ~10x slower).",
        f"- Load average (1/5/15 min): start {load['load_start']}, end {load['load_end']}. A "
        "shared machine: wall times are noisy, so each figure is a median after warm-up (IQR "
        "beside it), and on CPU the process CPU time is given too (the work done, whatever the "
        "scheduler did); rates, shares and the verdict use "
        f"{'wall' if r == 0 else 'CPU'} time.",
        f"- Step: RRDBNet nb {cfg.num_block} nf {cfg.num_feat} gc {cfg.num_grow_ch} "
        f"x{cfg.scale} ({g_p:,} params); VGGStyleDiscriminator nf {cfg.d_feat} at "
        f"{cfg.gt_size} px ({d_p:,}); VGG19 to conv5_4 before ReLU ({v_p:,}; random weights, "
        "pretrained=False: the same FLOPs as ImageNet ones); RaGAN + L1; Adam, MultiStepLR, "
        f"generator EMA 0.999; batch {cfg.batch}, gt {cfg.gt_size} px, lq "
        f"{cfg.gt_size // cfg.scale} px.",
        f"- Iterations: {cfg.warmup} warm-up + {cfg.steps} timed per run; the hand loop runs "
        "before and after the Lightning run (pooled).",
        f"- fp32 matmul peak ({cfg.peak_n}x{cfg.peak_n} mm, median of {len(pk32)}, before + "
        f"after): {peak['fp32'][0]:,.1f} GFLOP/s wall (min {min(pk32):,.1f}, max "
        f"{max(pk32):,.1f})"
        + ("" if r == 0 else f", {peak['fp32'][1]:,.1f} GFLOP/s per CPU-second")
        + (f"; bf16: {peak['bf16'][0]:,.1f} GFLOP/s" if "bf16" in peak else "")
        + ".",
        f"- RRDBNet forward: {info['g_mflop_per_px']:.2f} MFLOP per input pixel (FlopCounterMode).",
        "",
    ]
    for res in info["variants"]:
        flop = sum(res.flops.values())
        pk = peak["bf16" if res.name.startswith("bf16") and "bf16" in peak else "fp32"]
        head = ["loop", "n"] + [f"{c} {k}" for _, c in clocks for k in ("ms / iter", "IQR")]
        head += [f"{k} ({c})" for _, c in clocks for k in ("GFLOP/s", "% of peak")]
        lines += [f"## {res.name}: {flop / 1e9:,.1f} GFLOP per iteration (conv + matmul)", ""]
        if res.name.startswith("bf16"):
            lines += ["Against the bf16 matmul peak; the VGG loss runs in fp32 by design.", ""]
        lines += [_row(head), "|---|" + "---:|" * (len(head) - 1)]
        loops = [("hand-written", res.hand), ("Lightning Trainer", res.lightning)]
        for label, xs in [*loops, ("hand, per-phase timers", res.breakdown)]:
            cells = [label, str(len(xs))]
            cells += [v for i, _ in clocks for v in (_ms(_med(xs, i)), _iqr(xs, i))]
            lines.append(
                _row(cells + [v for i, _ in clocks for v in _rate(flop, _med(xs, i), pk[i])])
            )
        over = {i: _med(res.lightning, i) / _med(res.hand, i) - 1 for i, _ in clocks}
        delta = {i: _med(res.lightning, i) - _med(res.hand, i) for i, _ in clocks}
        h = [x[r] for x in res.hand]
        lines += [
            "",
            "**Lightning overhead: "
            + ", ".join(f"{c} {100 * over[i]:+.1f}% ({1e3 * delta[i]:+,.0f} ms)" for i, c in clocks)
            + f"** per iteration; target <= 10% ({rname} time): "
            f"{'met' if over[r] <= 0.10 else 'NOT met'}. Hand loop before / after the Lightning "
            f"run ({rname}): {_ms(statistics.median(h[: cfg.steps]))} / "
            f"{_ms(statistics.median(h[cfg.steps :]))} ms, max-min spread "
            f"{100 * (max(h) - min(h)) / statistics.median(h):.0f}% of the median. Lightning "
            f"logging (self.log + logger connector, wall): {res.log_ms:.1f} ms/iter. max_steps="
            f"{cfg.warmup + cfg.steps} gave global_step {res.global_step} and {res.iterations} "
            "iterations. Same math: max |weight difference| after the first iteration, hand "
            f"loop vs Lightning: {res.max_diff:.1e}.",
            "",
        ]
        head = ["phase (hand loop)"] + [f"{c} ms" for _, c in clocks]
        head += [f"share ({rname})", "GFLOP", f"GFLOP/s ({rname})", f"% of peak ({rname})"]
        lines += [_row(head), "|---|" + "---:|" * (len(head) - 1)]
        total = _med(res.breakdown, r)
        for name in PHASES:
            t, f = _med(res.phases[name], r), res.flops.get(name, 0)
            cells = [name] + [_ms(_med(res.phases[name], i)) for i, _ in clocks]
            cells += [f"{100 * t / total:.1f}%", f"{f / 1e9:,.2f}", *_rate(f, t, pk[r])]
            lines.append(_row(cells))
        lines.append("")
    lines += [
        "Phases: D fwd/bwd hold the G step's passes (D frozen: input gradients only) and the D "
        "step's two halves; VGG bwd is the perceptual loss's gradient to the SR image; optimiser "
        "= zero_grad, requires_grad toggles, Adam for G and D, both schedulers; grad norm = the "
        "module's gradient-norm / non-finite guard. FLOPs: conv and matmul only (FlopCounterMode;"
        " BatchNorm, activations and Adam are not counted), forward + backward.",
        "",
    ]
    if cfg.device != "cuda":
        lines += [
            "## GPU: bf16 + channels_last vs fp32 at the paper's batch 16 x 128 px",
            "",
            "Not measured here (no GPU on this machine): run "
            "`python benchmarks/bench_train_step.py --device cuda` (variants fp32 and bf16-cl).",
            "",
        ]
    return "\n".join(lines)


def parse(argv: list[str] | None = None) -> tuple[Config, argparse.Namespace]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--quick", action="store_true", help="CPU: batch 2 x gt 32, 3 timed iterations")
    ap.add_argument("--batch", type=int)
    ap.add_argument("--gt-size", type=int, help="a multiple of 32 (the discriminator input)")
    ap.add_argument("--steps", type=int, help="timed iterations per run")
    ap.add_argument("--warmup", type=int)
    ap.add_argument("--variants", help="comma list of fp32, bf16, fp32-cl, bf16-cl")
    ap.add_argument("--threads", type=int, default=0, help="0: 1 if the CPU is loaded, else all")
    for name, default in [("num-feat", 64), ("num-block", 23), ("num-grow-ch", 32), ("d-feat", 64)]:
        ap.add_argument(f"--{name}", type=int, default=default, help="network size (tests: tiny)")
    ap.add_argument("--out", type=Path, help="markdown file (default: benchmarks/results/DATE-...)")
    ap.add_argument("--no-write", action="store_true", help="print only")
    a = ap.parse_args(argv)
    gpu = a.device == "cuda"
    if gpu and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA device here")
    threads, cores = a.threads, os.cpu_count() or 1
    if threads <= 0:  # oversubscribed OpenMP threads spin-wait on each other: ~10x slower here
        threads = 1 if not gpu and os.getloadavg()[0] > cores - 0.5 else cores
    cfg = Config(
        device=a.device,
        batch=a.batch or (16 if gpu else 2 if a.quick else 1),
        gt_size=a.gt_size or (128 if gpu else 32 if a.quick else 64),
        num_feat=a.num_feat,
        num_block=a.num_block,
        num_grow_ch=a.num_grow_ch,
        d_feat=a.d_feat,
        warmup=a.warmup or (5 if gpu else 1),
        steps=a.steps or (20 if gpu else 3 if a.quick else 4),
        variants=tuple((a.variants or ("fp32,bf16-cl" if gpu else "fp32")).split(",")),
        threads=threads,
        peak_n=8192 if gpu else 1536,
        peak_reps=20 if gpu else 3 if a.quick else 5,
    )
    for v in cfg.variants:
        _variant(v)
    if cfg.gt_size % 32 or cfg.warmup < 1 or cfg.steps < 1:
        ap.error("--gt-size must be a multiple of 32; --warmup and --steps at least 1")
    if cfg.batch * (cfg.gt_size // 32) ** 2 < 2:  # the discriminator's last BatchNorm
        msg = "the discriminator's last BatchNorm needs more than one value per channel"
        ap.error(f"batch {cfg.batch} x gt {cfg.gt_size}: {msg}; use --batch 2 or --gt-size 64")
    return cfg, a


def main(argv: list[str] | None = None) -> Path | None:
    cfg, a = parse(argv)
    args = sys.argv[1:] if argv is None else argv
    report = render(run(cfg), " ".join(["python benchmarks/bench_train_step.py", *args]))
    print(report)
    if a.no_write:
        return None
    tag = "-quick" if a.quick else "-cuda" if cfg.device == "cuda" else ""
    out = a.out or RESULTS / f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d}-train-step{tag}.md"
    with atomic_write_path(out) as tmp:
        tmp.write_text(report + "\n")
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    main()

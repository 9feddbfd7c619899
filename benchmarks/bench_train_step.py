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
Run: ``python benchmarks/bench_train_step.py [--quick] [--device cuda]``. The GPU comparison with a
BasicSR-style loop and the fast path (issue 15) is ``benchmarks/bench_train_step_gpu.py``.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import math
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader

from esrgan_lit.archs import RRDBNet, VGGStyleDiscriminator
from esrgan_lit.callbacks import GeneratorEMA
from esrgan_lit.lit import ESRGANModule
from esrgan_lit.losses import GANLoss, PerceptualLoss, PixelLoss
from esrgan_lit.utils.atomic import atomic_write_path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # siblings, also when loaded by path
from train_step_common import PHASES, Pair, _diff, _now, _Phases, _sync, matmul_peak
from train_step_hand import (
    ADAM,
    EMA_DECAY,
    SCHED,
    W_GAN,
    W_PERCEP,
    W_PIX,
    HandLoop,
    _state,
    _variant,
)
from train_step_report import render

__all__ = ["PHASES", "Config", "main", "matmul_peak", "parse", "render", "run"]

RESULTS = Path(__file__).resolve().parent / "results"


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

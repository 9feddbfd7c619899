"""Markdown report of bench_train_step.py (Lightning vs hand loop, per-phase breakdown)."""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
from typing import Any

import lightning as L
import torch
from train_step_common import PHASES, Pair


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
    cfg = info["cfg"]
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

"""Inference speed and memory: full RRDBNet x4 on CPU fp32 (issue 6, section 5 and 3).

(a) Throughput: output MP/s and GFLOP/s of the full ESRGAN generator (nf 64, nb 23, x4), untiled
    (NCHW and channels_last) and tiled with overlap through `Upscaler`, against this machine's fp32
    matmul peak measured in the same run. "useful" GFLOP/s count only the image's own pixels
    (overlap recomputation counts against us); "executed" counts every patch pixel.
(b) Peak RSS of upscaling a 2000x1500 RGB image x4 with --tile 256 on CPU, measured in a fresh
    subprocess, against the uint8 output size + 1 GiB.

Usage: python benchmarks/bench_inference.py [--quick] [--part a|b|all]
--quick shrinks images (and, for (b), the trunk depth and image size); the table says so. Timings
on a shared machine are noisy: each figure is the best of --repeat runs.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time

import numpy as np
import torch
from torch import nn

from esrgan_lit.archs import RRDBNet
from esrgan_lit.inference import Upscaler
from esrgan_lit.inference.tiling import plan_axis


def conv_flops_per_pixel(model: nn.Module, size: int = 32) -> float:
    """FLOPs (2 x MACs) of all convs per input pixel, counted with forward hooks."""
    total = 0

    def hook(m: nn.Conv2d, _inp, out):
        nonlocal total
        k = m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups
        total += 2 * k * out.numel()

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    for h in handles:
        h.remove()
    return total / size**2


def matmul_peak(n: int = 1024, repeat: int = 10) -> float:
    """Best-of fp32 GEMM GFLOP/s: the machine's practical compute ceiling."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = math.inf
    for _ in range(repeat):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


class Clock:
    """Best-of timings interleaved with matmul-peak samples, so both see the same machine load."""

    def __init__(self, repeat: int) -> None:
        self.repeat = repeat
        self.peak = 0.0

    def sample_peak(self) -> None:
        self.peak = max(self.peak, matmul_peak(repeat=3))

    def best(self, fn) -> float:
        fn()  # warm-up: oneDNN primitive creation, allocator
        times = []
        for _ in range(self.repeat):
            self.sample_peak()
            times.append(_timed(fn))
        return min(times)


def executed_pixels(h: int, w: int, tile: int, overlap: int) -> int:
    rows, cols = plan_axis(h, tile, overlap), plan_axis(w, tile, overlap)
    return sum((r.p1 - r.p0) * (c.p1 - c.p0) for r in rows for c in cols)


def part_a(args) -> list[str]:
    torch.set_grad_enabled(False)
    model = RRDBNet(scale=4).eval()
    fpp = conv_flops_per_pixel(model)
    clock = Clock(args.repeat)
    size, big = (48, 96) if args.quick else (128, 256)
    tile, overlap = (big // 2, 8) if args.quick else (big // 2, 16)
    rows = []

    results = []

    def row(name: str, h: int, w: int, secs: float, executed: int) -> None:
        results.append((name, h, w, secs, executed))

    x = torch.rand(1, 3, size, size)
    t = clock.best(lambda: model(x))
    row("plain model(x), NCHW, untiled", size, size, t, size * size)
    cl = RRDBNet(scale=4).eval().to(memory_format=torch.channels_last)
    cl.load_state_dict(model.state_dict())
    xc = x.contiguous(memory_format=torch.channels_last)
    t = clock.best(lambda: cl(xc))
    row("plain model(x), channels_last, untiled", size, size, t, size * size)
    img = (np.random.default_rng(0).random((size, size, 3)) * 255).astype(np.uint8)
    up = Upscaler(model, device="cpu", tile=0)
    t = clock.best(lambda: up.upscale(img))
    row("Upscaler untiled (channels_last, lean trunk + tail)", size, size, t, size * size)
    img = (np.random.default_rng(0).random((big, big, 3)) * 255).astype(np.uint8)
    up = Upscaler(model, device="cpu", tile=tile, tile_overlap=overlap)
    t = clock.best(lambda: up.upscale(img))
    row(
        f"Upscaler tile {tile} overlap {overlap}",
        big,
        big,
        t,
        executed_pixels(big, big, tile, overlap),
    )
    peak = clock.peak  # best GEMM rate seen anywhere in the run: the strictest denominator
    for name, h, w, secs, executed in results:
        useful, done = fpp * h * w / secs / 1e9, fpp * executed / secs / 1e9
        rows.append(
            f"| {name} | {h}x{w} | {16 * h * w / secs / 1e6:.4f} | {useful:.1f} | {done:.1f} | "
            f"{100 * useful / peak:.0f}% | {100 * done / peak:.0f}% |"
        )
    return [
        f"(a) full RRDBNet x4 (nf 64, nb 23), CPU fp32, {torch.get_num_threads()} threads; "
        f"{fpp / 1e6:.1f} MFLOP per input pixel (counted); best fp32 matmul (1024^3 GEMM) {peak:.0f} GFLOP/s, "
        "sampled between runs" + ("; --quick sizes" if args.quick else ""),
        "",
        "| run | input | output MP/s | useful GFLOP/s | executed GFLOP/s | useful/peak | executed/peak |",
        "|---|---|---|---|---|---|---|",
        *rows,
    ]


def _vm_rss() -> int:
    """Current resident set size in bytes (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return 0


def rss_child(width: int, height: int, blocks: int, tile: int, overlap: int) -> None:
    """Runs in a fresh process: report peak RSS of one tiled upscale (and the baseline)."""
    import resource

    torch.set_grad_enabled(False)
    model = RRDBNet(scale=4, num_block=blocks).eval()
    # uint8 straight away: no float64 image inflating the peak before the upscale starts
    img = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    base = _vm_rss()
    before = resource.getrusage(resource.RUSAGE_SELF)
    t = time.perf_counter()
    out = Upscaler(model, device="cpu", tile=tile, tile_overlap=overlap).upscale(img)
    secs = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_SELF)
    peak = after.ru_maxrss * 1024
    sys_s = after.ru_stime - before.ru_stime
    faults = after.ru_minflt - before.ru_minflt
    print(
        json.dumps(
            {
                "base": base,
                "peak": peak,
                "out_bytes": out.nbytes,
                "secs": secs,
                "sys": sys_s,
                "faults": faults,
            }
        )
    )


def part_b(args) -> list[str]:
    width, height, blocks = (500, 375, 1) if args.quick else (2000, 1500, args.rss_blocks)
    cmd = [sys.executable, __file__, "--rss-child", f"{width},{height},{blocks},256,{args.overlap}"]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    r = json.loads(res.stdout.strip().splitlines()[-1])
    limit = r["out_bytes"] + 2**30
    mib = 2**20
    return [
        f"(b) peak RSS, {width}x{height} RGB x4, --tile 256 --tile-overlap {args.overlap}, CPU fp32, "
        f"RRDBNet nf 64 nb {blocks}"
        + (" (--quick: smaller image and trunk)" if args.quick else ""),
        "",
        "| process RSS before upscale | peak RSS | peak - before | uint8 output | output + 1 GiB "
        "| within | time s | of it in kernel s | page faults |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {r['base'] / mib:.0f} MiB | {r['peak'] / mib:.0f} MiB | "
        f"{(r['peak'] - r['base']) / mib:.0f} MiB | {r['out_bytes'] / mib:.0f} MiB | "
        f"{limit / mib:.0f} MiB | {'yes' if r['peak'] <= limit else 'NO'} | {r['secs']:.0f} | "
        f"{r['sys']:.0f} | {r['faults']} |",
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes (noisy shared machines, CI)")
    p.add_argument("--part", choices=("a", "b", "all"), default="all")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--overlap", type=int, default=32)
    p.add_argument("--rss-blocks", type=int, default=23, help="trunk depth for (b) at full size")
    p.add_argument("--rss-child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.rss_child:
        w, h, nb, tile, ov = (int(v) for v in args.rss_child.split(","))
        rss_child(w, h, nb, tile, ov)
        return
    lines = []
    if args.part in ("a", "all"):
        lines += [*part_a(args), ""]
    if args.part in ("b", "all"):
        lines += part_b(args)
    print("\n".join(lines))
    print("\nTimings are best-of-N on a CPU shared with other jobs; treat them as noisy.")


if __name__ == "__main__":
    main()

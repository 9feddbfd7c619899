"""GPU inference throughput of the full RRDBNet x4 through `Upscaler` (issue 6, section 5).

Compares, in one run on one GPU: fp32 (TF32 off: true fp32), fp32 with TF32 convolutions
(PyTorch's cuDNN default), bf16 and fp16, NCHW or channels_last, and bf16 + torch.compile.
Reports output megapixels/s, achieved TFLOP/s (35.9 MFLOP per input pixel, counted), the ratio
to true fp32, and the dense matmul peaks measured in the same run. Also checks that every
reduced-precision output is finite, not black, and close to fp32.

    python benchmarks/bench_inference_gpu.py [--size 512] [--tile 512] [--repeat 3] [--no-compile]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from bench_inference import conv_flops_per_pixel

from esrgan_lit.archs import RRDBNet
from esrgan_lit.inference import Upscaler


def matmul_peak(dtype: torch.dtype, n: int = 8192, repeat: int = 5) -> float:
    a = torch.randn(n, n, device="cuda", dtype=dtype)
    b = torch.randn(n, n, device="cuda", dtype=dtype)
    a @ b
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(repeat):
        a @ b
    torch.cuda.synchronize()
    return 2 * n**3 * repeat / (time.perf_counter() - t) / 1e12


def photo(size: int) -> np.ndarray:
    """A deterministic natural-looking test image (scikit-image's astronaut when available)."""
    try:
        from skimage import data, transform

        img = transform.resize(data.astronaut(), (size, size), anti_aliasing=True)
        return (img * 255).round().astype(np.uint8)
    except ImportError:
        g = np.random.default_rng(0)
        return (g.random((size, size, 3)) * 255).astype(np.uint8)


def best_time(fn, repeat: int) -> float:
    fn()  # warm-up: cuDNN autotuning, compilation
    times = []
    for _ in range(repeat):
        torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=512, help="input side (output is 4x)")
    p.add_argument("--tile", type=int, default=512)
    p.add_argument("--overlap", type=int, default=16)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--no-compile", action="store_true")
    args = p.parse_args()
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    model = RRDBNet(scale=4).eval()
    fpp = conv_flops_per_pixel(model)
    with torch.no_grad():  # a mid-grey output: a black (fp16 overflow) image would stand out
        model.conv_last.bias.fill_(0.5)
    img = photo(args.size)
    runs = [  # name, precision, channels_last, tf32, compile
        ("fp32 (TF32 off), NCHW", "fp32", False, False, False),
        ("fp32 (TF32 off), channels_last", "fp32", True, False, False),
        ("fp32 + TF32 convs, channels_last", "fp32", True, True, False),
        ("bf16, NCHW", "bf16", False, False, False),
        ("bf16, channels_last", "bf16", True, False, False),
        ("fp16, channels_last", "fp16", True, False, False),
    ]
    if not args.no_compile:
        runs.append(("bf16, channels_last, torch.compile", "bf16", True, False, True))
    torch.backends.cuda.matmul.allow_tf32 = False
    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    out_mp = (4 * args.size) ** 2 / 1e6
    print(
        f"full RRDBNet x4 (nf 64, nb 23, random weights, output biased to mid-grey) on "
        f"{torch.cuda.get_device_name()}, torch {torch.__version__}; input {args.size}x"
        f"{args.size}, tile {args.tile}, overlap {args.overlap}; {fpp / 1e6:.1f} MFLOP per input "
        f"pixel; best of {args.repeat}.\n"
        f"dense matmul peak measured in this run (8192^3): fp32 {peaks['fp32']:.0f} TFLOP/s, "
        f"bf16 {peaks['bf16']:.0f} TFLOP/s\n\n"
        "| run | s/image | first call s | output MP/s | TFLOP/s | vs true fp32 | "
        "max abs diff vs fp32 (0-255) | mean abs diff | mean level | fp32 fallbacks |\n"
        "|---|---|---|---|---|---|---|---|---|---|",
        flush=True,
    )
    ref = ref_secs = None
    for name, precision, cl, tf32, comp in runs:
        torch.backends.cudnn.allow_tf32 = tf32
        up = Upscaler(
            model,
            device="cuda",
            precision=precision,
            tile=args.tile,
            tile_overlap=args.overlap,
            channels_last=cl,
            compile=comp,
        )
        t0 = time.perf_counter()
        up.upscale(img)
        first = time.perf_counter() - t0
        secs = best_time(lambda up=up: up.upscale(img), args.repeat)
        o = up.upscale(img).astype(np.float64)
        model = model.cpu()  # the Upscaler moved it; the next one starts from the CPU copy
        if ref is None:
            ref, ref_secs = o, secs
        print(
            f"| {name} | {secs:.3f} | {first:.1f} | {out_mp / secs:.2f} | "
            f"{fpp * args.size**2 / secs / 1e12:.1f} | {ref_secs / secs:.2f}x | "
            f"{np.abs(o - ref).max():.0f} | {np.abs(o - ref).mean():.3f} | {o.mean():.1f} | "
            f"{up.fallbacks} |",
            flush=True,
        )
        if not (np.isfinite(o).all() and abs(o.mean() - ref.mean()) < 2 and o.std() > 0):
            raise SystemExit(f"{name}: black, flat or non-finite output")
    torch.backends.cudnn.allow_tf32 = True


if __name__ == "__main__":
    main()

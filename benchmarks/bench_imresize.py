"""MATLAB bicubic x1/4 on a DIV2K-sized image: esrgan_lit.ops.imresize vs a plain NumPy port.

The NumPy port is the straightforward transcription of MATLAB's algorithm (the one most SR
toolboxes ship): the same contributions, then a loop over output rows/columns and channels, each
a dot product of the kernel weights with the gathered input lines. Also timed: our general path
(sparse CSR matrices, what non-integer float64 factors use) with the fast paths switched off.
All run in one process on the same random 2040x1356 RGB image, round-robin (so a load spike on
this shared machine hits every row alike); the table gives medians of wall time and of this
process' CPU time (``time.process_time``: insensitive to other processes taking the cores, but
it sums the threads) and the ratios to the NumPy port. Target: >= 20x faster on CPU (float32).

Run: ``python benchmarks/bench_imresize.py [--repeats N]``.
"""

from __future__ import annotations

import argparse
import importlib
import math
import statistics
import time
from collections.abc import Callable
from unittest import mock

import numpy as np
import torch

from esrgan_lit.ops.imresize import _contributions, imresize

H, W, SCALE = 1356, 2040, 0.25
_module = importlib.import_module("esrgan_lit.ops.imresize")


def numpy_port(img: np.ndarray, scale: float) -> np.ndarray:
    """MATLAB imresize bicubic, transcribed to NumPy loops (HWC float64)."""
    h, w, c = img.shape
    out_h, out_w = math.ceil(h * scale), math.ceil(w * scale)
    wh, ih = _contributions(h, out_h, scale, True)
    ww, iw = _contributions(w, out_w, scale, True)
    rows = np.zeros((out_h, w, c))
    for i in range(out_h):
        lines = img[ih[i]]
        for ch in range(c):
            rows[i, :, ch] = lines[:, :, ch].T.dot(wh[i])
    out = np.zeros((out_h, out_w, c))
    for j in range(out_w):
        cols = rows[:, iw[j]]
        for ch in range(c):
            out[:, j, ch] = cols[:, :, ch].dot(ww[j])
    return out


def general_path(x: torch.Tensor, scale: float) -> torch.Tensor:
    """imresize with the fast paths off (integer factors, embedding-bag rows): sparse CSR."""
    with (
        mock.patch.object(_module, "_periodic", lambda *args: None),
        mock.patch.object(_module, "_resize_rows_bags", _module._resize_rows_cpu),
    ):
        return imresize(x, scale)


def float32_stages(x: torch.Tensor) -> dict[str, Callable[[], object]]:
    """The float32 path's two passes, and one plain read of the image (the memory floor)."""
    out_h, out_w = math.ceil(H * SCALE), math.ceil(W * SCALE)
    mid = _module._resize_rows_bags(x, out_h, SCALE, True)
    plan = _module._conv_plan(W, out_w, SCALE, True, x.dtype)
    return {
        "rows pass (embedding bag)": lambda: _module._resize_rows_bags(x, out_h, SCALE, True),
        "cols pass (stacked convolution)": lambda: _module._resize_cols_conv(mid, plan, out_w),
        "read the image once (x.sum())": x.sum,
    }


def round_robin(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, tuple]:
    """Median (wall s, CPU s) per function, and its last result."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in fns}
    results: dict[str, object] = {name: fn() for name, fn in fns.items()}  # warm-up, caches
    for _ in range(repeats):
        for name, fn in fns.items():
            c0, w0 = time.process_time(), time.perf_counter()
            results[name] = fn()
            times[name].append((time.perf_counter() - w0, time.process_time() - c0))
    return {
        name: (
            statistics.median(t[0] for t in ts),
            statistics.median(t[1] for t in ts),
            results[name],
        )
        for name, ts in times.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(H, W, 3)).astype(np.float64)
    x64 = torch.from_numpy(img).permute(2, 0, 1).contiguous()
    x32 = x64.float()
    default_threads = torch.get_num_threads()
    print(f"imresize x{SCALE} on {W}x{H} RGB (CPU), median of {args.repeats} round-robin runs")
    print(f"{'implementation':<40}{'wall ms':>9}{'x':>7}{'CPU ms':>9}{'x':>7}{'max |diff|':>12}")
    for threads in sorted({1, default_threads}):
        torch.set_num_threads(threads)
        res = round_robin(
            {
                "NumPy port (float64, loops)": lambda: numpy_port(img, SCALE),
                "general path (sparse CSR) float32": lambda: general_path(x32, SCALE),
                "esrgan_lit imresize float32": lambda: imresize(x32, SCALE),
                "esrgan_lit imresize float64": lambda: imresize(x64, SCALE),
            },
            args.repeats,
        )
        base_wall, base_cpu, ref = res.pop("NumPy port (float64, loops)")
        print(f"-- {threads} thread(s)")
        print(f"{'NumPy port (float64, loops)':<40}{base_wall * 1e3:>9.1f}{1:>7.1f}", end="")
        print(f"{base_cpu * 1e3:>9.1f}{1:>7.1f}{0:>12.1e}")
        for name, (wall, cpu, y) in res.items():
            err = float(np.abs(y.permute(1, 2, 0).double().numpy() - ref).max())
            print(f"{name:<40}{wall * 1e3:>9.1f}{base_wall / wall:>7.1f}", end="")
            print(f"{cpu * 1e3:>9.1f}{base_cpu / cpu:>7.1f}{err:>12.1e}")
        print("float32 stages (separate round-robin):")
        for name, (wall, cpu, _) in round_robin(float32_stages(x32), args.repeats).items():
            print(f"  {name:<38}{wall * 1e3:>9.1f}{'':>7}{cpu * 1e3:>9.1f}")
    torch.set_num_threads(default_threads)
    if torch.cuda.is_available():
        xc = x32.cuda()
        imresize(xc, SCALE)
        torch.cuda.synchronize()
        ts = []
        for _ in range(10):
            t0 = time.perf_counter()
            imresize(xc, SCALE)
            torch.cuda.synchronize()
            ts.append(time.perf_counter() - t0)
        print(f"{'esrgan_lit imresize float32, CUDA':<40}{statistics.median(ts) * 1e3:>9.2f}")
    print("target: >= 20x vs the NumPy port (float32 row)")


if __name__ == "__main__":
    main()

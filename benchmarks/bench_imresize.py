"""MATLAB bicubic x1/4 on a DIV2K-sized image: esrgan_lit.ops.imresize vs a plain NumPy port.

The NumPy port is the straightforward transcription of MATLAB's algorithm (the one most SR
toolboxes ship): the same contributions, then a loop over output rows/columns and channels, each
a dot product of the kernel weights with the gathered input lines. Both run here, in one process,
on the same random 2040x1356 RGB image; the table gives milliseconds (best of N) and the ratio.
Target: >= 20x faster than the NumPy port on CPU.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from esrgan_lit.ops.imresize import _contributions, imresize

H, W, SCALE, REPEATS = 1356, 2040, 0.25, 5


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


def best_of(fn, repeats: int = REPEATS) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def main() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(H, W, 3)).astype(np.float64)
    x64 = torch.from_numpy(img).permute(2, 0, 1).contiguous()
    x32 = x64.float()
    imresize(x32, SCALE)  # build the cached matrices once, as a data loader would
    imresize(x64, SCALE)
    threads = sorted({1, torch.get_num_threads()})
    rows: list[tuple[str, float, float]] = []
    t_np, ref = best_of(lambda: numpy_port(img, SCALE), 3)
    for n in threads:
        # on a shared machine OpenMP threads can wait on each other: show 1 thread and all
        torch.set_num_threads(n)
        for name, x in (("float64", x64), ("float32", x32)):
            t, y = best_of(lambda x=x: imresize(x, SCALE))
            err = float(np.abs(y.permute(1, 2, 0).double().numpy() - ref).max())
            rows.append((f"esrgan_lit imresize {name}, {n} thr", t, err))
    t_np = min(t_np, best_of(lambda: numpy_port(img, SCALE), 3)[0])
    print(f"imresize x{SCALE} on {W}x{H} RGB (CPU)")
    print(f"{'implementation':<38}{'ms':>10}{'speed-up':>10}{'max |diff|':>14}")
    print(f"{'NumPy port (float64, loops)':<38}{t_np * 1e3:>10.1f}{1.0:>10.1f}{0.0:>14.2e}")
    for name, t, err in rows:
        print(f"{name:<38}{t * 1e3:>10.1f}{t_np / t:>10.1f}{err:>14.2e}")
    if torch.cuda.is_available():
        xc = x32.cuda()
        imresize(xc, SCALE)
        torch.cuda.synchronize()

        def on_gpu() -> torch.Tensor:
            y = imresize(xc, SCALE)
            torch.cuda.synchronize()
            return y

        tg, _ = best_of(on_gpu, 10)
        print(f"{'esrgan_lit imresize float32, CUDA':<38}{tg * 1e3:>10.2f}{t_np / tg:>10.1f}")
    print("target: >= 20x vs the NumPy port (float32 rows)")


if __name__ == "__main__":
    main()

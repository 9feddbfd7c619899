"""NIQE seconds per 512x512 RGB image: esrgan_lit (vectorised torch) vs a plain NumPy/SciPy port.

The NumPy/SciPy port is the straightforward transcription of MATLAB's ``niqe``: uint8 Y,
``scipy.ndimage.correlate`` (replicate borders) for the MSCN map, a Python loop over 96x96 / 48x48
blocks, ``np.roll`` for the four neighbour products, the AGGD fit by a full-grid ``argmin``,
MATLAB bicubic x0.5 as two dense NumPy matrix products (weights from ``imresize``'s own
contribution table), ``nanmean`` / ``nancov`` / ``pinv``. Both run in one process on the same
random smooth images; the table gives seconds per image (best of N) and the ratio.
Target: ours at most half the NumPy/SciPy time (ratio >= 2x), and batched on CUDA when present.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from scipy import ndimage
from scipy.special import gamma

from esrgan_lit.metrics.niqe import load_pristine_params, niqe
from esrgan_lit.ops.imresize import _contributions

SIZE, BATCH, REPEATS = 512, 4, 3


def _resize_half(img: np.ndarray) -> np.ndarray:
    def matrix(n: int) -> np.ndarray:
        w, idx = _contributions(n, math.ceil(n * 0.5), 0.5, True)
        m = np.zeros((w.shape[0], n))
        for i in range(w.shape[0]):
            np.add.at(m[i], idx[i], w[i])
        return m

    return matrix(img.shape[0]) @ img @ matrix(img.shape[1]).T


def _aggd(x: np.ndarray) -> tuple[float, float, float]:
    gam = np.arange(0.2, 10.0005, 0.001)
    r_gam = gamma(2 / gam) ** 2 / (gamma(1 / gam) * gamma(3 / gam))
    left = np.sqrt(np.mean(x[x < 0] ** 2))
    right = np.sqrt(np.mean(x[x > 0] ** 2))
    g = left / right
    rhat = np.mean(np.abs(x)) ** 2 / np.mean(x**2)
    rn = rhat * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2
    alpha = gam[np.argmin((r_gam - rn) ** 2)]
    k = np.sqrt(gamma(1 / alpha) / gamma(3 / alpha))
    return alpha, left * k, right * k


def _features(block: np.ndarray) -> list[float]:
    a, bl, br = _aggd(block.ravel())
    feat = [a, (bl + br) / 2]
    for shift in ((0, 1), (1, 0), (1, 1), (-1, 1)):
        a, bl, br = _aggd((block * np.roll(block, shift, axis=(0, 1))).ravel())
        feat += [a, (br - bl) * gamma(2 / a) / gamma(1 / a), bl, br]
    return feat


def numpy_niqe(rgb: np.ndarray, mu_p: np.ndarray, cov_p: np.ndarray, window: np.ndarray) -> float:
    """MATLAB ``niqe`` of an HWC float [0, 1] RGB image, the plain way."""
    q = np.floor(np.clip(rgb * 255, 0, 255) + 0.5)
    t = [(1 / 255) * c for c in (65.481, 128.553, 24.966)]  # MATLAB: (1/255) * origT
    img = np.floor(q[..., 0] * t[0] + q[..., 1] * t[1] + q[..., 2] * t[2] + 16 + 0.5)
    nh, nw = img.shape[0] // 96, img.shape[1] // 96
    img = img[: nh * 96, : nw * 96]
    feats = []
    for scale in (1, 2):
        mu = ndimage.correlate(img, window, mode="nearest")
        sigma = np.sqrt(np.abs(ndimage.correlate(img * img, window, mode="nearest") - mu * mu))
        dev = img - mu
        dev[np.abs(dev) <= 1e-8] = 0.0
        mscn = dev / (sigma + 1)
        bs = 96 // scale
        feats.append(
            [
                _features(mscn[i * bs : (i + 1) * bs, j * bs : (j + 1) * bs])
                for i in range(nh)
                for j in range(nw)
            ]
        )
        if scale == 1:
            img = _resize_half(img)
    dist = np.concatenate([np.array(f) for f in feats], axis=1)
    mu_d = np.nanmean(dist, axis=0)
    cov_d = np.cov(dist[~np.isnan(dist).any(axis=1)], rowvar=False)
    d = mu_p.ravel() - mu_d
    return float(np.sqrt(d @ np.linalg.pinv((cov_p + cov_d) / 2) @ d))


def best_of(fn, repeats: int = REPEATS) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(BATCH, 3, SIZE // 8, SIZE // 8, generator=g)
    x = torch.nn.functional.interpolate(x, size=(SIZE, SIZE), mode="bicubic", align_corners=False)
    x = (x + 0.03 * torch.rand(BATCH, 3, SIZE, SIZE, generator=g)).clamp(0, 1).double()
    params = load_pristine_params()
    mu_p, cov_p, win = (
        params[k].numpy() for k in ("mu_pris_param", "cov_pris_param", "gaussian_window")
    )
    imgs = [x[i].permute(1, 2, 0).numpy() for i in range(BATCH)]

    niqe(x[:1], params=params)  # warm-up: grids and resize tables are built once per size
    rows = []
    t_np, ref = best_of(lambda: [numpy_niqe(im, mu_p, cov_p, win) for im in imgs], 2)
    rows.append(("NumPy/SciPy port", "cpu", 1, t_np / BATCH, ref))
    threads = torch.get_num_threads()
    t1, v1 = best_of(lambda: [niqe(x[i : i + 1], params=params).item() for i in range(BATCH)])
    rows.append(("esrgan_lit, one image at a time (default)", "cpu", 1, t1 / BATCH, v1))
    tb, vb = best_of(lambda: niqe(x, params=params).tolist())
    rows.append(("esrgan_lit, batch (default: 1 thread)", "cpu", BATCH, tb / BATCH, vb))
    tt, vt = best_of(lambda: niqe(x, params=params, cpu_threads=None).tolist())
    rows.append((f"esrgan_lit, batch (torch's {threads} threads)", "cpu", BATCH, tt / BATCH, vt))
    if torch.cuda.is_available():
        xc = x.cuda()
        niqe(xc, params=params)
        torch.cuda.synchronize()

        def on_gpu() -> list[float]:
            out = niqe(xc, params=params)
            torch.cuda.synchronize()
            return out.tolist()

        tc, vc = best_of(on_gpu)
        rows.append(("esrgan_lit, batch", "cuda", BATCH, tc / BATCH, vc))

    print(f"NIQE, {SIZE}x{SIZE} RGB, {BATCH} images, best of {REPEATS} (NumPy: best of 2)")
    print(f"| {'implementation':<44} | device | batch | s / image | vs NumPy | max |dNIQE| |")
    print(f"|{'-' * 46}|--------|-------|-----------|----------|-------------|")
    for name, dev, batch, sec, vals in rows:
        diff = max(abs(a - b) for a, b in zip(vals, ref))
        print(
            f"| {name:<44} | {dev:<6} | {batch:>5} | {sec:>9.4f} | {t_np / BATCH / sec:>7.1f}x | {diff:>11.2e} |"
        )
    print("target: esrgan_lit <= 0.5x the NumPy/SciPy time per image (ratio >= 2x)")


if __name__ == "__main__":
    main()

"""``RealESRGANDegradation``: Real-ESRGAN's second-order degradation model as one nn.Module.

Order of operations (facts from Real-ESRGAN ``realesrgan/models/realesrgan_model.py``):

1. blur with a random kernel (per sample) -> random resize (up/down/keep, area/bilinear/bicubic;
   one factor per batch) -> Gaussian or Poisson noise (one choice per batch, strength per sample,
   colour or grey per sample) -> JPEG (quality per sample);
2. with ``second_blur_prob`` a second blur -> resize to ``resize_range2`` x the LR size ->
   noise -> then, in random order, [resize to LR + final sinc] and JPEG;
3. round to 8 bits.

The per-batch draws (resize factor and mode, noise type, order of the last stage) are why
Real-ESRGAN shuffles pairs across batches with a pool (``esrgan_lit.degradations.PairPool``).
Every option name and default is the one of ``options/train_realesrnet_x4plus.yml`` (the same in
``train_realesrgan_x4plus.yml``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from . import random as rnd
from .filtering import RESIZE_MODES, filter_batch, resize
from .jpeg import random_jpeg
from .kernels import KERNEL_TYPES, sample_blur_kernels, sample_final_sinc
from .noise import add_gaussian_noise, add_poisson_noise

DEFAULTS: dict[str, Any] = {
    # first degradation
    "blur_kernel_size": 21,
    "kernel_list": list(KERNEL_TYPES),
    "kernel_prob": [0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
    "sinc_prob": 0.1,
    "blur_sigma": [0.2, 3.0],
    "betag_range": [0.5, 4.0],
    "betap_range": [1.0, 2.0],
    "resize_prob": [0.2, 0.7, 0.1],  # up, down, keep
    "resize_range": [0.15, 1.5],
    "gaussian_noise_prob": 0.5,
    "noise_range": [1.0, 30.0],
    "poisson_scale_range": [0.05, 3.0],
    "gray_noise_prob": 0.4,
    "jpeg_range": [30.0, 95.0],
    # second degradation
    "second_blur_prob": 0.8,
    "blur_kernel_size2": 21,
    "kernel_list2": list(KERNEL_TYPES),
    "kernel_prob2": [0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
    "sinc_prob2": 0.1,
    "blur_sigma2": [0.2, 1.5],
    "betag_range2": [0.5, 4.0],
    "betap_range2": [1.0, 2.0],
    "resize_prob2": [0.3, 0.4, 0.3],
    "resize_range2": [0.3, 1.2],
    "gaussian_noise_prob2": 0.5,
    "noise_range2": [1.0, 25.0],
    "poisson_scale_range2": [0.05, 2.5],
    "gray_noise_prob2": 0.4,
    "jpeg_range2": [30.0, 95.0],
    # final stage
    "final_sinc_prob": 0.8,
    "resize_modes": list(RESIZE_MODES),  # drawn uniformly at every resize
}


class RealESRGANDegradation(nn.Module):
    """Synthesise LR images from HR ones on their device: ``forward(gt, generator=None)``.

    ``gt`` is (N,3,H,W) in [0,1] with H, W multiples of ``scale``; the result is
    (N,3,H/scale,W/scale) in [0,1], rounded to 8-bit levels. The same ``generator`` state gives
    the same output (draws happen on the generator's device; pass a CUDA generator for CUDA
    batches). Options: the keys of ``DEFAULTS`` (Real-ESRGAN's option names).
    """

    def __init__(self, scale: int = 4, **options: Any) -> None:
        super().__init__()
        unknown = sorted(set(options) - set(DEFAULTS))
        if unknown:
            raise ValueError(f"unknown degradation option(s) {unknown}; known: {sorted(DEFAULTS)}")
        if int(scale) < 1:
            raise ValueError(f"degradation scale must be >= 1, got {scale}")
        self.scale = int(scale)
        self.opt: dict[str, Any] = {**DEFAULTS, **{k: _plain(v) for k, v in options.items()}}
        for key in ("resize_prob", "resize_prob2"):
            if len(self.opt[key]) != 3:
                raise ValueError(f"{key} must be [up, down, keep], got {self.opt[key]}")
        for mode in self.opt["resize_modes"]:
            if mode not in RESIZE_MODES:
                raise ValueError(f"resize_modes: {mode!r} is not one of {RESIZE_MODES}")

    def extra_repr(self) -> str:
        return f"scale={self.scale}"

    # ------------------------------------------------------------------ pieces
    def blur_kernels(self, n: int, order: int, g: torch.Generator | None, device) -> Tensor:
        """The per-sample kernels of the first (order 1) or second (2) blur."""
        sfx = "" if order == 1 else "2"
        o = self.opt
        return sample_blur_kernels(
            n,
            kernel_list=o["kernel_list" + sfx],
            kernel_prob=o["kernel_prob" + sfx],
            sigma_range=o["blur_sigma" + sfx],
            betag_range=o["betag_range" + sfx],
            betap_range=o["betap_range" + sfx],
            sinc_prob=o["sinc_prob" + sfx],
            kernel_size=int(o["blur_kernel_size" + sfx]),
            generator=g,
            device=device,
        )

    def _factor(self, probs: Any, ranges: Any, g: torch.Generator | None) -> float:
        kind = rnd.pick(("up", "down", "keep"), probs, g)
        u = rnd.scalar(g)
        if kind == "up":
            return 1.0 + u * (float(ranges[1]) - 1.0)
        if kind == "down":
            return float(ranges[0]) + u * (1.0 - float(ranges[0]))
        return 1.0

    def _noise(self, x: Tensor, sfx: str, g: torch.Generator | None) -> Tensor:
        o = self.opt
        if rnd.scalar(g) < float(o["gaussian_noise_prob" + sfx]):
            return add_gaussian_noise(x, o["noise_range" + sfx], o["gray_noise_prob" + sfx], g)
        return add_poisson_noise(x, o["poisson_scale_range" + sfx], o["gray_noise_prob" + sfx], g)

    # ------------------------------------------------------------------ forward
    @torch.no_grad()
    def forward(self, gt: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if gt.ndim != 4 or gt.shape[1] != 3:
            raise ValueError(
                f"RealESRGANDegradation expects (N, 3, H, W) RGB, got {tuple(gt.shape)}"
            )
        n, _, h, w = gt.shape
        if h % self.scale or w % self.scale:
            raise ValueError(f"GT size {h}x{w} is not a multiple of scale {self.scale}")
        o, g, dev = self.opt, generator, gt.device
        modes = o["resize_modes"]
        x = gt.float()
        kernel1 = self.blur_kernels(n, 1, g, dev)
        kernel2 = self.blur_kernels(n, 2, g, dev)
        sinc = sample_final_sinc(
            n,
            prob=float(o["final_sinc_prob"]),
            kernel_size=int(o["blur_kernel_size"]),
            generator=g,
            device=dev,
        )
        # first degradation
        x = filter_batch(x, kernel1)
        f = self._factor(o["resize_prob"], o["resize_range"], g)
        x = resize(x, (int(h * f), int(w * f)), rnd.pick(modes, None, g))
        x = self._noise(x, "", g)
        x = random_jpeg(x, o["jpeg_range"], g)
        # second degradation
        if rnd.scalar(g) < float(o["second_blur_prob"]):
            x = filter_batch(x, kernel2)
        f = self._factor(o["resize_prob2"], o["resize_range2"], g)
        lr_h, lr_w = h // self.scale, w // self.scale
        x = resize(x, (int(lr_h * f), int(lr_w * f)), rnd.pick(modes, None, g))
        x = self._noise(x, "2", g)
        # final: [resize to LR + sinc] and JPEG, in random order
        if rnd.scalar(g) < 0.5:
            x = filter_batch(resize(x, (lr_h, lr_w), rnd.pick(modes, None, g)), sinc)
            x = random_jpeg(x, o["jpeg_range2"], g)
        else:
            x = random_jpeg(x, o["jpeg_range2"], g)
            x = filter_batch(resize(x, (lr_h, lr_w), rnd.pick(modes, None, g)), sinc)
        return ((x * 255.0).round().clamp(0, 255) / 255.0).to(gt.dtype)


def _plain(value: Any) -> Any:
    """Tuples/other sequences -> lists, mappings -> dicts (configs arrive as OmegaConf nodes)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or (
        hasattr(value, "__iter__") and not isinstance(value, (str, bytes, Tensor))
    ):
        return [_plain(v) for v in value]
    return value

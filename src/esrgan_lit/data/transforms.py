"""Pure array transforms of the SR pipeline: mod-crop, MATLAB-bicubic LR, aligned crops, D4 augments.

All work on HWC NumPy arrays (the decoded-image convention of ``io.py``) and take their randomness
from an explicit ``random.Random``, so a sample is a pure function of its seed.
"""

from __future__ import annotations

import random

import numpy as np
import torch

from esrgan_lit.ops.imresize import imresize

# LR pixels of context needed around a window so that the bicubic x1/s of the window equals the
# bicubic of the whole image there: the antialiased kernel reaches 2 LR pixels, +1 for rounding.
LR_MARGIN = 3


def mod_crop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right so height and width are multiples of ``scale`` (the usual protocol)."""
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def matlab_round(x: torch.Tensor, dtype: np.dtype) -> np.ndarray:
    """Float HWC/CHW tensor in integer units -> integer array, rounding half away from zero like
    MATLAB's double-to-uint conversion, saturating at the type's range."""
    top = float(np.iinfo(dtype).max)
    return torch.floor(x + 0.5).clamp_(0, top).numpy().astype(dtype)


def bicubic_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB ``imresize(hr, 1/scale, 'bicubic')`` of an integer HWC image, as the same integer type.

    Computed in float64 so the result is bit-identical to MATLAB's rounded output.
    """
    x = torch.from_numpy(np.require(hr.transpose(2, 0, 1), requirements=["C", "W"])).double()
    y = imresize(x, 1.0 / scale)
    return matlab_round(y.permute(1, 2, 0), hr.dtype)


def bicubic_lr_window(
    hr: np.ndarray, scale: int, top: int, left: int, size_h: int, size_w: int
) -> np.ndarray:
    """``bicubic_lr(hr, scale)[top:top+size_h, left:left+size_w]`` without resizing the whole image.

    Only the HR window under the patch plus ``LR_MARGIN`` LR pixels of context is resized; where the
    window touches the image border the mirror padding is the image's own, so the result is
    identical to cropping the full-image LR (``hr`` must already be mod-cropped).
    """
    h_lr, w_lr = hr.shape[0] // scale, hr.shape[1] // scale
    t0, l0 = max(0, top - LR_MARGIN), max(0, left - LR_MARGIN)
    t1, l1 = min(h_lr, top + size_h + LR_MARGIN), min(w_lr, left + size_w + LR_MARGIN)
    window = hr[t0 * scale : t1 * scale, l0 * scale : l1 * scale]
    lr = bicubic_lr(window, scale)
    return lr[top - t0 : top - t0 + size_h, left - l0 : left - l0 + size_w]


def random_crop_origin(rng: random.Random, h_lr: int, w_lr: int, lq_size: int) -> tuple[int, int]:
    """Top-left LR corner of a uniformly random ``lq_size`` patch."""
    return rng.randrange(h_lr - lq_size + 1), rng.randrange(w_lr - lq_size + 1)


def dihedral(img: np.ndarray, k: int) -> np.ndarray:
    """One of the 8 flips/rotations (the dihedral group D4): bit 0 h-flip, bit 1 v-flip,
    bit 2 transpose. Same ``k`` on LR and HR keeps the pair aligned."""
    if k & 1:
        img = img[:, ::-1]
    if k & 2:
        img = img[::-1]
    if k & 4:
        img = img.transpose(1, 0, 2)
    return img


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """Integer HWC image -> float32 CHW tensor in [0, 1] (16-bit divided by 65535)."""
    white = 65535.0 if img.dtype == np.uint16 else 255.0
    chw = np.require(img.transpose(2, 0, 1), requirements=["C", "W"])  # decoders give read-only
    return torch.from_numpy(chw).to(torch.float32).div_(white)

"""Image reading for the data pipeline: :mod:`esrgan_lit.imageio` with alpha dropped.

``read_image`` returns HWC uint8/uint16 with 1 (grey) or 3 (RGB) channels (training and metrics
use the colour only); ``to_rgb`` and ``to_float`` then give the training convention: 3 channels,
float32 in [0, 1], divided by 255 or 65535, never clipped to 8 bits. ``probe_image`` is the
listing-time check (see :func:`esrgan_lit.imageio.probe_bytes`).
"""

from __future__ import annotations

import os

import numpy as np

from esrgan_lit.imageio import (
    IMAGE_SUFFIXES,
    PNG_SIGNATURE,
    ImageInfo,
    ImageReadError,
    decode_bytes,
    drop_alpha,
    is_image_file,
    probe_bytes,
    probe_image,
)
from esrgan_lit.imageio import read_image as _read_image

__all__ = [
    "IMAGE_SUFFIXES",
    "PNG_SIGNATURE",
    "ImageInfo",
    "ImageReadError",
    "decode_image_bytes",
    "is_image_file",
    "max_value",
    "probe_bytes",
    "probe_image",
    "read_image",
    "to_float",
    "to_rgb",
]


def decode_image_bytes(data: bytes, *, name: str = "<bytes>") -> np.ndarray:
    """Decode an encoded image to HWC uint8/uint16 with 1 or 3 channels (alpha dropped)."""
    return drop_alpha(decode_bytes(data, name=name))


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode an image file to HWC uint8/uint16, 1 (grey) or 3 (RGB) channels, alpha dropped.

    Errors name the file: ``FileNotFoundError`` when absent, ``ImageReadError`` (a ValueError)
    when it is not an image, truncated, corrupt, over the pixel limit or animated.
    """
    return drop_alpha(_read_image(path))


def to_rgb(arr: np.ndarray) -> np.ndarray:
    """Grey (H, W, 1) -> RGB by repetition; RGB unchanged."""
    return np.repeat(arr, 3, axis=2) if arr.shape[2] == 1 else arr


def max_value(arr: np.ndarray) -> float:
    """White level of an integer image: 255 for 8-bit, 65535 for 16-bit."""
    return 65535.0 if arr.dtype == np.uint16 else 255.0


def to_float(arr: np.ndarray) -> np.ndarray:
    """Integer HWC image -> float32 HWC in [0, 1] (16-bit divided by 65535)."""
    return arr.astype(np.float32) / np.float32(max_value(arr))

"""16-bit PNG helpers, kept importable from here; the code lives in :mod:`esrgan_lit.imageio`."""

from __future__ import annotations

import os

import numpy as np

from esrgan_lit.imageio import encode_png, read_image
from esrgan_lit.imageio.png import png_header as _png_header_bytes

__all__ = ["png_header", "read_png16", "write_png16"]


def png_header(path: str | os.PathLike[str]) -> tuple[int, int, int, int, int] | None:
    """(width, height, bit depth, colour type, interlace) of a PNG file, or None if not a PNG."""
    with open(path, "rb") as f:
        return _png_header_bytes(f.read(29))


def read_png16(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode a 16-bit PNG to uint16 (H, W, C) through the shared, checked reader."""
    a = read_image(path)
    if a.dtype != np.uint16:
        raise ValueError(f"{path}: expected a 16-bit PNG, got {a.dtype}")
    return a


def write_png16(path: str | os.PathLike[str], image: np.ndarray, level: int = 6) -> None:
    """Encode uint16 (H, W) or (H, W, C), C in 1..4, as a 16-bit PNG (not atomic: a helper)."""
    if image.dtype != np.uint16:
        raise TypeError(f"write_png16 expects uint16, got {image.dtype}")
    with open(path, "wb") as f:
        f.write(encode_png(image, level))

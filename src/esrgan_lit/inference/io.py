"""Image files in and out for inference: :mod:`esrgan_lit.imageio`, alpha kept.

Kept so ``esrgan_lit.inference.io`` imports keep working; the reader and writer live in
:mod:`esrgan_lit.imageio`, shared with the data pipeline and evaluation.
"""

from __future__ import annotations

from esrgan_lit.imageio import (
    NO_ALPHA_EXTS,
    READ_EXTS,
    WRITE_FORMATS,
    array_to_pil,
    pil_to_array,
    read_image,
    to_uint8,
    write_image,
)
from esrgan_lit.imageio import orient as _orient

__all__ = [
    "NO_ALPHA_EXTS",
    "READ_EXTS",
    "WRITE_FORMATS",
    "_orient",
    "array_to_pil",
    "pil_to_array",
    "read_image",
    "to_uint8",
    "write_image",
]

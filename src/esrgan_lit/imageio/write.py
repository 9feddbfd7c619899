"""Writing images atomically in the format the suffix names, keeping 16 bits where it can."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from esrgan_lit.imageio.png import encode_png
from esrgan_lit.utils.atomic import atomic_write_path

READ_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")
WRITE_FORMATS = {"png": ".png", "jpg": ".jpg", "jpeg": ".jpg", "webp": ".webp", "tif": ".tif",
                 "tiff": ".tif", "bmp": ".bmp"}  # fmt: skip
NO_ALPHA_EXTS = (".jpg", ".jpeg", ".bmp")  # Pillow drops or refuses alpha in these


def array_to_pil(a: np.ndarray, like_mode: str | None = None) -> Image.Image:
    """(H, W, C) uint8/uint16 -> PIL image (16-bit only for grey: Pillow's limit)."""
    if a.dtype == np.uint16:
        if a.shape[2] != 1:
            raise ValueError("Pillow cannot hold 16-bit colour images; use a NumPy array")
        im = Image.fromarray(np.ascontiguousarray(a[:, :, 0]))
        return im.convert(like_mode) if like_mode in ("I",) else im
    return Image.fromarray(np.ascontiguousarray(a[:, :, 0] if a.shape[2] == 1 else a))


def to_uint8(a: np.ndarray) -> np.ndarray:
    """uint16 -> uint8 by rounding (x / 257), the inverse of the x * 257 expansion."""
    return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def write_image(path: str | Path, a: np.ndarray, *, quality: int = 95) -> None:
    """Write (H, W, C) atomically; the format follows the suffix.

    16 bits are kept for PNG and TIFF; JPEG/WebP/BMP get 8 bits (with a warning). JPEG and BMP
    cannot hold alpha: that is an error here (callers pick PNG for transparent images).
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in READ_EXTS:
        raise ValueError(f"{path}: unknown output format {ext!r} (use png, jpg, webp, tif or bmp)")
    if a.dtype == np.uint16 and ext not in (".png", ".tif", ".tiff"):
        warnings.warn(f"{path}: {ext} holds 8 bits; 16-bit output reduced", stacklevel=2)
        a = to_uint8(a)
    if ext in NO_ALPHA_EXTS and a.shape[2] in (2, 4):
        raise ValueError(
            f"{path}: {ext} cannot store an alpha channel; write PNG/WebP/TIFF instead"
        )
    with atomic_write_path(path) as tmp:
        if a.dtype == np.uint16 and ext == ".png" and a.shape[2] > 1:
            tmp.write_bytes(encode_png(a))
        elif a.dtype == np.uint16 and ext in (".tif", ".tiff") and a.shape[2] > 1:
            import tifffile  # only for 16-bit colour TIFF, which Pillow cannot write

            tifffile.imwrite(tmp, a, photometric="rgb" if a.shape[2] >= 3 else "minisblack")
        else:
            im = array_to_pil(a)
            kwargs = {"quality": quality} if ext in (".jpg", ".jpeg", ".webp") else {}
            if ext in (".tif", ".tiff"):
                kwargs = {"compression": "tiff_deflate"}
            im.save(tmp, format=Image.registered_extensions()[ext], **kwargs)

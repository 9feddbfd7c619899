"""Image files in and out for inference: every common format, alpha, grey, 16 bits, EXIF.

Images travel as NumPy arrays (H, W, C), C in {1: grey, 2: grey+alpha, 3: RGB, 4: RGBA}, dtype
uint8 or uint16, so 16-bit sources are never squeezed through 8 bits. Pillow does the work where it
can; 16-bit colour PNGs (which Pillow truncates) go through :mod:`.png16`, 16-bit colour TIFFs
through ``tifffile`` (installed with scikit-image).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from esrgan_lit.inference.png16 import png_header, read_png16, write_png16
from esrgan_lit.utils.atomic import atomic_write_path

READ_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")
WRITE_FORMATS = {"png": ".png", "jpg": ".jpg", "jpeg": ".jpg", "webp": ".webp", "tif": ".tif",
                 "tiff": ".tif", "bmp": ".bmp"}  # fmt: skip
NO_ALPHA_EXTS = (".jpg", ".jpeg", ".bmp")  # Pillow drops or refuses alpha in these
_ORIENTATION = 0x0112


def read_image(path: str | Path) -> np.ndarray:
    """Decode ``path`` to uint8/uint16 (H, W, C), EXIF orientation applied, palette expanded."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    header = png_header(path)
    if header is not None and header[2] == 16 and header[3] in (2, 4, 6):
        return _orient(read_png16(path), _exif_orientation(path))
    try:
        with Image.open(path) as im:
            if im.format == "TIFF" and _tiff_is_wide(im):
                return _orient(_read_tiff(path), _exif_orientation(path))
            im = ImageOps.exif_transpose(im)
            return pil_to_array(im)
    except UnidentifiedImageError as e:
        raise ValueError(f"{path}: not an image file Pillow can read") from e
    except OSError as e:  # truncated / corrupt data surfaces on load
        raise ValueError(f"{path}: cannot decode image ({e})") from e


def pil_to_array(im: Image.Image) -> np.ndarray:
    """PIL image -> (H, W, C) uint8/uint16; palette and exotic modes become L/LA/RGB/RGBA."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(im, dtype=np.uint16)[:, :, None]
    if mode == "I":  # 32-bit int container, used for 16-bit grey by some decoders
        return np.clip(np.asarray(im), 0, 65535).astype(np.uint16)[:, :, None]
    if mode == "F":
        raise ValueError("32-bit float images are not supported; convert to 8 or 16 bits first")
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode == "PA":
        im = im.convert("RGBA")
    elif mode == "1":
        im = im.convert("L")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        im = im.convert("RGBA" if "A" in mode else "RGB")
    a = np.asarray(im)
    return a[:, :, None] if a.ndim == 2 else a


def array_to_pil(a: np.ndarray, like_mode: str | None = None) -> Image.Image:
    """(H, W, C) uint8/uint16 -> PIL image (16-bit only for grey: Pillow's limit)."""
    if a.dtype == np.uint16:
        if a.shape[2] != 1:
            raise ValueError("Pillow cannot hold 16-bit colour images; use a NumPy array")
        im = Image.fromarray(np.ascontiguousarray(a[:, :, 0]))
        return im.convert(like_mode) if like_mode in ("I",) else im
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[a.shape[2]]
    return Image.fromarray(np.ascontiguousarray(a[:, :, 0] if mode == "L" else a), mode)


def write_image(path: str | Path, a: np.ndarray, *, quality: int = 95) -> None:
    """Write (H, W, C) atomically; the format follows the suffix.

    16 bits are kept for PNG and TIFF; JPEG/WebP/BMP get 8 bits (with a warning). JPEG and BMP cannot
    hold alpha: that is an error here (callers pick PNG for transparent images).
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
            write_png16(tmp, a)
        elif a.dtype == np.uint16 and ext in (".tif", ".tiff") and a.shape[2] > 1:
            import tifffile

            tifffile.imwrite(tmp, a, photometric="rgb" if a.shape[2] >= 3 else "minisblack")
        else:
            im = array_to_pil(a)
            kwargs = {"quality": quality} if ext in (".jpg", ".jpeg", ".webp") else {}
            if ext in (".tif", ".tiff"):
                kwargs = {"compression": "tiff_deflate"}
            im.save(tmp, format=Image.registered_extensions()[ext], **kwargs)


def to_uint8(a: np.ndarray) -> np.ndarray:
    """uint16 -> uint8 by rounding (x / 257), the inverse of the x * 257 expansion."""
    return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _exif_orientation(path: Path) -> int:
    try:
        with Image.open(path) as im:
            return int(im.getexif().get(_ORIENTATION, 1))
    except Exception:  # 16-bit files Pillow cannot open still decode; orientation is optional
        return 1


def _orient(a: np.ndarray, orientation: int) -> np.ndarray:
    """Apply EXIF orientation (1..8) to an (H, W, C) array, as ImageOps.exif_transpose does."""
    ops = {
        2: lambda x: x[:, ::-1],
        3: lambda x: x[::-1, ::-1],
        4: lambda x: x[::-1],
        5: lambda x: x.transpose(1, 0, 2),
        6: lambda x: np.rot90(x, -1),
        7: lambda x: np.rot90(x, 2).transpose(1, 0, 2),
        8: lambda x: np.rot90(x, 1),
    }
    op = ops.get(orientation)
    return np.ascontiguousarray(op(a)) if op else a


def _tiff_is_wide(im: Image.Image) -> bool:
    """A TIFF with more than 8 bits per sample and several samples (Pillow would truncate it)."""
    bits = im.tag_v2.get(258, (8,))
    bits = bits if isinstance(bits, tuple) else (bits,)
    return max(bits) > 8 and len(bits) > 1


def _read_tiff(path: Path) -> np.ndarray:
    try:
        import tifffile
    except ImportError as e:
        raise ValueError(f"{path}: 16-bit colour TIFF needs the tifffile package") from e
    a = tifffile.imread(path)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.dtype != np.uint16:
        raise ValueError(f"{path}: unsupported TIFF sample type {a.dtype} (expected 16-bit)")
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"{path}: unsupported TIFF layout {a.shape}")
    return a

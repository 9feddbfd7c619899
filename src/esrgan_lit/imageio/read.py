"""The one image reader: every format Pillow knows, 8/16-bit, grey, alpha, EXIF orientation.

Arrays are HWC NumPy, uint8 or uint16, C in {1: grey, 2: grey+alpha, 3: RGB, 4: RGBA}; palette
images are expanded and the EXIF orientation is applied, so 16-bit sources never pass through
8 bits. Only decoders that raise are used (Pillow; ``tifffile`` for 16-bit colour TIFF; see
``png.py`` for 16-bit colour PNG), never torchvision's, which crashes the process on a corrupt
PNG and is deprecated. Before any pixel is decoded the declared size is checked against one
pixel limit (:func:`max_pixels`), and multi-frame files (animated GIF/WebP/PNG, multi-page
TIFF) are refused instead of being cut to their first frame.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from esrgan_lit.imageio.png import PNG_SIGNATURE, PngError, decode_png16, png_header, scan_png

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm"}
)
MAX_PIXELS_ENV = "ESRGAN_LIT_MAX_PIXELS"
# Pillow's DecompressionBombWarning threshold (PIL.Image.MAX_IMAGE_PIXELS, 2**30 / 12 pixels,
# about 9459x9459): above it Pillow only warns, we refuse by default.
DEFAULT_MAX_PIXELS = 1024 * 1024 * 1024 // 4 // 3
_ORIENTATION_TAG = 0x0112
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*")


class ImageReadError(ValueError):
    """An image file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class ImageInfo:
    """What a dataset needs to know about an image before decoding it (size after EXIF)."""

    height: int
    width: int
    channels: int  # 1 or 3 (alpha not counted)
    bit_depth: int  # 8 or 16


def is_image_file(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def max_pixels() -> int | None:
    """The pixel limit every reader applies (None: no limit).

    ``ESRGAN_LIT_MAX_PIXELS`` sets it (a count; ``0`` or ``none`` for no limit); the default is
    Pillow's decompression-bomb warning threshold, 89,478,485 pixels. An environment variable
    reaches DataLoader workers and every CLI alike; :func:`set_max_pixels` sets it from Python.
    """
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_PIXELS
    if raw.lower() in ("0", "none", "off", "unlimited"):
        return None
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        value = -1
    if value < 0:
        raise ValueError(
            f"{MAX_PIXELS_ENV}={raw!r}: expected a pixel count, or 0/none for no limit"
        )
    return value or None


def set_max_pixels(limit: int | None) -> None:
    """Set the pixel limit for this process and the processes it starts (None: no limit)."""
    os.environ[MAX_PIXELS_ENV] = "none" if limit is None else str(int(limit))


def _check_size(name: str, width: int, height: int) -> None:
    limit = max_pixels()
    if limit is not None and width * height > limit:
        raise ImageReadError(
            f"{name}: image is {width}x{height} = {width * height:,} pixels, over the limit of "
            f"{limit:,} (a guard against decompression bombs). If the file is trusted, allow it "
            f"with {MAX_PIXELS_ENV}={width * height} (or {MAX_PIXELS_ENV}=none for no limit)"
        )


def _read_bytes(path: str | os.PathLike[str]) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{path}: image file does not exist") from err
    except IsADirectoryError as err:
        raise ImageReadError(f"{path}: is a directory, not an image file") from err


def _open(data: bytes, name: str) -> Image.Image:
    """Pillow's lazy open (header only) under our pixel limit instead of Pillow's own."""
    limit = max_pixels()
    if Image.MAX_IMAGE_PIXELS is not None and (limit is None or limit > Image.MAX_IMAGE_PIXELS):
        Image.MAX_IMAGE_PIXELS = limit  # the user raised our limit: Pillow's must not undercut it
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as err:
        raise ImageReadError(
            f"{name}: over the pixel limit ({err}); if the file is trusted, raise "
            f"{MAX_PIXELS_ENV} (or set it to none)"
        ) from None
    except UnidentifiedImageError as err:
        raise ImageReadError(f"{name}: not an image file (unrecognised format)") from err
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageReadError(f"{name}: corrupt image: {err}") from err
    _check_size(name, *im.size)
    frames = getattr(im, "n_frames", 1)
    if frames > 1:
        im.close()
        raise _multi_frame(name, frames)
    return im


def _multi_frame(name: str, frames: int) -> ImageReadError:
    return ImageReadError(
        f"{name}: has {frames} frames (an animation or a multi-page file); only single images "
        f"are supported, and using just the first frame would be silently wrong. Extract the "
        f"frames to separate files first"
    )


def _orientation(im: Image.Image) -> int:
    if im.format == "PNG" and "exif" not in im.info:
        return 1  # Pillow would decode the whole PNG looking for an eXIf chunk after the data
    try:
        return int(im.getexif().get(_ORIENTATION_TAG, 1))
    except Exception:  # a damaged EXIF block: the pixels are still fine, keep them upright
        return 1


def _exif_orientation(exif: bytes | None) -> int:
    if not exif:
        return 1
    try:
        block = Image.Exif()
        block.load(exif)
        return int(block.get(_ORIENTATION_TAG, 1))
    except Exception:
        return 1


def _check_png(data: bytes, name: str, *, inflate: bool = True):
    try:
        scan = scan_png(data, check_size=lambda w, h: _check_size(name, w, h), inflate=inflate)
    except PngError as err:
        raise ImageReadError(f"{name}: {err}") from None
    if scan.frames > 1:
        raise _multi_frame(name, scan.frames)
    return scan


def _channels(mode: str) -> tuple[int, int]:
    grey = mode in ("1", "L", "LA", "La", "I", "F") or mode.startswith("I;16")
    depth = 16 if mode.startswith("I;16") or mode == "I" else 8
    return (1 if grey else 3), depth


def probe_bytes(data: bytes, *, name: str = "<bytes>", deep: bool = False) -> ImageInfo:
    """Size and channels of an encoded image, after checking that it can be decoded.

    PNG: chunk CRCs, the pixel limit, and the whole image data inflated (bounded) with every
    row's filter byte checked, which catches truncated, corrupt and crafted files at listing
    time. JPEG: the end-of-image marker. Others: the header. ``deep=True`` decodes everything.
    """
    if not data:
        raise ImageReadError(f"{name}: empty file")
    if deep:
        arr = decode_bytes(data, name=name)
        return ImageInfo(arr.shape[0], arr.shape[1], 1 if arr.shape[2] < 3 else 3,
                         16 if arr.dtype == np.uint16 else 8)  # fmt: skip
    if data.startswith(PNG_SIGNATURE):
        scan = _check_png(data, name)
        w, h = scan.width, scan.height
        if _exif_orientation(scan.exif) in (5, 6, 7, 8):
            w, h = h, w
        grey = scan.colour in (0, 4)
        return ImageInfo(h, w, 1 if grey else 3, 16 if scan.depth == 16 else 8)
    # an EOI marker can only appear as a real marker (0xFF is byte-stuffed in scan data); an
    # embedded EXIF thumbnail has its own, near the start, so look in the second half only
    if data[:2] == b"\xff\xd8" and data.rfind(b"\xff\xd9") < len(data) // 2:
        raise ImageReadError(f"{name}: truncated JPEG (no end-of-image marker)")
    with _open(data, name) as im:
        (w, h), mode, orientation = im.size, im.mode, _orientation(im)
        if im.format == "TIFF" and _tiff_is_wide(im):
            mode = "RGB;16"
    if orientation in (5, 6, 7, 8):
        w, h = h, w
    channels, depth = _channels(mode)
    return ImageInfo(h, w, channels, 16 if mode == "RGB;16" else depth)


def probe_image(path: str | os.PathLike[str], *, deep: bool = False) -> ImageInfo:
    """``probe_bytes`` for a file (the whole file is read: cheap next to decoding it)."""
    return probe_bytes(_read_bytes(path), name=str(path), deep=deep)


def decode_bytes(data: bytes, *, name: str = "<bytes>") -> np.ndarray:
    """Decode an encoded image to HWC uint8/uint16, C in 1..4, EXIF orientation applied."""
    if not data:
        raise ImageReadError(f"{name}: empty file")
    try:
        if data.startswith(PNG_SIGNATURE):
            scan = _check_png(data, name, inflate=False)  # Pillow checks the data as it decodes
            if scan.is_deep_colour:
                return orient(decode_png16(data, scan), _exif_orientation(scan.exif))
        with _open(data, name) as im:
            if im.format == "TIFF" and _tiff_is_wide(im):
                return orient(_read_tiff16(data, name), _orientation(im))
            im.load()
            return orient(pil_to_array(im, name), _orientation(im))
    except ImageReadError:
        raise
    except Image.DecompressionBombError as err:  # a tile or frame larger than the header said
        raise ImageReadError(f"{name}: over the pixel limit ({err})") from err
    except (OSError, SyntaxError, ValueError, EOFError) as err:  # Pillow: truncated / corrupt data
        raise ImageReadError(f"{name}: corrupt or truncated image: {err}") from err


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode an image file (see :func:`decode_bytes`). ``FileNotFoundError`` when absent,
    ``ImageReadError`` (a ValueError naming the file) when it is not a usable image."""
    return decode_bytes(_read_bytes(path), name=str(path))


def pil_to_array(im: Image.Image, name: str = "<image>") -> np.ndarray:
    """PIL image -> (H, W, C) uint8/uint16; palette and exotic modes become L/LA/RGB/RGBA."""
    mode = im.mode
    if mode.startswith("I;16"):
        a = np.asarray(im)
        return a.astype(np.uint16)[:, :, None]  # also turns big-endian I;16B native
    if mode == "I":  # 32-bit int container, used for 16-bit grey by some decoders
        return np.clip(np.asarray(im), 0, 65535).astype(np.uint16)[:, :, None]
    if mode == "F":
        raise ImageReadError(
            f"{name}: 32-bit float images are not supported; convert to 8 or 16 bits first"
        )
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


def orient(a: np.ndarray, orientation: int) -> np.ndarray:
    """Apply EXIF orientation (1..8) to an (H, W, C) array, as ``ImageOps.exif_transpose`` does."""
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


def has_alpha(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` holds transparency, from its header alone (no pixels decoded).

    PNG: the IHDR colour type (4, 6: alpha; 3: palette, which may carry a tRNS chunk, so Pillow
    decides); other formats: Pillow's mode and ``transparency`` info. An unreadable file is
    False here: reading it fails later and reports why.
    """
    with open(path, "rb") as f:
        header = png_header(f.read(29))
    if header is not None:
        if header[3] in (4, 6):
            return True
        if header[3] != 3:
            return False
    try:
        with Image.open(path) as im:
            return "A" in im.mode or "a" in im.mode or "transparency" in im.info
    except Exception:  # unreadable: the read fails later and reports it
        return False


def drop_alpha(a: np.ndarray) -> np.ndarray:
    """(H, W, 2|4) -> (H, W, 1|3); others unchanged."""
    return np.ascontiguousarray(a[:, :, :-1]) if a.shape[2] in (2, 4) else a


def _tiff_is_wide(im: Image.Image) -> bool:
    """A TIFF with more than 8 bits per sample and several samples (Pillow would truncate it)."""
    bits = im.tag_v2.get(258, (8,))
    bits = bits if isinstance(bits, tuple) else (bits,)
    return max(bits) > 8 and len(bits) > 1


def _read_tiff16(data: bytes, name: str) -> np.ndarray:
    try:
        import tifffile
    except ImportError as err:
        raise ImageReadError(f"{name}: 16-bit colour TIFF needs the tifffile package") from err
    try:
        a = tifffile.imread(io.BytesIO(data))
    except Exception as err:  # tifffile raises many types; all mean "cannot decode"
        raise ImageReadError(f"{name}: corrupt TIFF: {err}") from err
    if a.ndim == 3 and a.shape[0] in (3, 4) and a.shape[2] not in (3, 4):
        a = np.moveaxis(a, 0, -1)  # planar (separate) samples
    if a.ndim == 2:
        a = a[:, :, None]
    if a.dtype != np.uint16:
        raise ImageReadError(
            f"{name}: unsupported TIFF sample type {a.dtype} (8 or 16 bit expected)"
        )
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
        raise ImageReadError(f"{name}: unsupported TIFF layout {a.shape}")
    return np.ascontiguousarray(a)

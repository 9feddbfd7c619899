"""Image decoding for the data pipeline: one array convention, clear errors that name the file.

``read_image`` returns the image as stored, HWC: uint8 or uint16, 1 (grey) or 3 (RGB) channels.
Palette images are expanded, alpha is dropped (training and metrics use the colour only), and
16-bit PNGs keep all 16 bits (Pillow truncates 16-bit colour PNGs to 8, so PNGs are decoded with
torchvision's libpng instead). ``to_rgb`` and ``to_float`` then give the training convention:
3 channels, float32 in [0, 1], divided by 255 or 65535 — never clipped to 8 bits.

``probe_image`` reads only what it needs to check a file at dataset-listing time: the header
(size, channels) and, for PNG and JPEG, the end-of-image marker, so a truncated file is caught
before training starts; ``deep=True`` also verifies every PNG chunk CRC (or decodes other formats).
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm"}
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 1, 6: 3}  # colour type -> channels once alpha is dropped


class ImageReadError(ValueError):
    """An image file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class ImageInfo:
    """What a dataset needs to know about an image before decoding it."""

    height: int
    width: int
    channels: int  # 1 or 3 (alpha not counted)
    bit_depth: int  # 8 or 16


def is_image_file(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def _probe_png(data: bytes, name: str, deep: bool) -> ImageInfo:
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise ImageReadError(f"{name}: corrupt PNG (no IHDR header)")
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    if colour not in _PNG_CHANNELS or depth not in (1, 2, 4, 8, 16) or width == 0 or height == 0:
        raise ImageReadError(f"{name}: corrupt PNG header ({width}x{height}, colour type {colour})")
    if not data.endswith(b"IEND\xae\x42\x60\x82"):
        raise ImageReadError(f"{name}: truncated PNG (no IEND chunk at the end of the file)")
    if deep:
        pos = 8
        while pos < len(data):
            if pos + 12 > len(data):
                raise ImageReadError(f"{name}: truncated PNG chunk at byte {pos}")
            (length,) = struct.unpack(">I", data[pos : pos + 4])
            end = pos + 8 + length
            if end + 4 > len(data):
                raise ImageReadError(f"{name}: truncated PNG chunk at byte {pos}")
            (crc,) = struct.unpack(">I", data[end : end + 4])
            if zlib.crc32(data[pos + 4 : end]) != crc:
                kind = data[pos + 4 : pos + 8].decode("latin-1")
                raise ImageReadError(f"{name}: corrupt PNG ({kind} chunk CRC mismatch)")
            pos = end + 4
    return ImageInfo(height, width, _PNG_CHANNELS[colour], 16 if depth == 16 else 8)


def _pil_info(data: bytes, name: str, deep: bool) -> ImageInfo:
    from PIL import Image, UnidentifiedImageError

    # an EOI marker can only appear as a real marker (0xFF is byte-stuffed in scan data); an
    # embedded EXIF thumbnail has its own, near the start, so look in the second half only
    if data[:2] == b"\xff\xd8" and data.rfind(b"\xff\xd9") < len(data) // 2:
        raise ImageReadError(f"{name}: truncated JPEG (no end-of-image marker)")
    try:
        with Image.open(io.BytesIO(data)) as im:
            mode, (width, height) = im.mode, im.size
            if deep:
                im.load()
    except UnidentifiedImageError as err:
        raise ImageReadError(f"{name}: not an image file (unrecognised format)") from err
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageReadError(f"{name}: corrupt image: {err}") from err
    grey = mode in ("1", "L", "LA", "I", "F") or mode.startswith("I;16")
    bit_depth = 16 if mode.startswith("I;16") or mode == "I" else 8
    return ImageInfo(height, width, 1 if grey else 3, bit_depth)


def probe_bytes(data: bytes, *, name: str = "<bytes>", deep: bool = False) -> ImageInfo:
    """Size and channels of an encoded image, checking it is complete (see module docstring)."""
    if not data:
        raise ImageReadError(f"{name}: empty file")
    if data.startswith(PNG_SIGNATURE):
        return _probe_png(data, name, deep)
    return _pil_info(data, name, deep)


def probe_image(path: str | os.PathLike[str], *, deep: bool = False) -> ImageInfo:
    """``probe_bytes`` for a file. The whole file is read (cheap next to decoding it)."""
    return probe_bytes(_read_bytes(path), name=str(path), deep=deep)


def _read_bytes(path: str | os.PathLike[str]) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{path}: image file does not exist") from err
    except IsADirectoryError as err:
        raise ImageReadError(f"{path}: is a directory, not an image file") from err


def _normalise(arr: np.ndarray, name: str) -> np.ndarray:
    """HWC with alpha dropped: (H, W, 1) or (H, W, 3), uint8 or uint16."""
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4):
        raise ImageReadError(f"{name}: unsupported image layout {arr.shape}")
    if arr.shape[2] in (2, 4):
        arr = arr[:, :, :-1]
    if arr.dtype not in (np.uint8, np.uint16):
        raise ImageReadError(f"{name}: unsupported sample type {arr.dtype} (8 or 16 bit expected)")
    return np.ascontiguousarray(arr)


def _decode_png(data: bytes, name: str) -> np.ndarray:
    import torch
    from torchvision.io import ImageReadMode, decode_png

    try:
        t = decode_png(
            torch.frombuffer(bytearray(data), dtype=torch.uint8), ImageReadMode.UNCHANGED
        )
    except RuntimeError as err:
        raise ImageReadError(f"{name}: corrupt PNG: {str(err).strip()[:200]}") from err
    arr = t.permute(1, 2, 0).numpy()
    if arr.dtype != np.uint8:  # torch.uint16 -> numpy uint16
        arr = arr.astype(np.uint16, copy=False)
    return _normalise(arr, name)


def _decode_pil(data: bytes, name: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            mode = im.mode
            if mode == "P":
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
            elif mode == "1":
                im = im.convert("L")
            elif mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBX", "RGBa", "La", "PA"):
                im = im.convert("RGB")
            elif mode == "I":  # 16-bit grey from some decoders (values fit in 16 bits)
                return _normalise(np.asarray(im).clip(0, 65535).astype(np.uint16), name)
            elif mode == "F":
                raise ImageReadError(f"{name}: floating-point images are not supported")
            arr = np.asarray(im)
    except UnidentifiedImageError as err:
        raise ImageReadError(f"{name}: not an image file (unrecognised format)") from err
    except (OSError, SyntaxError, ValueError) as err:
        if isinstance(err, ImageReadError):
            raise
        raise ImageReadError(f"{name}: corrupt or truncated image: {err}") from err
    if arr.dtype.byteorder not in ("=", "|"):  # I;16B
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return _normalise(arr, name)


def _decode_tiff16(data: bytes, name: str) -> np.ndarray | None:
    """16-bit colour TIFFs need tifffile (Pillow cannot hold them); None when not applicable."""
    try:
        import tifffile
    except ImportError:
        return None
    try:
        arr = tifffile.imread(io.BytesIO(data))
    except Exception as err:
        raise ImageReadError(f"{name}: corrupt TIFF: {err}") from err
    if arr.ndim == 3 and arr.shape[0] in (3, 4) and arr.shape[2] not in (3, 4):
        arr = np.moveaxis(arr, 0, -1)
    return _normalise(arr, name)


def decode_image_bytes(data: bytes, *, name: str = "<bytes>") -> np.ndarray:
    """Decode an encoded image to HWC uint8/uint16 with 1 or 3 channels (see ``read_image``)."""
    if not data:
        raise ImageReadError(f"{name}: empty file")
    if data.startswith(PNG_SIGNATURE) and not (len(data) > 25 and data[25] == 3):
        return _decode_png(data, name)  # palette PNGs (colour type 3) go through Pillow
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        arr = _decode_tiff16(data, name)
        if arr is not None:
            return arr
    return _decode_pil(data, name)


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode an image file to HWC uint8/uint16, 1 (grey) or 3 (RGB) channels, alpha dropped.

    Errors name the file: ``FileNotFoundError`` when absent, ``ImageReadError`` (a ValueError)
    when it is not an image, truncated or corrupt.
    """
    return decode_image_bytes(_read_bytes(path), name=str(path))


def to_rgb(arr: np.ndarray) -> np.ndarray:
    """Grey (H, W, 1) -> RGB by repetition; RGB unchanged."""
    return np.repeat(arr, 3, axis=2) if arr.shape[2] == 1 else arr


def max_value(arr: np.ndarray) -> float:
    """White level of an integer image: 255 for 8-bit, 65535 for 16-bit."""
    return 65535.0 if arr.dtype == np.uint16 else 255.0


def to_float(arr: np.ndarray) -> np.ndarray:
    """Integer HWC image -> float32 HWC in [0, 1] (16-bit divided by 65535)."""
    return arr.astype(np.float32) / np.float32(max_value(arr))

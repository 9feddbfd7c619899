"""Image files in and out, for every layer: one reader, one writer, one pixel limit.

A low layer (NumPy, Pillow, tifffile; no torch, Lightning or Hydra): ``data``, ``evaluation``
and ``inference`` all read through :func:`read_image`, so they agree on 16 bits, grey, alpha,
EXIF orientation, and on what a corrupt, oversized or animated file is.
"""

from esrgan_lit.imageio.png import PNG_SIGNATURE, decode_png16, encode_png, scan_png
from esrgan_lit.imageio.read import (
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    MAX_PIXELS_ENV,
    ImageInfo,
    ImageReadError,
    decode_bytes,
    drop_alpha,
    has_alpha,
    is_image_file,
    max_pixels,
    orient,
    pil_to_array,
    probe_bytes,
    probe_image,
    read_image,
    set_max_pixels,
)
from esrgan_lit.imageio.write import (
    NO_ALPHA_EXTS,
    READ_EXTS,
    WRITE_FORMATS,
    array_to_pil,
    to_uint8,
    write_image,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "MAX_PIXELS_ENV",
    "NO_ALPHA_EXTS",
    "PNG_SIGNATURE",
    "READ_EXTS",
    "WRITE_FORMATS",
    "ImageInfo",
    "ImageReadError",
    "array_to_pil",
    "decode_bytes",
    "decode_png16",
    "drop_alpha",
    "encode_png",
    "has_alpha",
    "is_image_file",
    "max_pixels",
    "orient",
    "pil_to_array",
    "probe_bytes",
    "probe_image",
    "read_image",
    "scan_png",
    "set_max_pixels",
    "to_uint8",
    "write_image",
]

"""Inference: the `Upscaler` API, seam-free tiling and image I/O (alpha, grey, 16-bit, EXIF)."""

from esrgan_lit.inference.io import read_image, write_image
from esrgan_lit.inference.tiling import receptive_radius, upscale_tiled
from esrgan_lit.inference.upscaler import Upscaler

__all__ = ["Upscaler", "read_image", "receptive_radius", "upscale_tiled", "write_image"]

"""Numerical operations with MATLAB-faithful semantics (no Lightning, no Hydra)."""

from esrgan_lit.ops.color import quantize_uint8, rgb_to_y
from esrgan_lit.ops.imresize import imresize

__all__ = ["imresize", "quantize_uint8", "rgb_to_y"]

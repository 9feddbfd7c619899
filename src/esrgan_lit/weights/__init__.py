"""Checkpoints: read any ESRGAN-family generator safely, write ours atomically, interpolate.

No Lightning or Hydra imports here: other projects can load weights with only torch installed.
"""

from esrgan_lit.weights.errors import CheckpointError, UnsafeCheckpointError
from esrgan_lit.weights.formats import GeneratorSpec, detect_format, infer_spec
from esrgan_lit.weights.interpolate import interpolate
from esrgan_lit.weights.io import (
    load_generator,
    load_state_dict,
    read_checkpoint,
    save_generator,
)

__all__ = [
    "CheckpointError",
    "GeneratorSpec",
    "UnsafeCheckpointError",
    "detect_format",
    "infer_spec",
    "interpolate",
    "load_generator",
    "load_state_dict",
    "read_checkpoint",
    "save_generator",
]

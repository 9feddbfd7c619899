"""Real-world degradations (Real-ESRGAN, Wang et al. ICCVW 2021) as batched tensor code.

Runs on the training device after the batch is transferred, so the CPU loader only crops and
flips HR patches. No Lightning/Hydra here: ``from esrgan_lit.degradations import
RealESRGANDegradation`` works in any PyTorch code.
"""

from .filtering import RESIZE_MODES, filter_batch, resize
from .jpeg import jpeg, random_jpeg
from .kernels import (
    KERNEL_SIZES,
    KERNEL_TYPES,
    anisotropic_kernels,
    sample_blur_kernels,
    sample_final_sinc,
    sinc_kernels,
)
from .noise import add_gaussian_noise, add_poisson_noise
from .pipeline import DEFAULTS, RealESRGANDegradation
from .pool import PairPool
from .usm import USMSharp

__all__ = [
    "DEFAULTS",
    "KERNEL_SIZES",
    "KERNEL_TYPES",
    "RESIZE_MODES",
    "PairPool",
    "RealESRGANDegradation",
    "USMSharp",
    "add_gaussian_noise",
    "add_poisson_noise",
    "anisotropic_kernels",
    "filter_batch",
    "jpeg",
    "random_jpeg",
    "resize",
    "sample_blur_kernels",
    "sample_final_sinc",
    "sinc_kernels",
]

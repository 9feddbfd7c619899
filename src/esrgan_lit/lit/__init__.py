"""LightningModules for the two ESRGAN stages (PSNR pre-training, GAN fine-tuning)."""

from esrgan_lit.lit.base import NonFiniteStepsError, SRModule, average_gradients
from esrgan_lit.lit.esrgan import ESRGANModule
from esrgan_lit.lit.psnr import PSNRModule

__all__ = ["ESRGANModule", "NonFiniteStepsError", "PSNRModule", "SRModule", "average_gradients"]

"""Training losses: pixel, VGG19 perceptual and adversarial (vanilla, LSGAN, RaGAN).

Plain ``nn.Module``s with no Lightning or Hydra dependency. ESRGAN's generator objective is
``L_percep + 5e-3 * L_G^Ra + 1e-2 * L_1`` (:data:`ESRGAN_LOSS_WEIGHTS`).
"""

from __future__ import annotations

from torch import Tensor

from .adversarial import GAN_TYPES, GANLoss
from .perceptual import IMAGENET_MEAN, IMAGENET_STD, PerceptualLoss
from .pixel import CRITERIA, PixelLoss, pixel_distance
from .vgg import (
    VGG19_LAYER_INDEX,
    VGG19_LAYER_NAMES,
    PerceptualWeightsUnavailableError,
    load_vgg19_state_dict,
    resolve_layer,
    torchvision_cache_file,
)

#: The paper's weights (Sec. 3.3): perceptual 1, adversarial lambda = 5e-3, pixel eta = 1e-2.
ESRGAN_LOSS_WEIGHTS: dict[str, float] = {"perceptual": 1.0, "gan": 5e-3, "pixel": 1e-2}


def esrgan_generator_loss(
    l_percep: Tensor,
    l_gan: Tensor,
    l_pix: Tensor,
    *,
    perceptual_weight: float = ESRGAN_LOSS_WEIGHTS["perceptual"],
    gan_weight: float = ESRGAN_LOSS_WEIGHTS["gan"],
    pixel_weight: float = ESRGAN_LOSS_WEIGHTS["pixel"],
) -> Tensor:
    """``L_G = w_p * L_percep + lambda * L_G^Ra + eta * L_1`` with the paper's defaults."""
    return perceptual_weight * l_percep + gan_weight * l_gan + pixel_weight * l_pix


__all__ = [
    "CRITERIA",
    "ESRGAN_LOSS_WEIGHTS",
    "GAN_TYPES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "VGG19_LAYER_INDEX",
    "VGG19_LAYER_NAMES",
    "GANLoss",
    "PerceptualLoss",
    "PerceptualWeightsUnavailableError",
    "PixelLoss",
    "esrgan_generator_loss",
    "load_vgg19_state_dict",
    "pixel_distance",
    "resolve_layer",
    "torchvision_cache_file",
]

"""Adversarial losses: standard GAN (BCE with logits), LSGAN and the relativistic average GAN.

The relativistic average GAN (RaGAN, Jolicoeur-Martineau 2018) is what ESRGAN uses: the
discriminator judges whether a real image is *more realistic than the average fake* and vice
versa. ESRGAN's discriminator step is split into two backward halves (real, then fake), each
``0.5 * BCE(...)`` with the *other* side's predictions detached, so a BatchNorm discriminator
sees one kind of batch per forward pass (safe under DDP).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

GanType = Literal["vanilla", "lsgan", "ragan"]
GAN_TYPES: tuple[str, ...] = ("vanilla", "lsgan", "ragan")


class GANLoss(nn.Module):
    """Generator and discriminator objectives on raw discriminator outputs (logits).

    ``vanilla``: BCE with logits, targets 1 (real) / 0 (fake).
    ``lsgan``: mean squared error to 1 / 0.
    ``ragan``: relativistic average BCE as in ESRGAN (eq. 1-2 of the paper):
        D = 0.5*BCE(D(x_r) - E[D(x_f)], 1) + 0.5*BCE(D(x_f) - E[D(x_r)], 0)
        G = 0.5*[BCE(D(x_r) - E[D(x_f)], 0) + BCE(D(x_f) - E[D(x_r)], 1)]
    For ``vanilla``/``lsgan`` the discriminator halves are unscaled (sum = the usual D loss) and
    the ``*_pred`` of the other side is not needed.
    """

    def __init__(self, gan_type: GanType = "ragan") -> None:
        super().__init__()
        if gan_type not in GAN_TYPES:
            raise ValueError(f"unknown gan_type {gan_type!r}; expected one of {GAN_TYPES}")
        self.gan_type = gan_type

    @property
    def relativistic(self) -> bool:
        """True when the losses need both real and fake predictions."""
        return self.gan_type == "ragan"

    def _criterion(self, pred: Tensor, target_is_real: bool) -> Tensor:
        # Computed in fp32: BCE/MSE on half-precision logits loses too much under autocast.
        pred = pred.float()
        target = torch.full_like(pred, 1.0 if target_is_real else 0.0)
        if self.gan_type == "lsgan":
            return F.mse_loss(pred, target)
        return F.binary_cross_entropy_with_logits(pred, target)

    def _other(self, other: Tensor | None, name: str, method: str) -> Tensor:
        if other is None:
            raise ValueError(f"GANLoss(gan_type='ragan').{method} needs {name} (relativistic loss)")
        return other

    def generator_loss(self, fake_pred: Tensor, real_pred: Tensor | None = None) -> Tensor:
        """Loss for the generator step; for RaGAN the real predictions are detached."""
        if not self.relativistic:
            return self._criterion(fake_pred, True)
        real = self._other(real_pred, "real_pred", "generator_loss").detach()
        return 0.5 * (
            self._criterion(real - fake_pred.mean(), False)
            + self._criterion(fake_pred - real.mean(), True)
        )

    def discriminator_loss_real(self, real_pred: Tensor, fake_pred: Tensor | None = None) -> Tensor:
        """Real half of the discriminator loss; for RaGAN the fake predictions are detached."""
        if not self.relativistic:
            return self._criterion(real_pred, True)
        fake = self._other(fake_pred, "fake_pred", "discriminator_loss_real").detach()
        return 0.5 * self._criterion(real_pred - fake.mean(), True)

    def discriminator_loss_fake(self, fake_pred: Tensor, real_pred: Tensor | None = None) -> Tensor:
        """Fake half of the discriminator loss; for RaGAN the real predictions are detached."""
        if not self.relativistic:
            return self._criterion(fake_pred, False)
        real = self._other(real_pred, "real_pred", "discriminator_loss_fake").detach()
        return 0.5 * self._criterion(fake_pred - real.mean(), False)

    def discriminator_loss(self, real_pred: Tensor, fake_pred: Tensor) -> Tensor:
        """Both halves summed (for logging or a single-backward D step)."""
        return self.discriminator_loss_real(real_pred, fake_pred) + self.discriminator_loss_fake(
            fake_pred, real_pred
        )

    def extra_repr(self) -> str:
        return f"gan_type={self.gan_type!r}"

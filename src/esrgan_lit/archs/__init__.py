"""Networks as plain ``nn.Module`` s (no Lightning, no Hydra)."""

from esrgan_lit.archs.discriminators import UNetDiscriminatorSN, VGGStyleDiscriminator
from esrgan_lit.archs.rrdbnet import RRDB, ResidualDenseBlock, RRDBNet
from esrgan_lit.archs.srresnet import SRResNet

__all__ = [
    "RRDB",
    "RRDBNet",
    "ResidualDenseBlock",
    "SRResNet",
    "UNetDiscriminatorSN",
    "VGGStyleDiscriminator",
]

"""Networks as plain ``nn.Module`` s (no Lightning, no Hydra).

Each family keeps its knowledge with it: RRDBNet's checkpoint key layouts and size reading in
``rrdbnet_keys``, its receptive radius and striped CPU forward as methods (``rrdbnet_striped``);
SRResNet's layout as ``srresnet.LAYOUT``.
"""

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

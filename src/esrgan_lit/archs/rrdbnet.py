"""RRDBNet, the ESRGAN generator (Wang et al. 2018), with BasicSR's attribute names.

Attribute names follow BasicSR (``conv_first``, ``body.{i}.rdb{j}.conv{k}``, ``conv_body``,
``conv_up{n}``, ``conv_hr``, ``conv_last``) so our state-dict layout *is* the BasicSR/Real-ESRGAN
layout and those checkpoints load without a key map.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from esrgan_lit.archs import rrdbnet_striped

# Scales reached by nearest-x2 upsampling stages after the trunk.
_UP_STAGES = {1: 2, 2: 2, 4: 2, 8: 3}
# Scales 2 and 1 fold space into channels first (pixel_unshuffle), the convention of the x2/x1
# checkpoints in circulation (Real-ESRGAN), so the trunk always runs at 1/4 of the output size.
_UNSHUFFLE = {1: 4, 2: 2, 4: 1, 8: 1}


def init_weights(module: nn.Module, scale: float = 0.1) -> None:
    """Kaiming-normal (fan_in) scaled by ``scale``, bias 0: the paper's small residual init."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            m.weight.data.mul_(scale)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convs; the output is scaled by 0.2 and added to the input."""

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32) -> None:
        super().__init__()
        nf, gc = num_feat, num_grow_ch
        self.conv1 = nn.Conv2d(nf, gc, 3, 1, 1)
        self.conv2 = nn.Conv2d(nf + gc, gc, 3, 1, 1)
        self.conv3 = nn.Conv2d(nf + 2 * gc, gc, 3, 1, 1)
        self.conv4 = nn.Conv2d(nf + 3 * gc, gc, 3, 1, 1)
        self.conv5 = nn.Conv2d(nf + 4 * gc, nf, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x + 0.2 * x5


class RRDB(nn.Module):
    """Residual-in-residual dense block: three dense blocks inside a 0.2-scaled residual."""

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.2 * self.rdb3(self.rdb2(self.rdb1(x)))


class RRDBNet(nn.Module):
    """The ESRGAN generator: no batch norm, no output clamp.

    Scales 4 and 8 upsample with 2 / 3 nearest-x2 stages; scales 2 and 1 apply
    ``pixel_unshuffle`` (factor 2 / 4) first, so ``conv_first`` sees ``num_in_ch * 4`` / ``* 16``
    channels and the input height and width must be multiples of 2 / 4.
    """

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        scale: int = 4,
        num_feat: int = 64,
        num_block: int = 23,
        num_grow_ch: int = 32,
    ) -> None:
        super().__init__()
        if scale not in _UP_STAGES:
            raise ValueError(f"RRDBNet scale must be one of 1, 2, 4, 8; got {scale!r}")
        self.scale = scale
        self.num_in_ch = num_in_ch
        self.num_out_ch = num_out_ch
        self.num_feat = num_feat
        self.num_block = num_block
        self.num_grow_ch = num_grow_ch
        self.unshuffle = _UNSHUFFLE[scale]
        self.conv_first = nn.Conv2d(num_in_ch * self.unshuffle**2, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*(RRDB(num_feat, num_grow_ch) for _ in range(num_block)))
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.num_up = _UP_STAGES[scale]
        for i in range(1, self.num_up + 1):
            self.add_module(f"conv_up{i}", nn.Conv2d(num_feat, num_feat, 3, 1, 1))
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)
        # The paper's smaller initialisation is for the residual blocks (each dense block then
        # starts near the identity); the head and the upsampling tail keep PyTorch's default
        # init, as in the authors' code. Scaling those too leaves the output ~1e-4 of the input
        # at the start and the first thousands of iterations learn almost nothing.
        init_weights(self.body, 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.unshuffle > 1:
            r = self.unshuffle
            if x.shape[-2] % r or x.shape[-1] % r:
                raise ValueError(
                    f"RRDBNet x{self.scale} needs height and width divisible by {r} "
                    f"(pixel_unshuffle); got {tuple(x.shape[-2:])}"
                )
            x = F.pixel_unshuffle(x, r)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        for i in range(1, self.num_up + 1):
            conv = getattr(self, f"conv_up{i}")
            feat = self.lrelu(conv(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))

    def receptive_radius(self) -> int:
        """Receptive-field radius in input pixels (exact): the overlap tiling needs is twice it."""
        return rrdbnet_striped.receptive_radius(self)

    def striped_forward(
        self,
        x: torch.Tensor,
        stripe_pixels: int = 1 << 17,
        trunk_stripe_pixels: int | None = None,
    ) -> torch.Tensor:
        """``self(x)`` with a fraction of the peak memory, for inference (see ``rrdbnet_striped``)."""
        return rrdbnet_striped.striped_forward(self, x, stripe_pixels, trunk_stripe_pixels)

    def extra_repr(self) -> str:
        return (
            f"scale={self.scale}, num_in_ch={self.num_in_ch}, num_out_ch={self.num_out_ch}, "
            f"num_feat={self.num_feat}, num_block={self.num_block}, num_grow_ch={self.num_grow_ch}"
        )

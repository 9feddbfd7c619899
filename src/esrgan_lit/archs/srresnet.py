"""SRResNet, the SRGAN generator (Ledig et al. 2017): the baseline of ESRGAN's ablation.

With ``batch_norm=True`` it is the SRGAN generator the ablation starts from; ESRGAN's first
step removes the batch norm (``batch_norm=False``, the default), which the paper found to
reduce artefacts and to generalise better.
"""

from __future__ import annotations

import torch
from torch import nn

from esrgan_lit.archs.rrdbnet import init_weights

_SHUFFLE_STAGES = {2: [2], 3: [3], 4: [2, 2], 8: [2, 2, 2]}


class ResidualBlock(nn.Module):
    """conv-(BN)-PReLU-conv-(BN) with an identity skip."""

    def __init__(self, num_feat: int, batch_norm: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=not batch_norm)
        self.bn1 = nn.BatchNorm2d(num_feat) if batch_norm else nn.Identity()
        self.act = nn.PReLU(num_feat)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=not batch_norm)
        self.bn2 = nn.BatchNorm2d(num_feat) if batch_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bn2(self.conv2(self.act(self.bn1(self.conv1(x)))))


class SRResNet(nn.Module):
    """9x9 head, residual blocks, a long skip, sub-pixel (pixel-shuffle) upsampling, 9x9 tail."""

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        scale: int = 4,
        num_feat: int = 64,
        num_block: int = 16,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        if scale not in _SHUFFLE_STAGES:
            raise ValueError(f"SRResNet scale must be one of 2, 3, 4, 8; got {scale!r}")
        self.scale = scale
        self.num_in_ch = num_in_ch
        self.num_out_ch = num_out_ch
        self.num_feat = num_feat
        self.num_block = num_block
        self.batch_norm = batch_norm
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 9, 1, 4)
        self.act_first = nn.PReLU(num_feat)
        self.body = nn.Sequential(*(ResidualBlock(num_feat, batch_norm) for _ in range(num_block)))
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=not batch_norm)
        self.bn_body = nn.BatchNorm2d(num_feat) if batch_norm else nn.Identity()
        up: list[nn.Module] = []
        for r in _SHUFFLE_STAGES[scale]:
            up += [nn.Conv2d(num_feat, num_feat * r * r, 3, 1, 1), nn.PixelShuffle(r)]
            up.append(nn.PReLU(num_feat))
        self.upsample = nn.Sequential(*up)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 9, 1, 4)
        # Same small init as RRDBNet: a deep residual trunk starts close to the identity.
        init_weights(self, 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.act_first(self.conv_first(x))
        feat = feat + self.bn_body(self.conv_body(self.body(feat)))
        return self.conv_last(self.upsample(feat))

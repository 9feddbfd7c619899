"""SRResNet, the SRGAN generator (Ledig et al. 2017): the baseline of ESRGAN's ablation.

With ``batch_norm=True`` it is the SRGAN generator the ablation starts from; ESRGAN's first
step removes the batch norm (``batch_norm=False``, the default), which the paper found to
reduce artefacts and to generalise better.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from esrgan_lit.archs.keymaps import KeyLayout, KeyLayoutError, Keys, indices, need
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


def read_kwargs(
    sd: Mapping[str, torch.Tensor], name: str, hints: Mapping[str, str]
) -> dict[str, Any]:
    """SRResNet's constructor arguments from tensor shapes (each pixel-shuffle conv gives r^2)."""
    first = need(sd, "conv_first.weight", 4, name)
    last = need(sd, "conv_last.weight", 4, name)
    nf = int(first.shape[0])
    scale = 1
    for idx in sorted(indices(sd, r"^upsample\.(\d+)\.weight$")):
        t = sd[f"upsample.{idx}.weight"]
        if t.ndim == 4:  # the conv before each PixelShuffle (PReLU weights are 1-D)
            scale *= round((t.shape[0] / nf) ** 0.5)
    if scale not in _SHUFFLE_STAGES:
        raise KeyLayoutError(f"{name}: SRResNet upsampling convs give scale {scale}")
    return {
        "num_in_ch": int(first.shape[1]),
        "num_out_ch": int(last.shape[0]),
        "scale": scale,
        "num_feat": nf,
        "num_block": len(indices(sd, r"^body\.(\d+)\.")),
        "batch_norm": "bn_body.weight" in sd,
    }


# This project's own layout (the attribute names above); no foreign SRResNet layout is read.
LAYOUT = KeyLayout(
    name="srresnet",
    arch=SRResNet,
    summary="esrgan-lit SRResNet (conv_first, act_first, body.{i}.conv1, upsample.{k}, conv_last)",
    detect=Keys(all=("conv_first.weight", "act_first.weight")),
    read_kwargs=read_kwargs,
)

"""Discriminators: the VGG-style one of SRGAN/ESRGAN and Real-ESRGAN's U-Net with spectral norm."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class VGGStyleDiscriminator(nn.Module):
    """Strided conv stages ending in a 4x4 map, then linear 8nf*16 -> 100 -> 1 (one logit).

    ``input_size`` 128 is the paper's (five stride-2 stages); 256 and above get a sixth stage
    (the "fifth pair"). Any other multiple of 32 is accepted: when the last map is not 4x4 it is
    average-pooled to 4x4, so the head (and the parameter count) stays the same.
    """

    def __init__(self, num_in_ch: int = 3, num_feat: int = 64, input_size: int = 128) -> None:
        super().__init__()
        if input_size <= 0 or input_size % 32:
            raise ValueError(
                f"VGGStyleDiscriminator input_size must be a positive multiple of 32; "
                f"got {input_size!r}"
            )
        self.input_size = input_size
        nf = num_feat
        self.conv0_0 = nn.Conv2d(num_in_ch, nf, 3, 1, 1, bias=True)
        self.conv0_1 = nn.Conv2d(nf, nf, 4, 2, 1, bias=False)
        self.bn0_1 = nn.BatchNorm2d(nf, affine=True)
        widths = [(nf, 2 * nf), (2 * nf, 4 * nf), (4 * nf, 8 * nf), (8 * nf, 8 * nf)]
        if input_size >= 256:
            widths.append((8 * nf, 8 * nf))
        self.num_pairs = len(widths)
        for i, (cin, cout) in enumerate(widths, start=1):
            self.add_module(f"conv{i}_0", nn.Conv2d(cin, cout, 3, 1, 1, bias=False))
            self.add_module(f"bn{i}_0", nn.BatchNorm2d(cout, affine=True))
            self.add_module(f"conv{i}_1", nn.Conv2d(cout, cout, 4, 2, 1, bias=False))
            self.add_module(f"bn{i}_1", nn.BatchNorm2d(cout, affine=True))
        self.final_size = input_size // 2 ** (self.num_pairs + 1)
        self.linear1 = nn.Linear(8 * nf * 4 * 4, 100)
        self.linear2 = nn.Linear(100, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(
                f"VGGStyleDiscriminator(input_size={self.input_size}) got a "
                f"{tuple(x.shape[-2:])} input; crop patches to {self.input_size}x{self.input_size}"
            )
        feat = self.lrelu(self.conv0_0(x))
        feat = self.lrelu(self.bn0_1(self.conv0_1(feat)))
        for i in range(1, self.num_pairs + 1):
            feat = self.lrelu(getattr(self, f"bn{i}_0")(getattr(self, f"conv{i}_0")(feat)))
            feat = self.lrelu(getattr(self, f"bn{i}_1")(getattr(self, f"conv{i}_1")(feat)))
        if self.final_size != 4:
            feat = F.adaptive_avg_pool2d(feat, 4)
        feat = self.lrelu(self.linear1(feat.flatten(1)))
        return self.linear2(feat)


class UNetDiscriminatorSN(nn.Module):
    """Real-ESRGAN's U-Net discriminator: a per-pixel realness logit map (N, 1, H, W).

    Spectral norm on every conv but the first and last; three stride-2 downs, bilinear x2 ups
    with additive skips. Height and width must be multiples of 8.
    """

    def __init__(self, num_in_ch: int = 3, num_feat: int = 64, skip_connection: bool = True):
        super().__init__()
        nf = num_feat
        self.skip_connection = skip_connection
        self.conv0 = nn.Conv2d(num_in_ch, nf, 3, 1, 1)
        self.conv1 = spectral_norm(nn.Conv2d(nf, nf * 2, 4, 2, 1, bias=False))
        self.conv2 = spectral_norm(nn.Conv2d(nf * 2, nf * 4, 4, 2, 1, bias=False))
        self.conv3 = spectral_norm(nn.Conv2d(nf * 4, nf * 8, 4, 2, 1, bias=False))
        self.conv4 = spectral_norm(nn.Conv2d(nf * 8, nf * 4, 3, 1, 1, bias=False))
        self.conv5 = spectral_norm(nn.Conv2d(nf * 4, nf * 2, 3, 1, 1, bias=False))
        self.conv6 = spectral_norm(nn.Conv2d(nf * 2, nf, 3, 1, 1, bias=False))
        self.conv7 = spectral_norm(nn.Conv2d(nf, nf, 3, 1, 1, bias=False))
        self.conv8 = spectral_norm(nn.Conv2d(nf, nf, 3, 1, 1, bias=False))
        self.conv9 = nn.Conv2d(nf, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] % 8 or x.shape[-1] % 8:
            raise ValueError(
                f"UNetDiscriminatorSN needs height and width divisible by 8; "
                f"got {tuple(x.shape[-2:])}"
            )

        def act(t: torch.Tensor) -> torch.Tensor:
            return F.leaky_relu(t, negative_slope=0.2)

        def up(t: torch.Tensor) -> torch.Tensor:
            return F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)

        x0 = act(self.conv0(x))
        x1 = act(self.conv1(x0))
        x2 = act(self.conv2(x1))
        x3 = act(self.conv3(x2))
        x4 = act(self.conv4(up(x3)))
        if self.skip_connection:
            x4 = x4 + x2
        x5 = act(self.conv5(up(x4)))
        if self.skip_connection:
            x5 = x5 + x1
        x6 = act(self.conv6(up(x5)))
        if self.skip_connection:
            x6 = x6 + x0
        out = act(self.conv7(x6))
        out = act(self.conv8(out))
        return self.conv9(out)

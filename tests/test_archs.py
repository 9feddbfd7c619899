"""Networks: exact parameter counts (paper/BasicSR sizes), wiring against a functional
re-implementation, shapes for every scale, and the discriminators."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from esrgan_lit.archs import RRDBNet, SRResNet, UNetDiscriminatorSN, VGGStyleDiscriminator


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def meta(cls: type[nn.Module], **kwargs: object) -> nn.Module:
    """Build on the meta device: full-size counts without allocating or initialising weights."""
    with torch.device("meta"):
        return cls(**kwargs)


def conv(cin: int, cout: int, k: int = 3, bias: bool = True) -> int:
    return cin * cout * k * k + (cout if bias else 0)


@pytest.mark.parametrize(("scale", "count"), [(4, 16_697_987), (2, 16_703_171), (1, 16_723_907)])
def test_rrdbnet_param_counts_match_published(scale: int, count: int) -> None:
    assert n_params(meta(RRDBNet, scale=scale)) == count


def test_rrdbnet_x8_adds_one_upsampling_conv() -> None:
    assert n_params(meta(RRDBNet, scale=8)) == 16_697_987 + conv(64, 64)


def test_rrdbnet_keys_use_basicsr_names() -> None:
    keys = set(RRDBNet(scale=8, num_feat=8, num_block=2, num_grow_ch=4).state_dict())
    for k in [
        "conv_first.weight",
        "body.1.rdb3.conv5.bias",
        "conv_body.weight",
        "conv_up1.weight",
        "conv_up2.weight",
        "conv_up3.weight",
        "conv_hr.weight",
        "conv_last.bias",
    ]:
        assert k in keys
    assert not any("bn" in k or "running" in k for k in keys)


def test_rrdbnet_init_is_scaled_kaiming_fan_in() -> None:
    torch.manual_seed(0)
    m = RRDBNet(num_block=1)
    w = m.body[0].rdb1.conv5.weight  # fan_in = (64 + 4*32) * 9 = 1728
    expected = 0.1 * (2.0 / 1728) ** 0.5
    assert w.std().item() == pytest.approx(expected, rel=0.03)
    assert abs(w.mean().item()) < 0.05 * expected
    for mod in m.body.modules():
        if isinstance(mod, nn.Conv2d):
            assert torch.count_nonzero(mod.bias) == 0
    # head and tail keep PyTorch's default init (uniform, std 1/sqrt(3 fan_in)): not scaled
    for conv in (m.conv_first, m.conv_body, m.conv_up1, m.conv_hr, m.conv_last):
        fan_in = conv.weight[0].numel()
        assert conv.weight.std().item() == pytest.approx((3 * fan_in) ** -0.5, rel=0.15)


def _reference_forward(m: RRDBNet, x: torch.Tensor) -> torch.Tensor:
    """The paper's equations written out with F.conv2d, independent of the module's forward."""

    def c(name: str, t: torch.Tensor) -> torch.Tensor:
        mod = m.get_submodule(name)
        return F.conv2d(t, mod.weight, mod.bias, padding=1)

    def lrelu(t: torch.Tensor) -> torch.Tensor:
        return torch.where(t >= 0, t, 0.2 * t)

    if m.scale in (1, 2):
        r = 4 if m.scale == 1 else 2
        n, ch, h, w = x.shape
        # pixel_unshuffle by hand: channel index = c * r * r + dy * r + dx
        x = x.reshape(n, ch, h // r, r, w // r, r).permute(0, 1, 3, 5, 2, 4)
        x = x.reshape(n, ch * r * r, h // r, w // r)
    feat = c("conv_first", x)
    trunk = feat
    for i in range(m.num_block):
        rrdb_in = trunk
        t = trunk
        for j in (1, 2, 3):
            p = f"body.{i}.rdb{j}"
            xs = [t]
            for k in (1, 2, 3, 4):
                xs.append(lrelu(c(f"{p}.conv{k}", torch.cat(xs, 1))))
            t = t + 0.2 * c(f"{p}.conv5", torch.cat(xs, 1))
        trunk = rrdb_in + 0.2 * t
    feat = feat + c("conv_body", trunk)
    for u in range(1, m.num_up + 1):
        feat = feat.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
        feat = lrelu(c(f"conv_up{u}", feat))
    return c("conv_last", lrelu(c("conv_hr", feat)))


@pytest.mark.parametrize("scale", [1, 2, 4, 8])
def test_rrdbnet_matches_functional_reference(scale: int) -> None:
    torch.manual_seed(scale)
    m = RRDBNet(scale=scale, num_feat=8, num_block=2, num_grow_ch=4).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.2)  # big enough that a missing 0.2 or skip changes the output
        x = torch.rand(1, 3, 8, 12)
        out = m(x)
        ref = _reference_forward(m, x)
    assert out.shape == (1, 3, 8 * scale, 12 * scale)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("scale", "size"), [(4, (7, 9)), (8, (5, 3)), (2, (6, 10)), (1, (8, 12)), (4, (1, 1))]
)
def test_rrdbnet_output_shapes(scale: int, size: tuple[int, int]) -> None:
    m = RRDBNet(num_in_ch=3, num_out_ch=3, scale=scale, num_feat=8, num_block=1, num_grow_ch=4)
    with torch.no_grad():
        out = m(torch.rand(2, 3, *size))
    assert out.shape == (2, 3, size[0] * scale, size[1] * scale)


def test_rrdbnet_channels_and_no_clamp() -> None:
    m = RRDBNet(num_in_ch=1, num_out_ch=4, scale=2, num_feat=8, num_block=1, num_grow_ch=4)
    assert m.conv_first.in_channels == 4  # 1 channel x pixel_unshuffle(2)^2
    with torch.no_grad():
        out = m(torch.full((1, 1, 4, 4), 50.0))
    assert out.shape == (1, 4, 8, 8)
    assert meta(RRDBNet, scale=1, num_feat=8, num_block=1).conv_first.in_channels == 48


@pytest.mark.parametrize("scale", [2, 1])
def test_rrdbnet_unshuffle_needs_divisible_input(scale: int) -> None:
    m = RRDBNet(scale=scale, num_feat=8, num_block=1, num_grow_ch=4)
    with pytest.raises(ValueError, match="divisible"):
        m(torch.rand(1, 3, 7, 9))


@pytest.mark.parametrize("scale", [0, 3, 16, 2.5])
def test_rrdbnet_rejects_other_scales(scale: float) -> None:
    with pytest.raises(ValueError, match="scale"):
        RRDBNet(scale=scale, num_feat=8, num_block=1)  # type: ignore[arg-type]


def _srresnet_count(nf: int, nb: int, bn: bool, stages: int) -> int:
    block = 2 * conv(nf, nf, bias=not bn) + nf + (4 * nf if bn else 0)  # + PReLU, BN (w, b)
    total = conv(3, nf, 9) + nf + nb * block + conv(nf, nf, bias=not bn) + (2 * nf if bn else 0)
    total += stages * (conv(nf, 4 * nf) + nf)
    return total + conv(nf, 3, 9)


@pytest.mark.parametrize("bn", [False, True])
def test_srresnet_count_shape_and_bn_switch(bn: bool) -> None:
    m = meta(SRResNet, scale=4, batch_norm=bn)
    assert n_params(m) == _srresnet_count(64, 16, bn, stages=2)
    has_bn = any(isinstance(x, nn.BatchNorm2d) for x in m.modules())
    assert has_bn is bn
    tiny = SRResNet(scale=4, num_feat=8, num_block=2, batch_norm=bn).eval()
    with torch.no_grad():
        assert tiny(torch.rand(2, 3, 7, 5)).shape == (2, 3, 28, 20)


@pytest.mark.parametrize("scale", [2, 3, 8])
def test_srresnet_scales(scale: int) -> None:
    m = SRResNet(scale=scale, num_feat=8, num_block=1)
    with torch.no_grad():
        assert m(torch.rand(1, 3, 5, 6)).shape == (1, 3, 5 * scale, 6 * scale)
    with pytest.raises(ValueError, match="scale"):
        SRResNet(scale=5)


def test_vgg_discriminator_count_at_128_and_256() -> None:
    assert n_params(meta(VGGStyleDiscriminator, input_size=128)) == 14_499_401
    fifth_pair = conv(512, 512, 3, False) + conv(512, 512, 4, False) + 2 * 2 * 512
    assert n_params(meta(VGGStyleDiscriminator, input_size=256)) == 14_499_401 + fifth_pair


@pytest.mark.parametrize("size", [128, 256, 192, 96, 32])
def test_vgg_discriminator_sizes(size: int) -> None:
    d = VGGStyleDiscriminator(num_feat=4, input_size=size)
    out = d(torch.rand(2, 3, size, size))
    assert out.shape == (2, 1)
    out.sum().backward()
    assert d.conv0_0.weight.grad is not None
    # the head is the paper's whatever the size: 8nf * 4 * 4 -> 100 -> 1
    assert d.linear1.in_features == 8 * 4 * 16


def test_vgg_discriminator_bad_sizes() -> None:
    with pytest.raises(ValueError, match="multiple of 32"):
        VGGStyleDiscriminator(input_size=100)
    d = VGGStyleDiscriminator(num_feat=4, input_size=128)
    with pytest.raises(ValueError, match="128"):
        d(torch.rand(1, 3, 96, 96))


def test_unet_discriminator_count_and_shape() -> None:
    assert n_params(UNetDiscriminatorSN()) == 4_376_897
    d = UNetDiscriminatorSN(num_feat=8)
    out = d(torch.rand(2, 3, 32, 48))
    assert out.shape == (2, 1, 32, 48)
    sn = [n for n, m in d.named_modules() if hasattr(m, "parametrizations")]
    assert sorted(sn) == [f"conv{i}" for i in range(1, 9)]


def test_unet_discriminator_skip_switch_and_bad_size() -> None:
    torch.manual_seed(0)
    a = UNetDiscriminatorSN(num_feat=8, skip_connection=True).eval()
    b = UNetDiscriminatorSN(num_feat=8, skip_connection=False).eval()
    b.load_state_dict(a.state_dict())
    x = torch.rand(1, 3, 16, 16)
    assert b(x).shape == (1, 1, 16, 16)
    assert not torch.allclose(a(x), b(x))
    with pytest.raises(ValueError, match="divisible by 8"):
        a(torch.rand(1, 3, 12, 16))


def test_archs_and_weights_do_not_import_the_training_stack() -> None:
    import os
    import subprocess
    import sys

    code = (
        "import sys, esrgan_lit.archs, esrgan_lit.weights, esrgan_lit.convert;"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('lightning', 'pytorch_lightning', 'hydra', 'omegaconf')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr

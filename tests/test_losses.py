"""Losses against hand-computed values; VGG loading from files the tests create (no download)."""

from __future__ import annotations

import urllib.error
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from esrgan_lit.losses import (
    ESRGAN_LOSS_WEIGHTS,
    GANLoss,
    PerceptualLoss,
    PerceptualWeightsUnavailableError,
    PixelLoss,
    esrgan_generator_loss,
    resolve_layer,
    torchvision_cache_file,
)

# ---------------------------------------------------------------- pixel

PRED = torch.tensor([0.5, -1.0, 2.0, 0.0])
TARGET = torch.tensor([0.0, 0.0, 0.0, 1.0])  # differences 0.5, -1, 2, -1


@pytest.mark.parametrize(
    ("criterion", "kwargs", "expected"),
    [
        ("l1", {}, 4.5 / 4),  # (0.5 + 1 + 2 + 1) / 4
        ("l2", {}, 6.25 / 4),  # (0.25 + 1 + 4 + 1) / 4
        ("charbonnier", {"eps": 0.0}, 4.5 / 4),
        # (sqrt(0.26) + 2*sqrt(1.01) + sqrt(4.01)) / 4
        ("charbonnier", {"eps": 1e-2}, 1.1305938787583838),
        ("l1", {"reduction": "sum"}, 4.5),
    ],
)
def test_pixel_loss_hand_values(criterion, kwargs, expected):
    loss = PixelLoss(criterion, **kwargs)(PRED, TARGET)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_pixel_loss_default_is_l1_and_rejects_bad_input():
    assert PixelLoss().criterion == "l1"
    with pytest.raises(ValueError, match="huber"):
        PixelLoss("huber")
    with pytest.raises(ValueError, match="shape"):
        PixelLoss()(torch.zeros(2, 3), torch.zeros(3, 2))


def test_charbonnier_gradient_finite_at_zero():
    x = torch.zeros(4, requires_grad=True)
    PixelLoss("charbonnier")(x, torch.zeros(4)).backward()
    assert torch.isfinite(x.grad).all()


# ---------------------------------------------------------------- adversarial
# BCE(x, 1) = softplus(-x), BCE(x, 0) = softplus(x); values below from log(1 + exp(.)).

REAL = [1.0, 3.0]  # mean 2
FAKE = [0.0, -1.0]  # mean -0.5


def _preds():
    real = torch.tensor(REAL, requires_grad=True)
    fake = torch.tensor(FAKE, requires_grad=True)
    return real, fake


def test_vanilla_gan_hand_values():
    gan = GANLoss("vanilla")
    assert gan.generator_loss(torch.tensor([0.0])).item() == pytest.approx(0.6931471805599453)
    assert gan.generator_loss(torch.tensor([2.0])).item() == pytest.approx(0.1269280110429725)
    assert gan.discriminator_loss_real(torch.tensor([2.0])).item() == pytest.approx(
        0.1269280110429725
    )
    assert gan.discriminator_loss_fake(torch.tensor([2.0])).item() == pytest.approx(
        2.1269280110429727
    )


def test_lsgan_hand_values():
    gan = GANLoss("lsgan")
    x = torch.tensor([0.5, 1.5])
    assert gan.generator_loss(x).item() == pytest.approx(0.25)  # ((-.5)^2 + .5^2) / 2
    assert gan.discriminator_loss_real(x).item() == pytest.approx(0.25)
    assert gan.discriminator_loss_fake(x).item() == pytest.approx(1.25)  # (.25 + 2.25) / 2


def test_ragan_hand_values():
    gan = GANLoss("ragan")
    real, fake = _preds()
    # 0.5 * mean(softplus(-(1 + .5)), softplus(-(3 + .5)))
    assert gan.discriminator_loss_real(real, fake).item() == pytest.approx(0.057790924063843244)
    # 0.5 * mean(softplus(0 - 2), softplus(-1 - 2))
    assert gan.discriminator_loss_fake(fake, real).item() == pytest.approx(0.04387884065417864)
    # 0.5 * [mean(softplus(1.5), softplus(3.5)) + mean(softplus(2), softplus(3))]
    assert gan.generator_loss(fake, real).item() == pytest.approx(2.6016697647180216)
    assert gan.discriminator_loss(real, fake).item() == pytest.approx(
        0.057790924063843244 + 0.04387884065417864
    )


def test_ragan_generator_detaches_real_and_uses_both_terms_for_fake():
    real, fake = _preds()
    GANLoss("ragan").generator_loss(fake, real).backward()
    assert real.grad is None
    # d/df_i = 0.5*[mean_j sigmoid(r_j - m_f) * (-1/n)] + 0.5*(sigmoid(f_i - m_r) - 1)/n
    r, f = torch.tensor(REAL), torch.tensor(FAKE)
    n = len(FAKE)
    term1 = -0.5 * torch.sigmoid(r - f.mean()).mean() / n
    term2 = 0.5 * (torch.sigmoid(f - r.mean()) - 1) / n
    torch.testing.assert_close(fake.grad, term1 + term2)


def test_ragan_discriminator_halves_detach_other_side():
    gan = GANLoss("ragan")
    real, fake = _preds()
    gan.discriminator_loss_real(real, fake).backward()
    assert fake.grad is None and real.grad is not None
    real, fake = _preds()
    gan.discriminator_loss_fake(fake, real).backward()
    assert real.grad is None and fake.grad is not None
    # d/df_i of 0.5*mean(softplus(f - m_r)) = 0.5 * sigmoid(f_i - m_r) / n
    expected = 0.5 * torch.sigmoid(torch.tensor(FAKE) - 2.0) / 2
    torch.testing.assert_close(fake.grad, expected)


def test_ragan_requires_other_side_and_unknown_type():
    gan = GANLoss("ragan")
    with pytest.raises(ValueError, match="real_pred"):
        gan.generator_loss(torch.zeros(2))
    with pytest.raises(ValueError, match="fake_pred"):
        gan.discriminator_loss_real(torch.zeros(2))
    with pytest.raises(ValueError, match="wgan"):
        GANLoss("wgan")


def test_gan_loss_fp32_from_half_logits():
    loss = GANLoss("vanilla").generator_loss(torch.tensor([2.0], dtype=torch.bfloat16))
    assert loss.dtype == torch.float32


def test_esrgan_generator_loss_weights():
    assert ESRGAN_LOSS_WEIGHTS == {"perceptual": 1.0, "gan": 5e-3, "pixel": 1e-2}
    total = esrgan_generator_loss(torch.tensor(2.0), torch.tensor(10.0), torch.tensor(3.0))
    assert total.item() == pytest.approx(2.0 + 0.05 + 0.03)


# ---------------------------------------------------------------- perceptual: layers


@pytest.mark.parametrize(
    ("name", "before", "index"),
    [
        ("conv5_4", True, 34),
        ("conv5_4", False, 35),
        ("relu5_4", True, 35),
        ("conv1_1", True, 0),
        ("conv2_2", False, 8),
        ("conv3_1", True, 10),
        ("conv4_4", True, 25),
        ("pool5", True, 36),
    ],
)
def test_layer_name_to_index(name, before, index):
    assert resolve_layer(name, before_relu=before) == index


def test_unknown_layer_rejected():
    with pytest.raises(ValueError, match="conv6_1"):
        resolve_layer("conv6_1", before_relu=True)


def _random_loss(**kwargs) -> PerceptualLoss:
    with pytest.warns(UserWarning, match="RANDOM"):
        return PerceptualLoss(pretrained=False, **kwargs)


def test_before_and_after_relu_truncation_and_features():
    torch.manual_seed(0)
    before = _random_loss()
    after = _random_loss(before_relu=False)
    after.vgg.load_state_dict(before.vgg.state_dict(), strict=False)
    assert isinstance(before.vgg[-1], nn.Conv2d) and len(before.vgg) == 35
    assert isinstance(after.vgg[-1], nn.ReLU) and len(after.vgg) == 36
    x = torch.rand(1, 3, 32, 32)
    fb = before.features(x)["conv5_4"]
    fa = after.features(x)["conv5_4"]
    assert (fb < 0).any() and not torch.equal(fb, fa)
    torch.testing.assert_close(fa, fb.clamp(min=0))


def test_intermediate_before_relu_tap_not_overwritten():
    torch.manual_seed(0)
    loss = _random_loss(layer_weights={"conv1_2": 1.0, "conv2_1": 1.0})
    feats = loss.features(torch.rand(1, 3, 16, 16))
    assert (feats["conv1_2"] < 0).any()  # an in-place ReLU after it would have zeroed these
    assert len(loss.vgg) == 6


def test_frozen_eval_and_gradient_to_input_only():
    loss = _random_loss(layer_weights={"conv2_2": 1.0})
    parent = nn.Sequential(loss).train()
    assert not loss.vgg.training
    assert all(not p.requires_grad for p in loss.vgg.parameters())
    sr = torch.rand(1, 3, 16, 16, requires_grad=True)
    parent[0](sr, torch.rand(1, 3, 16, 16)).backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss.vgg.parameters())


def test_fp32_under_autocast_matches_plain():
    torch.manual_seed(0)
    loss = _random_loss(layer_weights={"conv3_1": 1.0})
    sr, gt = torch.rand(1, 3, 24, 24), torch.rand(1, 3, 24, 24)
    plain = loss(sr, gt)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto = loss(sr.bfloat16(), gt.bfloat16())
    assert auto.dtype == torch.float32
    ref = loss(sr.bfloat16().float(), gt.bfloat16().float())
    torch.testing.assert_close(auto, ref)
    assert plain.dtype == torch.float32


def test_state_dict_leaves_vgg_out_and_loads():
    loss = _random_loss(layer_weights={"conv1_1": 1.0})
    parent = nn.ModuleDict({"percep": loss, "head": nn.Linear(2, 2)})
    keys = set(parent.state_dict())
    assert keys == {"head.weight", "head.bias"}
    before = loss.vgg[0].weight.clone()
    foreign = {
        f"percep.vgg.0.{k}": torch.zeros_like(v) for k, v in loss.vgg[0].state_dict().items()
    }
    parent.load_state_dict({**parent.state_dict(), **foreign}, strict=True)
    assert torch.equal(loss.vgg[0].weight, before)  # fixed ImageNet weights win


# ---------------------------------------------------------------- perceptual: weights


# torchvision's VGG19 ("E") layout: conv widths, "M" = max-pool; each conv is followed by a ReLU.
VGG19_CFG = [64, 64, "M", 128, 128, "M", *[256] * 4, "M", *[512] * 4, "M", *[512] * 4, "M"]


def test_features_match_torchvision_layout():
    from torchvision.models.vgg import cfgs

    assert cfgs["E"] == VGG19_CFG
    loss = _random_loss(layer_weights={"pool5": 1.0})
    idx = 0
    for item in VGG19_CFG:
        if item == "M":
            assert isinstance(loss.vgg[idx], nn.MaxPool2d)
            idx += 1
        else:
            assert isinstance(loss.vgg[idx], nn.Conv2d) and loss.vgg[idx].out_channels == item
            assert isinstance(loss.vgg[idx + 1], nn.ReLU)
            idx += 2
    assert idx == len(loss.vgg) == 37


def _identity_conv1_state(depth: int = 1) -> dict[str, torch.Tensor]:
    """torchvision-named VGG19 weights: conv1_1 copies its 3 input channels to outputs 0..2."""
    g = torch.Generator().manual_seed(1)
    state: dict[str, torch.Tensor] = {}
    idx, in_ch = 0, 3
    for item in VGG19_CFG:
        if idx > depth:
            break
        if item == "M":
            idx += 1
            continue
        state[f"features.{idx}.weight"] = torch.randn(item, in_ch, 3, 3, generator=g) * 0.05
        state[f"features.{idx}.bias"] = torch.randn(item, generator=g) * 0.05
        idx, in_ch = idx + 2, item  # conv + relu
    w = torch.zeros(64, 3, 3, 3)
    for c in range(3):
        w[c, c, 1, 1] = 1.0
    state["features.0.weight"] = w
    state["features.0.bias"] = torch.zeros(64)
    return state


def test_hand_value_through_identity_conv(tmp_path):
    path = tmp_path / "vgg.pth"
    torch.save(_identity_conv1_state(), path)
    gt = torch.rand(2, 3, 8, 8) * 0.5
    sr = gt + 0.1
    normed = PerceptualLoss({"conv1_1": 1.0}, pretrained_path=path)
    # mean over 64 channels of |0.1/std_c| for c < 3, 0 elsewhere
    expected = (0.1 / 0.229 + 0.1 / 0.224 + 0.1 / 0.225) / 64
    assert normed(sr, gt).item() == pytest.approx(expected, rel=1e-5)
    raw = PerceptualLoss({"conv1_1": 2.0}, use_input_norm=False, pretrained_path=path)
    assert raw(sr, gt).item() == pytest.approx(2.0 * 0.3 / 64, rel=1e-5)
    l2 = PerceptualLoss(
        {"conv1_1": 1.0}, use_input_norm=False, criterion="l2", pretrained_path=path
    )
    assert l2(sr, gt).item() == pytest.approx(3 * 0.01 / 64, rel=1e-4)


def test_pretrained_path_formats(tmp_path):
    from safetensors.torch import save_file

    state = _identity_conv1_state(depth=8)
    bare = {k.removeprefix("features."): v for k, v in state.items()}
    torch.save({"state_dict": bare}, tmp_path / "bare.pth")
    save_file(state, str(tmp_path / "vgg.safetensors"))
    for name in ("bare.pth", "vgg.safetensors"):
        loss = PerceptualLoss({"conv2_2": 1.0}, before_relu=False, pretrained_path=tmp_path / name)
        torch.testing.assert_close(loss.vgg[7].weight, state["features.7.weight"])


def test_pretrained_path_errors(tmp_path):
    with pytest.raises(PerceptualWeightsUnavailableError, match="does not exist"):
        PerceptualLoss(pretrained_path=tmp_path / "nope.pth")
    torch.save(_identity_conv1_state(depth=1), tmp_path / "short.pth")
    with pytest.raises(ValueError, match=r"short.pth lacks '2\.weight'"):
        PerceptualLoss({"conv2_1": 1.0}, pretrained_path=tmp_path / "short.pth")
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"bad\.pth"):
        PerceptualLoss({"conv1_1": 1.0}, pretrained_path=tmp_path / "bad.pth")


@pytest.fixture
def no_network(monkeypatch):
    def refuse(url, *args, **kwargs):
        raise urllib.error.URLError(f"test: no network for {url}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


def test_torchvision_cache_loading(tmp_path, monkeypatch, no_network):
    """Weights saved under torchvision's exact cache filename are found through its API."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cache = torchvision_cache_file()
    assert cache == tmp_path / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    state = _identity_conv1_state(depth=34)  # conv5_4 needs features 0..34
    cache.parent.mkdir(parents=True)
    torch.save(state, cache)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "random weights" warning
        loss = PerceptualLoss()
    torch.testing.assert_close(loss.vgg[34].weight, state["features.34.weight"])
    assert isinstance(loss.vgg[-1], nn.Conv2d)


@pytest.mark.parametrize("download", [True, False])
def test_no_weights_clear_error(tmp_path, monkeypatch, no_network, download):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(PerceptualWeightsUnavailableError) as info:
        PerceptualLoss(download=download)
    msg = str(info.value)
    assert "pretrained_path" in msg and str(tmp_path / "hub" / "checkpoints") in msg
    assert not Path(torchvision_cache_file()).exists()

"""PSNR / SSIM / RMSE / Y conversion / LPIPS: hand values, MATLAB oracles, DDP-style merging."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from esrgan_lit.metrics import LPIPS, PSNR, RMSE, SSIM, MetricUnavailableError, psnr, ssim
from esrgan_lit.ops.color import quantize_uint8, rgb_to_y, round_half_away

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _rgb(*pixel: int, h: int = 1, w: int = 1) -> torch.Tensor:
    """A (1, 3, h, w) float image of one uint8 colour."""
    return torch.tensor(pixel, dtype=torch.float64).view(1, 3, 1, 1).expand(1, 3, h, w) / 255


# --- colour -------------------------------------------------------------------------------


def test_round_half_away_from_zero() -> None:
    x = torch.tensor([0.5, 1.5, 2.5, -0.5, -2.5, 0.49999])
    assert round_half_away(x).tolist() == [1.0, 2.0, 3.0, -1.0, -3.0, 0.0]


def test_quantize_uint8_saturates_and_rounds() -> None:
    x = torch.tensor([-0.1, 0.0, 1.0, 1.2, float("nan"), 2.5 / 255, 3.5 / 255])
    assert quantize_uint8(x).tolist() == [0.0, 0.0, 255.0, 255.0, 0.0, 3.0, 4.0]
    with pytest.raises(TypeError):
        quantize_uint8(torch.tensor([1, 2]))


@pytest.mark.parametrize(
    ("rgb", "y_round", "y_float"),
    [
        ((0, 0, 0), 16, 16.0),
        ((255, 255, 255), 235, 235.0),
        ((255, 0, 0), 81, 16 + 65.481),
        ((0, 255, 0), 145, 16 + 128.553),
        ((0, 0, 255), 41, 16 + 24.966),
        # exact .5 ties: MATLAB (as in ../shared Ma *_y.png) gives 125, not 126
        ((146, 124, 97), 125, 125.5),
        ((198, 108, 43), 125, 125.5),
    ],
)
def test_rgb_to_y_hand_values(rgb: tuple[int, int, int], y_round: int, y_float: float) -> None:
    x = quantize_uint8(_rgb(*rgb))
    assert rgb_to_y(x).item() == y_round
    assert rgb_to_y(x, rounded=False).item() == pytest.approx(y_float, abs=1e-9)


def test_rgb_to_y_matches_matlab_y_images() -> None:
    """The Ma oracle's *_y.png are MATLAB rgb2ycbcr Y of skimage photos, shaved by 4."""
    data = pytest.importorskip("skimage.data")
    if not (SHARED / "metrics" / "ma").is_dir():
        pytest.skip("../shared/data absent")
    from PIL import Image

    for name in ("astronaut", "coffee"):
        rgb = torch.from_numpy(getattr(data, name)()[..., :3].copy()).permute(2, 0, 1)[None]
        y = rgb_to_y(quantize_uint8(rgb.double() / 255))[0, 0, 4:-4, 4:-4]
        ref = np.array(Image.open(SHARED / "metrics" / "ma" / f"{name}_y.png"))
        assert np.array_equal(y.numpy().astype(np.uint8), ref), name


# --- PSNR / RMSE --------------------------------------------------------------------------


def _grey_pair(
    delta: int, at: tuple[int, int], size: int = 12
) -> tuple[torch.Tensor, torch.Tensor]:
    target = torch.full((1, 1, size, size), 100 / 255, dtype=torch.float64)
    preds = target.clone()
    preds[0, 0, at[0], at[1]] = (100 + delta) / 255
    return preds, target


def test_psnr_hand_value_grey_raw_and_crop() -> None:
    preds, target = _grey_pair(10, (5, 6))
    # no crop: one pixel off by 10 in 144 -> MSE 100/144
    want = 10 * math.log10(255**2 / (100 / 144))
    assert psnr(preds, target, crop_border=0).item() == pytest.approx(want, abs=1e-10)
    # crop 4 of 12 leaves the 4x4 interior, which holds the pixel -> MSE 100/16
    want = 10 * math.log10(255**2 / (100 / 16))
    assert psnr(preds, target, crop_border=4).item() == pytest.approx(want, abs=1e-10)
    # a border pixel is shaved away: identical -> inf, as MATLAB
    preds, target = _grey_pair(10, (1, 1))
    assert math.isinf(psnr(preds, target, crop_border=4).item())


def test_psnr_rgb_and_float_y_options() -> None:
    target = torch.zeros(1, 3, 12, 12, dtype=torch.float64)
    preds = target.clone()
    preds[0, 0, 6, 6] = 10 / 255  # red channel +10
    want_rgb = 10 * math.log10(255**2 / (100 / (3 * 16)))
    got = psnr(preds, target, crop_border=4, test_y_channel=False)
    assert got.item() == pytest.approx(want_rgb, abs=1e-10)
    # Y: 16 + 65.481*10/255 = 18.5679 -> rounded 19 (diff 3), float diff 2.5679
    assert psnr(preds, target).item() == pytest.approx(10 * math.log10(255**2 * 16 / 9), abs=1e-10)
    d = 65.481 * 10 / 255
    want = 10 * math.log10(255**2 * 16 / d**2)
    assert psnr(preds, target, round_y=False).item() == pytest.approx(want, abs=1e-9)


def test_psnr_quantises_before_scoring() -> None:
    target = torch.full((1, 1, 12, 12), 0.5)
    preds = target + 0.1 / 255  # rounds to the same uint8 value
    assert math.isinf(psnr(preds, target, crop_border=0).item())


def test_metric_classes_average_per_image_not_per_batch() -> None:
    imgs, refs, want_psnr, want_mse = [], [], [], []
    for delta in (2, 4, 6, 8):
        p, t = _grey_pair(delta, (6, 6))
        imgs.append(p)
        refs.append(t)
        want_mse.append(delta**2 / 16)
        want_psnr.append(10 * math.log10(255**2 / want_mse[-1]))
    metric, rmse = PSNR(), RMSE()
    for sl in (slice(0, 1), slice(1, 4)):  # unequal batches
        metric.update(torch.cat(imgs[sl]), torch.cat(refs[sl]))
        rmse.update(torch.cat(imgs[sl]), torch.cat(refs[sl]))
    assert metric.compute().item() == pytest.approx(np.mean(want_psnr), abs=1e-10)
    # PIRM RMSE: sqrt of the mean MSE (not the mean of per-image RMSEs)
    assert rmse.compute().item() == pytest.approx(math.sqrt(np.mean(want_mse)), abs=1e-10)
    assert rmse.compute().item() != pytest.approx(np.mean(np.sqrt(want_mse)), abs=1e-3)


@pytest.mark.parametrize("cls", [PSNR, SSIM, RMSE])
def test_ddp_style_state_merge_equals_single_process(cls) -> None:
    g = torch.Generator().manual_seed(0)
    target = torch.rand(5, 3, 24, 24, generator=g)
    preds = (target + 0.05 * torch.randn(5, 3, 24, 24, generator=g)).clamp(0, 1)
    whole = cls()
    whole.update(preds, target)
    rank0, rank1 = cls(), cls()
    rank0.update(preds[:3], target[:3])
    rank1.update(preds[3:], target[3:])
    rank0.merge_state(rank1)  # reduces every state with its dist_reduce_fx, as DDP sync does
    assert rank0.count.item() == 5
    assert rank0.compute().item() == pytest.approx(whole.compute().item(), abs=1e-12)
    for name in ("total", "count"):
        assert getattr(whole, name).dim() == 0  # sum/count scalars: nothing padded or gathered


def test_bad_inputs_are_named() -> None:
    a = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(a, torch.rand(1, 3, 16, 17))
    with pytest.raises(ValueError, match="crop_border"):
        psnr(a, a, crop_border=8)
    with pytest.raises(ValueError, match=r"\(N, 3\|1, H, W\)"):
        psnr(torch.rand(1, 2, 16, 16), torch.rand(1, 2, 16, 16))


# --- SSIM ---------------------------------------------------------------------------------


def test_ssim_identical_is_one_and_matches_independent_reference() -> None:
    metrics = pytest.importorskip("skimage.metrics")
    g = torch.Generator().manual_seed(1)
    t = torch.rand(1, 1, 40, 36, generator=g, dtype=torch.float64)
    p = (t + 0.1 * torch.randn(1, 1, 40, 36, generator=g, dtype=torch.float64)).clamp(0, 1)
    assert ssim(t, t, crop_border=0).item() == pytest.approx(1.0, abs=1e-12)
    pq, tq = quantize_uint8(p)[0, 0].numpy(), quantize_uint8(t)[0, 0].numpy()
    ref = metrics.structural_similarity(
        pq, tq, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert ssim(p, t, crop_border=0).item() == pytest.approx(ref, abs=1e-9)


def test_ssim_rgb_averages_channels() -> None:
    g = torch.Generator().manual_seed(2)
    t = torch.rand(2, 3, 30, 30, generator=g)
    p = (t + 0.1 * torch.randn(2, 3, 30, 30, generator=g)).clamp(0, 1)
    per_channel = torch.stack(
        [ssim(p[:, c : c + 1], t[:, c : c + 1], crop_border=4) for c in range(3)]
    ).mean(0)
    got = ssim(p, t, crop_border=4, test_y_channel=False)
    assert torch.allclose(got, per_channel, atol=1e-12)


# --- MATLAB oracle: Set5 bicubic x4 -------------------------------------------------------

SET5_REF = {  # ../shared/data/README.md: MATLAB protocol, per image
    "baby": (31.77, 0.8564),
    "bird": (30.18, 0.8731),
    "butterfly": (22.10, 0.7368),
    "head": (31.58, 0.7532),
    "woman": (26.46, 0.8317),
}


def test_set5_bicubic_x4_matches_matlab_protocol() -> None:
    root = SHARED / "benchmarks" / "Set5"
    if not root.is_dir():
        pytest.skip("../shared/data/benchmarks/Set5 absent")
    from PIL import Image

    from esrgan_lit.ops.imresize import imresize

    p_metric, s_metric = PSNR(crop_border=4, test_y_channel=True), SSIM(crop_border=4)
    for name, (want_p, want_s) in SET5_REF.items():
        hr = np.array(Image.open(root / f"{name}.png").convert("RGB"))
        hr = torch.from_numpy(hr).permute(2, 0, 1).double()[None] / 255
        h, w = hr.shape[-2:]
        hr = hr[..., : h - h % 4, : w - w % 4]
        lr = quantize_uint8(imresize(hr, 0.25)) / 255
        sr = imresize(lr, 4.0).clamp(0, 1).float()
        p, s = psnr(sr, hr.float()).item(), ssim(sr, hr.float()).item()
        assert p == pytest.approx(want_p, abs=0.006), name  # table rounds to 0.01
        assert s == pytest.approx(want_s, abs=0.00006), name
        p_metric.update(sr, hr.float())
        s_metric.update(sr, hr.float())
    assert p_metric.compute().item() == pytest.approx(28.4189, abs=0.005)
    assert s_metric.compute().item() == pytest.approx(0.8102, abs=0.0005)


# --- LPIPS --------------------------------------------------------------------------------

# torchvision AlexNet `features` parameter shapes (the only part LPIPS uses)
_ALEX = {
    0: (64, 3, 11, 11),
    3: (192, 64, 5, 5),
    6: (384, 192, 3, 3),
    8: (256, 384, 3, 3),
    10: (256, 256, 3, 3),
}
_ALEX_FILE = "alexnet-owt-7be5be79.pth"  # basename of AlexNet_Weights.IMAGENET1K_V1.url


def _fake_alexnet(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for i, shape in _ALEX.items():
        fan_in = shape[1] * shape[2] * shape[3]
        sd[f"features.{i}.weight"] = torch.randn(shape, generator=g) * math.sqrt(2 / fan_in)
        sd[f"features.{i}.bias"] = torch.zeros(shape[0])
    return sd


@pytest.fixture
def no_download(monkeypatch):
    """Any attempt to fetch weights or open a socket fails the test."""
    import socket

    import torchvision.models._api as tv_api

    def boom(*a, **k):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", boom)
    monkeypatch.setattr(tv_api, "load_state_dict_from_url", boom)
    monkeypatch.setattr(socket.socket, "connect", boom)


@pytest.fixture
def torch_home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    return tmp_path / "torch_home"


def test_lpips_filename_is_torchvisions() -> None:
    import torchvision

    url = torchvision.models.AlexNet_Weights.IMAGENET1K_V1.url
    assert url.rsplit("/", 1)[-1] == _ALEX_FILE


def test_lpips_unavailable_offline(torch_home, no_download) -> None:
    with pytest.raises(MetricUnavailableError) as info:
        LPIPS(net="alex", version="0.1")
    msg = str(info.value)
    assert "\n" not in msg and _ALEX_FILE in msg and "backbone_path" in msg
    with pytest.raises(MetricUnavailableError, match=r"nope\.pth"):
        LPIPS(backbone_path=torch_home / "nope.pth")


def test_lpips_loads_cached_weights_without_download(torch_home, no_download) -> None:
    sd = _fake_alexnet()
    path = torch_home / "hub" / "checkpoints" / _ALEX_FILE
    path.parent.mkdir(parents=True)
    torch.save(sd, path)
    metric = LPIPS(net="alex", version="0.1")
    net = metric.lpips_net
    assert torch.equal(net.net.slice1[0].weight, sd["features.0.weight"])
    assert torch.equal(getattr(net.net.slice5, "10").weight, sd["features.10.weight"])
    assert not any(k.startswith(("_lpips", "net.")) for k in metric.state_dict())

    g = torch.Generator().manual_seed(3)
    x, y = torch.rand(2, 3, 48, 48, generator=g), torch.rand(2, 3, 48, 48, generator=g)
    metric.update(x, x)
    assert metric.compute().item() == pytest.approx(0.0, abs=1e-7)
    metric.reset()
    metric.update(x, y)
    got = metric.compute().item()
    assert got > 0.01
    # [0, 1] inputs are mapped to LPIPS's [-1, 1] range before the network
    raw = net(2 * x - 1, 2 * y - 1).mean().item()
    assert got == pytest.approx(raw, rel=1e-5)
    assert abs(net(x, y).mean().item() - got) > 1e-4  # the mapping matters
    # grey is scored as three equal channels
    metric.reset()
    metric.update(x[:, :1], y[:, :1])
    raw = net(2 * x[:, :1].expand(-1, 3, -1, -1) - 1, 2 * y[:, :1].expand(-1, 3, -1, -1) - 1)
    assert metric.compute().item() == pytest.approx(raw.mean().item(), rel=1e-5)


def test_lpips_explicit_path_and_bad_files(tmp_path, torch_home, no_download) -> None:
    good = tmp_path / "alex_features.pth"
    torch.save({"state_dict": _fake_alexnet(1)}, good)
    assert LPIPS(backbone_path=good).backbone_path == str(good)
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(MetricUnavailableError, match=r"corrupt\.pth"):
        LPIPS(backbone_path=corrupt)
    wrong = tmp_path / "wrong.pth"
    sd = _fake_alexnet()
    sd["features.3.weight"] = torch.zeros(8, 8, 3, 3)
    torch.save(sd, wrong)
    with pytest.raises(MetricUnavailableError, match=r"features\.3\.weight"):
        LPIPS(backbone_path=wrong)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("cls", [PSNR, SSIM, RMSE])
def test_cuda_agrees_with_cpu(cls) -> None:
    g = torch.Generator().manual_seed(7)
    target = torch.rand(3, 3, 40, 40, generator=g)
    preds = (target + 0.05 * torch.randn(3, 3, 40, 40, generator=g)).clamp(0, 1)
    cpu, gpu = cls(), cls().cuda()
    cpu.update(preds, target)
    gpu.update(preds.cuda(), target.cuda())
    assert gpu.compute().item() == pytest.approx(cpu.compute().item(), abs=1e-4)

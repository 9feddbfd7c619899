"""NIQE: the MATLAB oracle, the LIVE-code column of the Ma oracle, batching and plumbing."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from esrgan_lit.metrics import NIQE, MetricUnavailableError
from esrgan_lit.metrics.niqe import _aggd, load_pristine_params, niqe, niqe_from_y

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _png(path: Path) -> torch.Tensor:
    from PIL import Image

    a = np.array(Image.open(path))
    t = torch.from_numpy(a).double() / 255
    return t[None, None] if t.dim() == 2 else t.permute(2, 0, 1)[None, :3]


def test_baboon_matches_matlab_niqe() -> None:
    path = SHARED / "oracles" / "test_scripts_baboon.png"
    if not path.is_file():
        pytest.skip("../shared/data absent")
    got = niqe(_png(path), crop_border=0).item()
    assert got == pytest.approx(5.72957338, abs=1e-3)  # MATLAB R2021a, Y channel, no crop
    # a port with float Y or without exact zeros lands 4e-4 .. 0.1 away; we are far closer
    assert got == pytest.approx(5.72957338, abs=1e-5)


def test_ma_oracle_niqe_column() -> None:
    """LIVE release code (Octave): equal to MATLAB on chelsea, within ~0.05 elsewhere (README)."""
    root = SHARED / "metrics" / "ma"
    if not (root / "ma_reference.npz").is_file():
        pytest.skip("../shared/data absent")
    ref = np.load(root / "ma_reference.npz")
    params = load_pristine_params()
    for name, want in zip(ref["names"], ref["niqe"]):
        if name not in ("chelsea_y.png", "coffee_y.png", "rocket_y.png"):
            continue  # keep the test fast; the others behave alike
        y = _png(root / str(name)) * 255  # already MATLAB's uint8 Y, shaved
        got = niqe_from_y(y, params).item()
        tol = 1e-6 if name == "chelsea_y.png" else 0.06
        assert got == pytest.approx(float(want), abs=tol), name


def test_resource_params_equal_shared_copy() -> None:
    shared = SHARED / "metrics" / "niqe_pris_params.npz"
    if not shared.is_file():
        pytest.skip("../shared/data absent")
    ours, theirs = load_pristine_params(), load_pristine_params(shared)
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), key


def test_params_bad_path(tmp_path: Path) -> None:
    with pytest.raises(MetricUnavailableError, match=r"missing\.npz"):
        NIQE(params_path=tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    np.savez(bad, mu_pris_param=np.zeros((1, 3)))
    with pytest.raises(MetricUnavailableError, match="mu_pris_param"):
        load_pristine_params(bad)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's mean of an empty side
def test_aggd_equals_full_argmin_search() -> None:
    """The nearest-grid-point shortcut must pick what MATLAB's min over the whole grid picks."""
    g = torch.Generator().manual_seed(0)
    shape = torch.rand(64, 1, generator=g, dtype=torch.float64) * 3 + 0.3
    v = torch.randn(64, 500, generator=g, dtype=torch.float64)
    v = torch.sign(v) * v.abs() ** shape * torch.where(v < 0, 0.7, 1.3)
    v[0] = torch.rand(500, generator=g, dtype=torch.float64)  # no negatives: NaN side
    alpha, bl, br = _aggd(v)
    gam = torch.arange(9801, dtype=torch.float64) * 0.001 + 0.2
    r = torch.exp(2 * torch.lgamma(2 / gam) - torch.lgamma(1 / gam) - torch.lgamma(3 / gam))
    for i in range(v.shape[0]):
        x = v[i].numpy()
        left, right = np.sqrt(np.mean(x[x < 0] ** 2)), np.sqrt(np.mean(x[x > 0] ** 2))
        gh = left / right
        rhat = np.mean(np.abs(x)) ** 2 / np.mean(x**2)
        rn = rhat * (gh**3 + 1) * (gh + 1) / (gh**2 + 1) ** 2
        idx = 0 if np.isnan(rn) else int(np.argmin((r.numpy() - rn) ** 2))
        assert alpha[i].item() == pytest.approx(gam[idx].item(), abs=1e-12), i
        k = math.sqrt(math.gamma(1 / gam[idx].item()) / math.gamma(3 / gam[idx].item()))
        if not np.isnan(left):
            assert bl[i].item() == pytest.approx(left * k, rel=1e-10)
        assert br[i].item() == pytest.approx(right * k, rel=1e-10)
    assert alpha[0].item() == pytest.approx(0.2) and math.isnan(bl[0].item())


def _photo(seed: int, h: int = 200, w: int = 210) -> torch.Tensor:
    """A smooth random RGB 'photo' (blurred noise) in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, h // 4, w // 4, generator=g)
    x = torch.nn.functional.interpolate(x, size=(h, w), mode="bicubic", align_corners=False)
    return (x + 0.05 * torch.rand(1, 3, h, w, generator=g)).clamp(0, 1)


def test_batched_equals_single_and_metric_averages() -> None:
    a, b = _photo(1), _photo(2)
    params = load_pristine_params()
    single = torch.cat([niqe(a, params=params), niqe(b, params=params)])
    batched = niqe(torch.cat([a, b]), params=params)
    assert torch.allclose(batched, single, rtol=0, atol=1e-10)
    assert torch.isfinite(single).all() and (single > 0).all()
    assert abs(single[0] - single[1]).item() > 1e-3  # different images, different scores
    metric = NIQE()
    metric.update(a)
    metric.update(b)
    assert metric.compute().item() == pytest.approx(single.mean().item(), abs=1e-10)
    other = NIQE()
    other.update(b)
    half = NIQE()
    half.update(a)
    half.merge_state(other)  # DDP-style reduction of sum/count states
    assert half.compute().item() == pytest.approx(single.mean().item(), abs=1e-10)


def test_grey_crop_and_y_options() -> None:
    rgb = _photo(3)
    from esrgan_lit.ops.color import quantize_uint8, rgb_to_y

    y = rgb_to_y(quantize_uint8(rgb)) / 255
    assert niqe(y).item() == pytest.approx(niqe(rgb).item(), abs=1e-12)  # grey = raw values
    cropped = niqe(rgb[..., 4:-4, 4:-4]).item()
    assert NIQE(crop_border=4)._params is not None
    assert niqe(rgb, crop_border=4).item() == pytest.approx(cropped, abs=1e-12)
    assert niqe(rgb, round_y=False).item() != pytest.approx(niqe(rgb).item(), abs=1e-6)


def test_flat_image_scores_nan_not_a_number_made_up() -> None:
    assert math.isnan(niqe(torch.full((1, 1, 96, 96), 0.5)).item())


def test_too_small_image_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="96x96"):
        niqe(torch.rand(1, 3, 95, 200))


def test_cpu_threads_restored() -> None:
    before = torch.get_num_threads()
    niqe(_photo(4, 100, 100), cpu_threads=1)
    assert torch.get_num_threads() == before


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_agrees_with_cpu() -> None:
    x = torch.cat([_photo(5), _photo(6)])
    cpu = niqe(x)
    gpu = niqe(x.cuda())
    assert gpu.device.type == "cuda"
    assert torch.allclose(gpu.cpu(), cpu, rtol=0, atol=1e-4)

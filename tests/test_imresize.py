"""MATLAB-exact bicubic: bit-exact against MATLAB outputs, and against an independent reference."""

from __future__ import annotations

import importlib
import math
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch

from esrgan_lit.ops import imresize

ORACLES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "oracles"


def _load(name: str) -> np.ndarray:
    from PIL import Image

    path = ORACLES / name
    if not path.is_file():
        pytest.skip(f"shared oracle {path} absent")
    return np.array(Image.open(path).convert("RGB"))


def _matlab_uint8(y: torch.Tensor) -> np.ndarray:
    """MATLAB's double -> uint8: round half away from zero, saturate."""
    return torch.floor(y.double() + 0.5).clamp(0, 255).to(torch.uint8).numpy()


def _reference(img: np.ndarray, out_h: int, out_w: int, antialias: bool = True) -> np.ndarray:
    """Independent float64 MATLAB-bicubic reference: explicit loops, explicit mirror function."""

    def kernel(t: float) -> float:
        a = abs(t)
        if a <= 1:
            return 1.5 * a**3 - 2.5 * a**2 + 1
        if a <= 2:
            return -0.5 * a**3 + 2.5 * a**2 - 4 * a + 2
        return 0.0

    def mirror(j: int, n: int) -> int:  # 0-based symmetric padding: ... 1 0 | 0 1 ... n-1 | n-1 ...
        period = 2 * n
        j %= period
        return j if j < n else period - 1 - j

    def resize_1d(line: np.ndarray, out_len: int) -> np.ndarray:
        n = line.shape[0]
        s = out_len / n
        stretch = s if (s < 1 and antialias) else 1.0
        support = 2.0 / stretch
        res = np.zeros((out_len, *line.shape[1:]))
        for o in range(out_len):
            centre = (o + 1) / s + 0.5 * (1 - 1 / s)  # 1-based input coordinate
            first = math.floor(centre - support)
            taps = range(first, first + math.ceil(2 * support) + 2)
            w = np.array([stretch * kernel(stretch * (centre - t)) for t in taps])
            w /= w.sum()
            for wk, t in zip(w, taps):
                res[o] += wk * line[mirror(t - 1, n)]
        return res

    rows_first = (out_h / img.shape[0]) <= (out_w / img.shape[1])
    x = img.astype(np.float64)
    if rows_first:
        x = resize_1d(x, out_h)
        x = resize_1d(x.swapaxes(0, 1), out_w).swapaxes(0, 1)
    else:
        x = resize_1d(x.swapaxes(0, 1), out_w).swapaxes(0, 1)
        x = resize_1d(x, out_h)
    return x


@pytest.mark.parametrize("name", ["baboon", "comic"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("unit_range", [False, True])
def test_bit_exact_against_matlab(name: str, dtype: torch.dtype, unit_range: bool) -> None:
    gt = _load(f"gt_{name}.png")
    lq = _load(f"lq_{name}.png")
    x = torch.from_numpy(gt).permute(2, 0, 1).to(dtype)
    if unit_range:
        x = x / 255
    y = imresize(x, 1 / 4)
    assert y.dtype == dtype and y.shape == (3, *lq.shape[:2])
    if unit_range:
        y = y.double() * 255
    got = _matlab_uint8(y).transpose(1, 2, 0)
    assert np.array_equal(got, lq), f"{(got != lq).sum()} pixels differ from MATLAB"


def test_batched_and_autograd_paths_match_matlab() -> None:
    gt = _load("gt_comic.png")
    lq = _load("lq_comic.png")
    x = torch.from_numpy(gt).permute(2, 0, 1).double()
    batch = torch.stack([x, x.flip(-1)])
    y = imresize(batch, 0.25)
    assert y.shape == (2, 3, 90, 60)
    assert np.array_equal(_matlab_uint8(y[0]).transpose(1, 2, 0), lq)
    # the gather path (taken for autograd and non-CPU devices) gives the same numbers
    xg = x.clone().requires_grad_(True)
    yg = imresize(xg, 0.25)
    torch.testing.assert_close(yg.detach(), y[0], rtol=0, atol=1e-9)
    yg.sum().backward()
    assert xg.grad is not None and torch.isfinite(xg.grad).all()


def test_upscale_x4_against_independent_reference() -> None:
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 1, size=(7, 9, 3))
    ref = _reference(img, 28, 36)
    got = imresize(torch.from_numpy(img).permute(2, 0, 1), 4).permute(1, 2, 0).numpy()
    assert got.shape == (28, 36, 3)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)
    # float32 in, float32 out, close to the float64 answer
    got32 = imresize(torch.from_numpy(img).permute(2, 0, 1).float(), 4)
    assert got32.dtype == torch.float32
    np.testing.assert_allclose(got32.permute(1, 2, 0).numpy(), ref, atol=1e-5)


@pytest.mark.parametrize(
    ("size", "antialias"), [((5, 13), True), ((11, 4), True), ((6, 6), False), ((17, 23), True)]
)
def test_arbitrary_sizes_against_reference(size: tuple[int, int], antialias: bool) -> None:
    rng = np.random.default_rng(1)
    img = rng.uniform(0, 255, size=(12, 10, 2))
    ref = _reference(img, *size, antialias=antialias)
    x = torch.from_numpy(img).permute(2, 0, 1)
    got = imresize(x, size=size, antialias=antialias).permute(1, 2, 0).numpy()
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-9)


def test_half_precision_inputs_keep_their_dtype() -> None:
    x = torch.rand(1, 3, 16, 12)
    for dtype in (torch.float16, torch.bfloat16):
        y = imresize(x.to(dtype), 0.5)
        assert y.dtype == dtype and y.shape == (1, 3, 8, 6)
        torch.testing.assert_close(y.float(), imresize(x, 0.5), rtol=0, atol=1e-2)


def test_output_size_is_ceil_and_constant_is_preserved() -> None:
    x = torch.full((1, 3, 10, 7), 0.3, dtype=torch.float64)
    y = imresize(x, 1 / 3)
    assert y.shape == (1, 3, 4, 3)  # ceil(10/3), ceil(7/3)
    torch.testing.assert_close(y, torch.full_like(y, 0.3))
    assert imresize(x[0], (0.5, 2)).shape == (3, 5, 14)


def test_downscale_antialiasing() -> None:
    # every 4th column lit: the stretched kernel averages it to its mean 0.25 (away from the
    # borders); without antialiasing bicubic samples between the dark columns: -1/16 everywhere
    x = torch.zeros(1, 16, 32, dtype=torch.float64)
    x[:, :, ::4] = 1
    y = imresize(x, 0.25)
    torch.testing.assert_close(y[..., 2:6], torch.full_like(y[..., 2:6], 0.25))
    y_noaa = imresize(x, 0.25, antialias=False)
    torch.testing.assert_close(y_noaa, torch.full_like(y_noaa, -1 / 16))


def test_bad_inputs_are_clear() -> None:
    x = torch.rand(3, 8, 8)
    with pytest.raises(TypeError, match="float"):
        imresize((x * 255).to(torch.uint8), 0.5)
    with pytest.raises(ValueError, match="exactly one"):
        imresize(x)
    with pytest.raises(ValueError, match="exactly one"):
        imresize(x, 0.5, size=(4, 4))
    with pytest.raises(ValueError, match="shape"):
        imresize(torch.rand(8, 8), 0.5)
    with pytest.raises(ValueError, match="positive"):
        imresize(x, 0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu() -> None:
    x = torch.rand(2, 3, 37, 41, dtype=torch.float64)
    for scale in (0.25, 4):
        cpu = imresize(x, scale)
        gpu = imresize(x.cuda(), scale).cpu()
        torch.testing.assert_close(gpu, cpu, rtol=0, atol=1e-9)
        gpu32 = imresize(x.float().cuda(), scale).cpu()
        torch.testing.assert_close(gpu32.double(), cpu, rtol=0, atol=1e-4)


def _general_path(x: torch.Tensor, scale: float, antialias: bool = True) -> torch.Tensor:
    """The sparse-matrix path: integer-factor fast paths and embedding-bag rows switched off."""
    module = importlib.import_module("esrgan_lit.ops.imresize")
    with (
        mock.patch.object(module, "_periodic", lambda *args: None),
        mock.patch.object(module, "_resize_rows_bags", module._resize_rows_cpu),
    ):
        return imresize(x, scale, antialias=antialias)


@pytest.mark.parametrize("scale", [1 / 2, 1 / 3, 1 / 4, 2, 3, 4])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_integer_factor_fast_path_matches_general_path(scale: float, dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(3)
    module = importlib.import_module("esrgan_lit.ops.imresize")
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    sizes = [(9, 7), (12, 16), (31, 17), (40, 13), (5, 64), (99, 101)]
    taken = 0
    for h, w in sizes:
        for lead in [(3,), (2, 1), (2, 3)]:  # (3, h, w) stacked slices; batches
            x = torch.rand(*lead, h, w, generator=gen, dtype=dtype)
            for antialias in (True, False):
                fast = imresize(x, scale, antialias=antialias)
                ref = _general_path(x, scale, antialias)
                assert fast.shape == ref.shape and fast.dtype == dtype
                torch.testing.assert_close(fast, ref, rtol=0, atol=tol)
        for n in (h, w):
            taken += module._periodic(n, math.ceil(n * scale), scale, True) is not None
    assert taken >= 5  # the fast path really ran (incl. heights not divisible by the factor)


def test_fast_path_result_does_not_share_the_workspace() -> None:
    x = torch.rand(3, 64, 48)
    first = imresize(x, 0.25)
    keep = first.clone()
    imresize(torch.rand(3, 64, 48), 0.25)  # reuses the intermediate buffer
    imresize(torch.rand(3, 64, 48).double(), 0.5)
    torch.testing.assert_close(first, keep, rtol=0, atol=0)


def test_fast_path_on_views_and_mixed_factors() -> None:
    # strided / offset inputs and one integer axis next to a non-integer one
    base = torch.rand(4, 3, 70, 90, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    for x in (base[1:3], base[..., 3:67, 5:85], base.transpose(-1, -2)):
        for scale in (0.25, 3, (0.5, 0.3), (2, 0.75)):
            fast = imresize(x, scale)
            torch.testing.assert_close(fast, _general_path(x, scale), rtol=0, atol=1e-12)


def test_workspace_survives_leaving_inference_mode() -> None:
    """A buffer first made under inference_mode must stay writable for later plain calls."""
    importlib.import_module("esrgan_lit.ops.imresize")._WORKSPACE.buf = None
    x = torch.rand(3, 64, 48)
    with torch.inference_mode():
        first = imresize(x, 0.25)
    second = imresize(x, 0.25)
    torch.testing.assert_close(first, second, rtol=0, atol=0)


def _taken(module: object, name: str) -> tuple[mock._patch, list[bool]]:
    """Patch ``module.name`` to record, per call, whether it produced a result (not None)."""
    calls: list[bool] = []
    real = getattr(module, name)

    def spy(*args: object) -> object:
        res = real(*args)
        calls.append(res is not None)
        return res

    return mock.patch.object(module, name, spy), calls


@pytest.mark.parametrize("scale", [1 / 2, 1 / 3, 1 / 4, 2, 3, 4, 0.3, (0.5, 0.75), (3, 1 / 3)])
def test_float32_bags_and_stacked_conv_match_general_path(scale: float) -> None:
    """Embedding-bag rows + one convolution over stacked rows, on odd and tiny sizes, batches."""
    module = importlib.import_module("esrgan_lit.ops.imresize")
    gen = torch.Generator().manual_seed(7)
    patch, calls = _taken(module, "_resize_cols_conv")
    with patch:
        for h, w in [(1, 1), (2, 3), (5, 4), (9, 7), (17, 18), (33, 35), (64, 61), (12, 40)]:
            for lead in [(1,), (3,), (2, 3)]:
                x = torch.rand(*lead, h, w, generator=gen) * 255
                fast = imresize(x, scale)
                ref = _general_path(x, scale)
                assert fast.shape == ref.shape and fast.dtype == torch.float32
                assert fast.is_contiguous()
                torch.testing.assert_close(fast, ref, rtol=0, atol=1e-6 * 255)
    if not isinstance(scale, tuple) and (scale >= 2 or 1 / scale in (2, 3, 4)):
        assert calls and all(calls)  # the convolution ran (some widths do not stack: fallback)


def test_stacked_conv_fallback_when_rows_do_not_stack() -> None:
    # 41 columns at x1/4: 11 outputs, 44 != 41 input samples per row -> transposed row kernel
    module = importlib.import_module("esrgan_lit.ops.imresize")
    assert module._conv_plan(41, 11, 0.25, True, torch.float32) is None
    assert module._conv_plan(44, 11, 0.25, True, torch.float32) is not None
    x = torch.rand(2, 3, 37, 41, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(imresize(x, 0.25), _general_path(x, 0.25), rtol=0, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_non_contiguous_inputs(dtype: torch.dtype) -> None:
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    base = torch.rand(4, 3, 70, 92, dtype=dtype, generator=torch.Generator().manual_seed(9))
    hwc = base[0].permute(1, 2, 0).contiguous().permute(2, 0, 1)  # an HWC image seen as CHW
    for x in (base[1:3], base[..., 2:66, 4:88], base.transpose(-1, -2), base[..., ::2, :], hwc):
        for scale in (0.25, 0.5, 2):
            fast = imresize(x, scale)
            torch.testing.assert_close(fast, _general_path(x, scale), rtol=0, atol=tol)


def test_cached_plans_made_under_inference_mode_work_outside() -> None:
    module = importlib.import_module("esrgan_lit.ops.imresize")
    module._bags.cache_clear()
    module._conv_plan.cache_clear()
    x = torch.rand(3, 64, 48)
    with torch.inference_mode():
        first = imresize(x, 0.25)
    with torch.enable_grad():
        second = imresize(x, 0.25)
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    plan = module._conv_plan(48, 12, 0.25, True, torch.float32)
    assert not plan.weight.is_inference()
    assert not any(t.is_inference() for t in module._bags(64, 16, 0.25, True, 3, torch.float32))

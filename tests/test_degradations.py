"""esrgan_lit.degradations: kernels against their formulas, noise statistics, JPEG against
Pillow, USM, the pool, and the whole RealESRGANDegradation (range, shape, determinism, options)."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch

from esrgan_lit.degradations import (
    DEFAULTS,
    KERNEL_TYPES,
    PairPool,
    RealESRGANDegradation,
    USMSharp,
    add_gaussian_noise,
    add_poisson_noise,
    anisotropic_kernels,
    jpeg,
    sample_blur_kernels,
    sample_final_sinc,
    sinc_kernels,
)


def _t(*v: float) -> torch.Tensor:
    return torch.tensor(v, dtype=torch.float64)


def _moments(k: torch.Tensor) -> torch.Tensor:
    """Second-moment (covariance) matrix of a centred kernel."""
    half = k.shape[-1] // 2
    ax = torch.arange(-half, half + 1, dtype=k.dtype)
    yy, xx = torch.meshgrid(ax, ax, indexing="ij")
    return torch.tensor(
        [[(k * xx * xx).sum(), (k * xx * yy).sum()], [(k * xx * yy).sum(), (k * yy * yy).sum()]]
    )


# ------------------------------------------------------------------ kernels
@pytest.mark.parametrize("kind", [0, 1, 2])
def test_kernels_sum_to_one_and_point_symmetric(kind):
    k = anisotropic_kernels(
        torch.tensor([kind] * 3),
        _t(0.7, 2.0, 3.0),
        _t(1.5, 0.4, 3.0),
        _t(0.3, -1.2, 0.0),
        _t(0.6, 1.0, 3.5),
        torch.tensor([7, 15, 21]),
        21,
    )
    assert k.shape == (3, 21, 21)
    torch.testing.assert_close(k.sum(dim=(-2, -1)), torch.ones(3, dtype=k.dtype))
    torch.testing.assert_close(k, k.flip(-1).flip(-2))  # k(x) == k(-x)
    assert (k >= 0).all()
    # the size-7 kernel is zero outside its central 7x7 window
    assert k[0, :7].abs().sum() == 0 and k[0, :, 14:].abs().sum() == 0


@pytest.mark.parametrize(
    ("sx", "sy", "theta"), [(1.0, 1.0, 0.0), (2.0, 0.8, 0.6), (0.9, 2.2, -2.0)]
)
def test_gaussian_second_moments_match_sigma_and_angle(sx, sy, theta):
    k = anisotropic_kernels(
        torch.tensor([0]), _t(sx), _t(sy), _t(theta), _t(1.0), torch.tensor([21]), 21
    )[0]
    c, s = math.cos(theta), math.sin(theta)
    rot = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    sigma = rot @ torch.diag(_t(sx**2, sy**2)) @ rot.T  # BasicSR's sigma_matrix2
    torch.testing.assert_close(_moments(k), sigma, rtol=0.01, atol=1e-3)


def test_generalized_and_plateau_follow_their_formulas():
    q_sig = _t(1.3)
    args = (q_sig, q_sig, _t(0.0), _t(1.0), torch.tensor([21]), 21)
    gauss = anisotropic_kernels(torch.tensor([0]), *args)
    # generalized Gaussian with beta = 1 is the Gaussian
    torch.testing.assert_close(anisotropic_kernels(torch.tensor([1]), *args), gauss)
    beta = 1.7
    plateau = anisotropic_kernels(
        torch.tensor([2]), q_sig, q_sig, _t(0.0), _t(beta), torch.tensor([21]), 21
    )[0]
    # ratio of two points: 1 / (1 + (r^2 / sigma^2)^beta) up to normalisation
    f = lambda r2: 1 / (1 + (r2 / 1.3**2) ** beta)  # noqa: E731
    assert plateau[10, 13] / plateau[10, 10] == pytest.approx(f(9.0) / f(0.0), rel=1e-9)
    gen = anisotropic_kernels(
        torch.tensor([1]), q_sig, q_sig, _t(0.0), _t(beta), torch.tensor([21]), 21
    )[0]
    g = lambda r2: math.exp(-0.5 * (r2 / 1.3**2) ** beta)  # noqa: E731
    assert gen[12, 11] / gen[10, 10] == pytest.approx(g(5.0) / g(0.0), rel=1e-9)


def test_isotropic_types_are_rotation_symmetric_and_aniso_are_not():
    g = torch.Generator().manual_seed(0)
    for name in KERNEL_TYPES:
        probs = [1.0 if n == name else 0.0 for n in KERNEL_TYPES]
        k = sample_blur_kernels(64, kernel_prob=probs, sinc_prob=0.0, generator=g).double()
        torch.testing.assert_close(k.sum(dim=(-2, -1)), torch.ones(64, dtype=k.dtype))
        transposed = (k - k.transpose(-1, -2)).abs().amax(dim=(-2, -1))
        if name.endswith("_iso") or name == "iso":
            assert transposed.max() < 1e-6, name
        else:
            assert (transposed > 1e-4).float().mean() > 0.5, name


def test_sinc_cutoff():
    """Frequency response ~1 well below the cut-off and ~0 well above it (ringing aside)."""
    cutoff = math.pi / 2
    k = sinc_kernels(_t(cutoff), torch.tensor([21]), 21)[0]
    torch.testing.assert_close(k.sum(), torch.tensor(1.0, dtype=k.dtype))
    torch.testing.assert_close(k, k.T)
    n = 256
    spec = torch.fft.fft2(torch.nn.functional.pad(k, (0, n - 21, 0, n - 21))).abs()
    freqs = torch.fft.fftfreq(n, dtype=torch.float64) * 2 * math.pi
    radial = torch.sqrt(freqs.view(-1, 1) ** 2 + freqs.view(1, -1) ** 2)
    assert (spec[radial < 0.6 * cutoff] - 1).abs().max() < 0.15
    assert spec[(radial > 1.4 * cutoff) & (radial < math.pi)].max() < 0.15


def test_final_sinc_probability_and_identity():
    g = torch.Generator().manual_seed(1)
    ident = sample_final_sinc(200, prob=0.0, generator=g)
    assert (ident[:, 10, 10] == 1).all() and ident.sum() == 200
    mixed = sample_final_sinc(2000, prob=0.8, generator=g)
    share = (mixed[:, 10, 10] < 1).float().mean()
    assert 0.75 < share < 0.85


def test_sample_blur_kernels_sinc_share_and_sizes():
    g = torch.Generator().manual_seed(2)
    k = sample_blur_kernels(4000, sinc_prob=1.0, generator=g)
    # a sinc has negative lobes for most cut-offs, a Gaussian-family kernel never
    assert (k.amin(dim=(-2, -1)) < 0).float().mean() > 0.5
    # wide Gaussians: non-zero over the whole window, so the support shows the sampled size
    k = sample_blur_kernels(2000, sinc_prob=0.0, sigma_range=(3.0, 3.0), generator=g)
    assert (k >= 0).all()
    nonzero_rows = (k.abs().sum(-1) > 0).sum(-1)
    assert set(nonzero_rows.unique().tolist()) == set(range(7, 22, 2))
    with pytest.raises(ValueError, match="kernel_list"):
        sample_blur_kernels(2, kernel_list=["box"], kernel_prob=[1.0])


# ------------------------------------------------------------------ noise
def test_gaussian_noise_statistics_colour_and_grey():
    img = torch.full((4, 3, 128, 128), 0.5)
    g = torch.Generator().manual_seed(0)
    out = add_gaussian_noise(img, (10.0, 10.0), gray_prob=0.0, generator=g)
    noise = out - img
    assert noise.std().item() == pytest.approx(10 / 255, rel=0.03)
    assert abs(noise.mean().item()) < 1e-3
    assert not torch.equal(noise[:, 0], noise[:, 1])
    grey = add_gaussian_noise(img, (10.0, 10.0), gray_prob=1.0, generator=g) - img
    torch.testing.assert_close(grey[:, 0], grey[:, 1])
    assert (out >= 0).all() and (out <= 1).all()


def test_poisson_noise_statistics():
    """Var = x / v * scale^2 with v = 256 levels (every 8-bit level present)."""
    levels = torch.arange(256, dtype=torch.float32) / 255
    img = levels.repeat(3, 512, 1)[None].expand(2, 3, 512, 256).contiguous()
    g = torch.Generator().manual_seed(0)
    noise = add_poisson_noise(img, (2.0, 2.0), gray_prob=0.0, generator=g) - img
    mid = (img > 0.3) & (img < 0.7)  # away from the clipping at 0 and 1
    expected = (img[mid] / 256 * 4).mean()
    assert noise[mid].var().item() == pytest.approx(expected.item(), rel=0.05)
    assert abs(noise[mid].mean().item()) < 2e-3
    grey = add_poisson_noise(img, (2.0, 2.0), gray_prob=1.0, generator=g) - img
    torch.testing.assert_close(grey[:, 0, :, 5:250], grey[:, 1, :, 5:250])


# ------------------------------------------------------------------ JPEG
def test_jpeg_close_to_pillow():
    """kornia's codec vs Pillow at the same quality: >= 38 dB apart (measured 41-46 dB), and its
    error to the original within 1.5 dB of Pillow's (measured 0.4-0.7 dB) for q in 30..95."""
    from PIL import Image

    skimage = pytest.importorskip("skimage")
    img = skimage.data.astronaut()[100:292, 100:292]
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    psnr = lambda a, b: -10 * torch.log10(((a - b) ** 2).mean()).item()  # noqa: E731
    for q in (30, 50, 75, 95):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", quality=q)
        ref = torch.from_numpy(np.array(Image.open(buf))).permute(2, 0, 1)[None].float() / 255
        out = jpeg(x, torch.tensor([float(q)]))
        assert psnr(out, ref) >= 38.0, q
        assert abs(psnr(out, x) - psnr(ref, x)) < 1.5, q
    lo, hi = jpeg(x.expand(2, -1, -1, -1), torch.tensor([10.0, 95.0]))
    assert psnr(lo, x) < psnr(hi, x) - 5  # per-sample quality


# ------------------------------------------------------------------ USM
def test_usm_sharpens_edges_and_keeps_flat_areas():
    usm = USMSharp()
    flat = torch.full((1, 3, 64, 64), 0.4)
    torch.testing.assert_close(usm(flat), flat)
    edge = torch.zeros(1, 3, 64, 64)
    edge[..., 32:] = 0.6
    out = usm(edge)
    assert out.max() > 0.6 + 0.02  # overshoot on the bright side of the edge
    assert (out >= 0).all() and (out <= 1).all()
    # the separable passes equal BasicSR's formula with the full 51x51 kernel (sigma 8)
    from esrgan_lit.degradations import filter_batch

    k1 = torch.exp(-0.5 * (torch.arange(-25, 26.0) / 8.0) ** 2)
    k2 = torch.outer(k1, k1)[None] / k1.sum() ** 2
    x = torch.rand(2, 3, 80, 72, generator=torch.Generator().manual_seed(0))
    r = x - filter_batch(x, k2)
    soft = filter_batch(((r.abs() * 255) > 10).float(), k2)
    ref = soft * (x + 0.5 * r).clamp(0, 1) + (1 - soft) * x
    torch.testing.assert_close(usm(x), ref, atol=1e-4, rtol=0)


# ------------------------------------------------------------------ pool
def test_pool_fills_then_shuffles_and_round_trips():
    pool = PairPool(4)
    g = torch.Generator().manual_seed(0)
    # 8-bit levels (as the degraded LR and 8-bit GT are): the 8-bit state is exact
    batches = [
        (torch.full((2, 3, 2, 2), 20 * i / 255), torch.full((2, 3, 8, 8), 30 * i / 255))
        for i in range(6)
    ]
    out = [pool(lq, gt, g) for lq, gt in batches[:2]]
    assert all(torch.equal(o[0], b[0]) for o, b in zip(out, batches))  # filling: pass through
    state = pool.state_dict()
    twin = PairPool(4)
    twin.load_state_dict(state)
    g2 = torch.Generator().manual_seed(5)
    g3 = torch.Generator().manual_seed(5)
    changed = 0
    for lq, gt in batches[2:]:
        a, b = pool(lq, gt, g2), twin(lq, gt, g3)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
        changed += not torch.equal(a[0], lq)
        # pairs stay pairs: the LR and GT that come out belong together
        torch.testing.assert_close(a[0][:, 0, 0, 0] * 255 / 20, a[1][:, 0, 0, 0] * 255 / 30)
    assert changed  # once full, earlier pairs come out
    with pytest.raises(ValueError, match="multiple of the batch size"):
        PairPool(5)(batches[0][0], batches[0][1])


# ------------------------------------------------------------------ the pipeline
def test_pipeline_shape_range_determinism():
    deg = RealESRGANDegradation(scale=4)
    gt = torch.rand(3, 3, 64, 48)
    a = deg(gt, torch.Generator().manual_seed(3))
    b = deg(gt, torch.Generator().manual_seed(3))
    c = deg(gt, torch.Generator().manual_seed(4))
    assert a.shape == (3, 3, 16, 12) and a.dtype == gt.dtype
    assert a.min() >= 0 and a.max() <= 1
    torch.testing.assert_close(a * 255, (a * 255).round())  # 8-bit levels
    assert torch.equal(a, b) and not torch.equal(a, c)
    g = torch.Generator().manual_seed(3)
    state = g.get_state()
    first = deg(gt, g)
    g.set_state(state)
    assert torch.equal(deg(gt, g), first)
    assert RealESRGANDegradation(scale=2)(gt).shape == (3, 3, 32, 24)


def test_pipeline_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown degradation option"):
        RealESRGANDegradation(4, blur_sigmaa=[1, 2])
    with pytest.raises(ValueError, match="multiple of scale"):
        RealESRGANDegradation(4)(torch.rand(1, 3, 30, 32))
    with pytest.raises(ValueError, match="RGB"):
        RealESRGANDegradation(4)(torch.rand(1, 1, 32, 32))


# For each option: two values that must give different outputs from the same generator state
# (with `base` forcing the branch the option lives on).
_NO_BLUR = {"sinc_prob": 0.0}
OPTION_PAIRS: dict[str, tuple[dict, dict]] = {
    "blur_kernel_size": ({"blur_kernel_size": 7}, {"blur_kernel_size": 21}),
    "kernel_list": (
        {"kernel_list": ["iso"], "kernel_prob": [1]},
        {"kernel_list": ["aniso"], "kernel_prob": [1]},
    ),
    "kernel_prob": ({"kernel_prob": [1, 0, 0, 0, 0, 0]}, {"kernel_prob": [0, 0, 0, 0, 1, 0]}),
    "sinc_prob": ({"sinc_prob": 0.0}, {"sinc_prob": 1.0}),
    "blur_sigma": ({"blur_sigma": [0.2, 0.3]}, {"blur_sigma": [2.9, 3.0]}),
    "betag_range": (
        {"kernel_prob": [0, 0, 1, 0, 0, 0], "betag_range": [0.5, 0.6]},
        {"kernel_prob": [0, 0, 1, 0, 0, 0], "betag_range": [3.9, 4.0]},
    ),
    "betap_range": (
        {"kernel_prob": [0, 0, 0, 0, 1, 0], "betap_range": [1.0, 1.0]},
        {"kernel_prob": [0, 0, 0, 0, 1, 0], "betap_range": [2.0, 2.0]},
    ),
    "resize_prob": ({"resize_prob": [1, 0, 0]}, {"resize_prob": [0, 1, 0]}),
    "resize_range": ({"resize_range": [0.15, 0.2]}, {"resize_range": [0.9, 1.0]}),
    "gaussian_noise_prob": ({"gaussian_noise_prob": 0.0}, {"gaussian_noise_prob": 1.0}),
    "noise_range": (
        {"gaussian_noise_prob": 1.0, "noise_range": [1, 2]},
        {"gaussian_noise_prob": 1.0, "noise_range": [29, 30]},
    ),
    "poisson_scale_range": (
        {"gaussian_noise_prob": 0.0, "poisson_scale_range": [0.05, 0.1]},
        {"gaussian_noise_prob": 0.0, "poisson_scale_range": [2.9, 3.0]},
    ),
    "gray_noise_prob": ({"gray_noise_prob": 0.0}, {"gray_noise_prob": 1.0}),
    "jpeg_range": ({"jpeg_range": [30, 31]}, {"jpeg_range": [94, 95]}),
    "second_blur_prob": ({"second_blur_prob": 0.0}, {"second_blur_prob": 1.0}),
    "blur_kernel_size2": (
        {"second_blur_prob": 1.0, "blur_kernel_size2": 7},
        {"second_blur_prob": 1.0, "blur_kernel_size2": 21},
    ),
    "kernel_list2": (
        {"second_blur_prob": 1.0, "kernel_list2": ["iso"], "kernel_prob2": [1]},
        {"second_blur_prob": 1.0, "kernel_list2": ["plateau_aniso"], "kernel_prob2": [1]},
    ),
    "kernel_prob2": (
        {"second_blur_prob": 1.0, "kernel_prob2": [1, 0, 0, 0, 0, 0]},
        {"second_blur_prob": 1.0, "kernel_prob2": [0, 0, 0, 1, 0, 0]},
    ),
    "sinc_prob2": (
        {"second_blur_prob": 1.0, "sinc_prob2": 0.0},
        {"second_blur_prob": 1.0, "sinc_prob2": 1.0},
    ),
    "blur_sigma2": (
        {"second_blur_prob": 1.0, "blur_sigma2": [0.2, 0.3]},
        {"second_blur_prob": 1.0, "blur_sigma2": [1.4, 1.5]},
    ),
    "betag_range2": (
        {"second_blur_prob": 1.0, "kernel_prob2": [0, 0, 1, 0, 0, 0], "betag_range2": [0.5, 0.6]},
        {"second_blur_prob": 1.0, "kernel_prob2": [0, 0, 1, 0, 0, 0], "betag_range2": [3.9, 4.0]},
    ),
    "betap_range2": (
        {"second_blur_prob": 1.0, "kernel_prob2": [0, 0, 0, 0, 1, 0], "betap_range2": [1.0, 1.0]},
        {"second_blur_prob": 1.0, "kernel_prob2": [0, 0, 0, 0, 1, 0], "betap_range2": [2.0, 2.0]},
    ),
    "resize_prob2": ({"resize_prob2": [1, 0, 0]}, {"resize_prob2": [0, 1, 0]}),
    "resize_range2": ({"resize_range2": [0.3, 0.35]}, {"resize_range2": [1.15, 1.2]}),
    "gaussian_noise_prob2": ({"gaussian_noise_prob2": 0.0}, {"gaussian_noise_prob2": 1.0}),
    "noise_range2": (
        {"gaussian_noise_prob2": 1.0, "noise_range2": [1, 2]},
        {"gaussian_noise_prob2": 1.0, "noise_range2": [24, 25]},
    ),
    "poisson_scale_range2": (
        {"gaussian_noise_prob2": 0.0, "poisson_scale_range2": [0.05, 0.1]},
        {"gaussian_noise_prob2": 0.0, "poisson_scale_range2": [2.4, 2.5]},
    ),
    "gray_noise_prob2": ({"gray_noise_prob2": 0.0}, {"gray_noise_prob2": 1.0}),
    "jpeg_range2": ({"jpeg_range2": [30, 31]}, {"jpeg_range2": [94, 95]}),
    "final_sinc_prob": ({"final_sinc_prob": 0.0}, {"final_sinc_prob": 1.0}),
    "resize_modes": ({"resize_modes": ["area"]}, {"resize_modes": ["bicubic"]}),
}


def test_option_table_covers_every_option():
    assert set(OPTION_PAIRS) == set(DEFAULTS)


@pytest.mark.parametrize("name", sorted(OPTION_PAIRS))
def test_every_option_reachable(name):
    gt = torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    a_opts, b_opts = OPTION_PAIRS[name]
    a = RealESRGANDegradation(4, **a_opts)(gt, torch.Generator().manual_seed(11))
    b = RealESRGANDegradation(4, **b_opts)(gt, torch.Generator().manual_seed(11))
    assert not torch.equal(a, b), name


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_pipeline_on_cuda_is_deterministic():
    deg = RealESRGANDegradation(4)
    gt = torch.rand(4, 3, 64, 64, device="cuda")
    a = deg(gt, torch.Generator(device="cuda").manual_seed(0))
    b = deg(gt, torch.Generator(device="cuda").manual_seed(0))
    assert a.device.type == "cuda" and torch.equal(a, b)

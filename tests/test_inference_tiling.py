"""Tiling: seam-free blending, exact margin, lean RRDBNet forward, OOM and fp16 fallbacks."""

from __future__ import annotations

import copy
import itertools
import logging

import numpy as np
import pytest
import torch
from torch import nn

from esrgan_lit.archs import RRDBNet
from esrgan_lit.inference import Upscaler, receptive_radius
from esrgan_lit.inference.lean import rrdbnet_forward
from esrgan_lit.inference.tiling import axis_window, plan_axis, upscale_tiled


def tiny(scale: int = 4, seed: int = 0) -> RRDBNet:
    """Tiny RRDBNet with weights large enough that borders visibly matter (paper init is ~identity)."""
    torch.manual_seed(seed)
    m = RRDBNet(scale=scale, num_feat=8, num_block=1, num_grow_ch=8).eval()
    for p in m.parameters():
        p.data.normal_(0.0, 0.08)
    return m


@pytest.mark.parametrize(
    ("n", "tile", "overlap", "mult"), [(61, 20, 8, 1), (64, 16, 4, 4), (10, 32, 8, 1)]
)
def test_plan_axis_partitions_and_extends(n, tile, overlap, mult):
    spans = plan_axis(n, tile, overlap, mult, uniform=True)
    assert spans[0].c0 == 0 and spans[-1].c1 == n
    for a, b in itertools.pairwise(spans):
        assert a.c1 == b.c0  # cores tile the axis with no gap or overlap
    for s in spans:
        assert s.c1 - s.c0 <= max(tile, mult)
        assert s.p0 <= max(0, s.c0 - overlap) and s.p1 >= min(n, s.c1 + overlap)
        assert s.p0 >= 0 and s.p1 <= n
        assert s.c0 % mult == 0 and s.p0 % mult == 0
    assert len({s.p1 - s.p0 for s in spans}) == 1  # one patch size: tiles can share a batch


@pytest.mark.parametrize(
    ("n", "tile", "overlap", "scale"), [(61, 20, 8, 4), (50, 12, 12, 2), (33, 10, 0, 1)]
)
def test_windows_are_a_partition_of_unity_inside_the_margin(n, tile, overlap, scale):
    spans = plan_axis(n, tile, overlap)
    half = min(overlap, min(s.c1 - s.c0 for s in spans)) / 2
    total = np.zeros(n * scale)
    for s in spans:
        w, o0, o1 = axis_window(s, n, scale, half)
        total[o0:o1] += w
        # every weighted output pixel keeps >= overlap/2 input pixels of context inside the patch
        if s.p0 > 0:
            assert o0 / scale - s.p0 >= overlap / 2 - 1e-9
        if s.p1 < n:
            assert s.p1 - o1 / scale >= overlap / 2 - 1e-9
        d = np.diff(w)  # up-ramp, plateau, down-ramp: no ripples
        falling = np.flatnonzero(d < -1e-7)
        assert falling.size == 0 or np.all(d[falling[0] :] <= 1e-7)
    np.testing.assert_allclose(total, 1.0, atol=1e-6)


def test_receptive_radius_is_tight_bound():
    m = tiny(4)
    r = receptive_radius(m)
    assert r == 19  # 1 + 15 + 1 trunk convs, + 1/2 + 1/4 + 2/4 in the x4 tail = 18.25
    x = torch.rand(1, 3, 64, 64)
    y = x.clone()
    y[:, :, 32, 32] += 1.0
    with torch.no_grad():
        d = (m(y) - m(x)).abs().sum((0, 1))
    cols = torch.nonzero(d.sum(0) > 0).flatten()
    reach = ((cols.float() + 0.5) / 4 - 32.5).abs().max().item()
    assert 17 <= reach <= r  # the bound holds and is not loose by more than the tail's fraction


@pytest.mark.parametrize(("scale", "width"), [(4, 100), (2, 184), (1, 304)])
def test_tiled_rrdbnet_equals_untiled_with_documented_overlap(scale, width):
    # The image is wide enough that two tiles are really cut apart at overlap = 2 * radius.
    m = tiny(scale)
    img = (torch.rand(12, width, 3) * 255).to(torch.uint8).numpy()
    ref = Upscaler(m, device="cpu").upscale(img)
    margin = 2 * receptive_radius(m)
    tiled = Upscaler(m, device="cpu", tile=width // 2, tile_overlap=margin, tile_batch=2)
    out = tiled.upscale(img)
    assert out.shape == ref.shape == (12 * scale, width * scale, 3)
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1


def small_cnn(seed: int = 0) -> nn.Module:
    """Three 3x3 convs then nearest x2: receptive radius 3, cheap enough for a 2-D tile grid."""
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(16, 16, 3, padding=1),
        nn.LeakyReLU(0.2), nn.Conv2d(16, 3, 3, padding=1), nn.Upsample(scale_factor=2),
    )  # fmt: skip
    return net.eval()


def test_tiled_grid_equals_untiled_and_zero_overlap_shows_seams():
    m = small_cnn()
    assert receptive_radius(m) == 3
    x = torch.rand(3, 45, 38) * 0.5 + 0.25
    ref = Upscaler(m, device="cpu").upscale(x)
    for batch in (1, 3):  # many tile rows and columns: exercises the row-band accumulator
        got = Upscaler(m, device="cpu", tile=8, tile_overlap=6, tile_batch=batch).upscale(x)
        assert got.shape == ref.shape == (3, 90, 76)
        assert (got - ref).abs().max() <= 1 / 255
    seams = Upscaler(m, device="cpu", tile=8, tile_overlap=0).upscale(x)
    assert (seams - ref).abs().max() > 1 / 255  # without context the tiles do differ


@pytest.mark.parametrize("scale", [1, 2, 4, 8])
@pytest.mark.parametrize("trunk", [None, 0, 30])  # model.body; whole dense blocks; many stripes
@pytest.mark.parametrize("channels_last", [False, True])
def test_lean_forward_matches_model(scale, trunk, channels_last):
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    m = tiny(scale).to(memory_format=fmt)
    m.body.append(copy.deepcopy(m.body[0]))  # two RRDBs: the buffer rotation is exercised
    x = torch.rand(2, 3, 16, 12).contiguous(memory_format=fmt)
    with torch.no_grad():
        want = m(x)
        got = rrdbnet_forward(m, x, stripe_pixels=100, trunk_stripe_pixels=trunk)  # many stripes
    assert got.shape == want.shape
    assert (got - want).abs().max() < 1e-5


def test_blending_reproduces_a_local_network_exactly():
    # Nearest x2 has radius 0, so every tile is exact and the partition of unity must give back
    # the plain upsampling: checks the sliding window and the rows carried between tile rows.
    img = torch.rand(3, 37, 53)
    ref = img.repeat_interleave(2, 1).repeat_interleave(2, 2).permute(1, 2, 0).numpy()
    for tile, overlap, batch in [(8, 6, 1), (10, 4, 3), (7, 14, 2), (0, 4, 1)]:
        out = np.full((74, 106, 3), np.nan, np.float32)
        upscale_tiled(
            lambda b: b.repeat_interleave(2, 2).repeat_interleave(2, 3),
            img,
            out,
            scale=2,
            tile=tile,
            overlap=overlap,
            tile_batch=batch,
        )
        np.testing.assert_allclose(out, ref, atol=1e-6)


class FakeOOM(nn.Module):
    """Nearest x2 upsampler that 'runs out of memory' on inputs larger than ``limit`` pixels."""

    scale, num_in_ch, num_out_ch = 2, 3, 3

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.sizes: list[tuple[int, int]] = []
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, x):
        self.sizes.append(tuple(x.shape[-2:]))
        if max(x.shape[-2:]) > self.limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate (fake)")
        return nn.functional.interpolate(x, scale_factor=2, mode="nearest") * self.w


def test_out_of_memory_halves_tile_and_continues(caplog):
    model = FakeOOM(limit=30)
    img = (np.arange(40 * 36 * 3) % 251).astype(np.uint8).reshape(40, 36, 3)
    up = Upscaler(model, device="cpu", tile=0, tile_overlap=4)
    with caplog.at_level(logging.WARNING, logger="esrgan_lit.inference"):
        out = up.upscale(img)
    np.testing.assert_array_equal(out, img.repeat(2, 0).repeat(2, 1))
    assert "out of memory" in caplog.text and up.tile == 20
    assert max(max(s) for s in model.sizes[-4:]) <= 30


def test_out_of_memory_gives_up_below_minimum_tile():
    with pytest.raises(RuntimeError, match="out of memory even with tile"):
        Upscaler(FakeOOM(limit=4), device="cpu", tile=32, tile_overlap=0).upscale(
            np.zeros((40, 40), np.uint8)
        )


class Overflow(nn.Module):
    """x2 nearest; its intermediate exceeds fp16's range (65504) so fp16 gives inf/NaN."""

    scale = 2

    def __init__(self) -> None:
        super().__init__()
        self.k = nn.Parameter(torch.tensor(1e5))

    def forward(self, x):
        return nn.functional.interpolate(x * self.k, scale_factor=2, mode="nearest") / self.k


def test_fp16_non_finite_output_falls_back_to_fp32(caplog):
    img = (np.arange(16 * 12) % 256).astype(np.uint8).reshape(16, 12)
    up = Upscaler(Overflow(), device="cpu", precision="fp16", tile=8, tile_overlap=2)
    with caplog.at_level(logging.WARNING, logger="esrgan_lit.inference"):
        out = up.upscale(img)
    np.testing.assert_array_equal(out, img.repeat(2, 0).repeat(2, 1))
    assert up.fallbacks > 0 and "fp32" in caplog.text


def test_bf16_close_to_fp32():
    m = tiny(4)
    x = torch.rand(3, 20, 24)
    ref = Upscaler(m, device="cpu").upscale(x)
    got = Upscaler(m, device="cpu", precision="bf16").upscale(x)
    assert got.dtype == torch.float32 and torch.isfinite(got).all()
    assert (got - ref).abs().max() < 0.05


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="precision"):
        Upscaler(tiny(), precision="fp8")
    with pytest.raises(ValueError, match="tile"):
        Upscaler(tiny(), tile=-1)

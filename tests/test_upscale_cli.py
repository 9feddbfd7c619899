"""`esrgan_lit.upscale` CLI and the `Upscaler` API on real files of every kind."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from esrgan_lit.archs import RRDBNet
from esrgan_lit.inference import Upscaler, read_image
from esrgan_lit.inference.png16 import write_png16
from esrgan_lit.upscale import main
from esrgan_lit.weights import save_generator

RNG = np.random.default_rng(1)


def make_model(path, seed=0, scale=2):
    torch.manual_seed(seed)
    m = RRDBNet(scale=scale, num_feat=8, num_block=1, num_grow_ch=8).eval()
    for p in m.parameters():
        p.data.normal_(0.0, 0.05)
    save_generator(m, path)
    return m


def u8(*shape):
    return RNG.integers(0, 256, size=shape, dtype=np.uint8)


@pytest.fixture
def model_path(tmp_path):
    path = tmp_path / "g.safetensors"
    make_model(path)
    return path


def test_folder_batch_keeps_modes_depth_alpha_and_survives_a_bad_file(tmp_path, model_path, capsys):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(u8(10, 12, 3)).save(src / "sub" / "rgb.jpg")
    Image.fromarray(u8(10, 12)).save(src / "grey.png")
    alpha = np.tile(np.linspace(0, 255, 12, dtype=np.uint8), (10, 1))
    Image.fromarray(np.dstack([u8(10, 12, 3), alpha])).save(src / "rgba.png")
    Image.fromarray(u8(10, 12, 3)).quantize(16).save(src / "pal.png")
    Image.fromarray(u8(10, 12, 3)).save(src / "bmp.bmp")
    Image.fromarray(u8(10, 12, 3)).save(src / "w.webp")
    deep = RNG.integers(0, 65536, size=(10, 12, 3), dtype=np.uint16)
    write_png16(src / "deep.png", deep)
    (src / "broken.png").write_bytes(b"\x89PNG garbage")
    out = tmp_path / "out"

    rc = main([str(src), "-o", str(out), "--model", str(model_path), "--device", "cpu", "--suffix", "_x2",
               "--alpha", "bicubic"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 1 and "broken.png" in err and "7 written, 0 skipped, 1 failed" in err
    assert Image.open(out / "sub" / "rgb_x2.jpg").size == (24, 20)
    assert Image.open(out / "grey_x2.png").mode == "L"
    assert Image.open(out / "pal_x2.png").mode == "RGB"
    assert Image.open(out / "bmp_x2.bmp").size == (24, 20)
    rgba = Image.open(out / "rgba_x2.png")
    assert rgba.mode == "RGBA"
    a = np.asarray(rgba)[:, :, 3].astype(int)
    assert a[:, :4].mean() < 60 and a[:, -4:].mean() > 190  # the alpha ramp survived
    hi = read_image(out / "deep_x2.png")
    assert hi.dtype == np.uint16 and hi.shape == (20, 24, 3)
    assert np.any(hi % 257 != 0)  # real 16-bit values, not 8-bit ones stretched


def test_skip_existing_outscale_ext_and_globs(tmp_path, model_path):
    Image.fromarray(u8(8, 6, 3)).save(tmp_path / "a.png")
    Image.fromarray(np.dstack([u8(8, 6, 3), u8(8, 6)])).save(tmp_path / "t.png")
    out = tmp_path / "o"
    args = ["--model", str(model_path), "--device", "cpu", "-o", str(out)]
    assert main([str(tmp_path / "*.png"), "--ext", "jpg", "--outscale", "3", *args]) == 0
    assert Image.open(out / "a.jpg").size == (18, 24)
    assert Image.open(out / "t.png").mode == "RGBA"  # transparency never goes to JPEG
    before = (out / "a.jpg").stat().st_mtime_ns
    assert main([str(tmp_path / "a.png"), "--ext", "jpg", "--skip-existing", *args]) == 0
    assert (out / "a.jpg").stat().st_mtime_ns == before
    assert main([str(tmp_path / "nothing*.png"), *args]) == 1


def test_alpha_modes(tmp_path, model_path):
    rgba = np.dstack([u8(8, 10, 3), u8(8, 10)])
    up_net = Upscaler(model_path, device="cpu")
    up_bic = Upscaler(model_path, device="cpu", alpha="bicubic")
    a_net = up_net.upscale(rgba)[:, :, 3]
    np.testing.assert_array_equal(a_net, up_net.upscale(rgba[:, :, 3]))  # alpha as a grey image
    a_bic = up_bic.upscale(rgba)[:, :, 3].astype(int)
    want = np.asarray(Image.fromarray(rgba[:, :, 3]).resize((20, 16), Image.Resampling.BICUBIC))
    assert np.abs(a_bic - want).max() <= 1
    opaque = rgba.copy()
    opaque[:, :, 3] = 255
    assert (up_net.upscale(opaque)[:, :, 3] == 255).all()


def test_api_returns_the_kind_it_was_given(model_path):
    up = Upscaler(model_path, device="cpu")
    assert up.scale == 2
    pil = up.upscale(Image.fromarray(u8(6, 8, 3)))
    assert isinstance(pil, Image.Image) and pil.mode == "RGB" and pil.size == (16, 12)
    grey16 = up.upscale(Image.fromarray(RNG.integers(0, 65536, (6, 8), dtype=np.uint16)))
    assert grey16.mode == "I;16" and grey16.size == (16, 12)
    hw = up.upscale(u8(6, 8))
    assert hw.shape == (12, 16) and hw.dtype == np.uint8
    x = torch.rand(2, 3, 6, 8, dtype=torch.float64)
    y = up.upscale(x)
    assert y.shape == (2, 3, 12, 16) and y.dtype == torch.float64
    assert torch.allclose(y[1], up.upscale(x[1]))
    deep = up.upscale(RNG.integers(0, 65536, (6, 8, 3), dtype=np.uint16), outscale=3)
    assert deep.shape == (18, 24, 3) and deep.dtype == np.uint16 and np.any(deep % 257 != 0)
    with pytest.raises(TypeError, match="uint8 or uint16"):
        up.upscale(np.zeros((4, 4), np.float32))


def test_uint16_matches_float_path(model_path):
    up = Upscaler(model_path, device="cpu")
    a = RNG.integers(0, 65536, size=(6, 8, 3), dtype=np.uint16)
    got = up.upscale(a).astype(np.float64) / 65535
    ref = up.upscale(torch.from_numpy(a.astype(np.float32) / 65535).permute(2, 0, 1))
    np.testing.assert_allclose(got, ref.permute(1, 2, 0).numpy(), atol=0.6 / 65535)


def test_interpolation_endpoints(tmp_path):
    a_path, b_path = tmp_path / "a.safetensors", tmp_path / "b.pth"
    make_model(a_path, seed=0)
    make_model(b_path, seed=1)
    Image.fromarray(u8(6, 6, 3)).save(tmp_path / "i.png")
    results = {}
    for alpha in ("0", "1"):
        out = tmp_path / f"o{alpha}"
        rc = main([str(tmp_path / "i.png"), "-o", str(out), "--model", str(a_path), "--device", "cpu",
                   "--interp-with", str(b_path), "--interp-alpha", alpha])  # fmt: skip
        assert rc == 0
        results[alpha] = read_image(out / "i.png")
    img = read_image(tmp_path / "i.png")
    np.testing.assert_array_equal(results["0"], Upscaler(a_path, device="cpu").upscale(img))
    np.testing.assert_array_equal(results["1"], Upscaler(b_path, device="cpu").upscale(img))
    assert main([str(tmp_path / "i.png"), "-o", str(tmp_path), "--model", str(a_path),
                 "--interp-with", str(b_path)]) == 2  # fmt: skip


def test_exif_rotated_input_gives_rotated_output(tmp_path, model_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(u8(8, 12, 3)).save(tmp_path / "r.jpg", exif=exif)
    assert main([str(tmp_path / "r.jpg"), "-o", str(tmp_path / "o"), "--model", str(model_path),
                 "--device", "cpu"]) == 0  # fmt: skip
    assert Image.open(tmp_path / "o" / "r.jpg").size == (16, 24)


def test_module_entry_point_and_bad_model(tmp_path, model_path):
    Image.fromarray(u8(6, 6, 3)).save(tmp_path / "i.png")
    ok = subprocess.run(
        [sys.executable, "-m", "esrgan_lit.upscale", str(tmp_path / "i.png"), "-o", str(tmp_path / "o"),
         "--model", str(model_path), "--tile", "4", "--tile-overlap", "2"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert Image.open(tmp_path / "o" / "i.png").size == (12, 12)
    if not torch.cuda.is_available():
        assert main([str(tmp_path / "i.png"), "-o", str(tmp_path / "o3"), "--model", str(model_path),
                     "--device", "cuda"]) == 2  # fmt: skip
        assert not (tmp_path / "o3").exists()
    (tmp_path / "bad.pth").write_bytes(b"nope")
    assert (
        main(
            [
                str(tmp_path / "i.png"),
                "-o",
                str(tmp_path / "o2"),
                "--model",
                str(tmp_path / "bad.pth"),
            ]
        )
        == 2
    )

"""``python -m esrgan_lit.demo`` end to end on tiny settings (the real demo is `make demo`)."""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("skimage")


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_demo_pipeline_tiny(tmp_path, capsys, monkeypatch):
    from esrgan_lit import demo

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # no VGG19 weights here
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        tiny = [
            f"paths.data_dir={tmp_path / 'data'}",
            "model.generator.num_feat=8",
            "model.generator.num_block=1",
            "model.generator.num_grow_ch=4",
            "data.batch_size=2",
            "data.gt_size=32",
            "logger=none",
        ]
        out = demo.run_demo(tmp_path / "demo", psnr_steps=2, gan_steps=2, extra=tiny)
    finally:
        torch.set_num_threads(n)
    text = capsys.readouterr().out
    # without VGG weights the GAN stage says so plainly and trains without the perceptual term
    assert out["vgg"] is False
    assert "WITHOUT the perceptual loss" in text
    results = json.loads((tmp_path / "demo" / "demo_results.json").read_text())
    assert list(results) == [
        "bicubic (MATLAB)",
        "PSNR model",
        "GAN model (no VGG loss)",
        "interpolated a=0.8",
    ]
    # the MATLAB-bicubic baseline on the two held-out photos is a sane number
    assert 20 < results["bicubic (MATLAB)"]["psnr_y"] < 40
    assert (tmp_path / "demo" / "comparison.png").stat().st_size > 1000
    for stage in ("psnr", "gan"):
        assert (tmp_path / "demo" / stage / "generator.safetensors").is_file()
    assert "| method" in text
    assert all("colour" in r for r in results.values())
    assert results["bicubic (MATLAB)"]["colour"] == 0.0


def test_comparison_shows_lr_and_zooms_where_methods_differ(tmp_path):
    """The picture has an LR column and its zoom window sits on the region where the trained
    model differs from bicubic (not on a flat centre crop)."""
    from PIL import Image

    from esrgan_lit import demo

    hr = torch.full((3, 128, 160), 0.5)
    bic = hr.clone()
    model = hr.clone()
    model[:, 90:120, 120:150] = 0.9  # the only place where the model differs from bicubic
    lq = [torch.full((3, 32, 40), 0.5)]
    images = {"HR": [hr], "bicubic (MATLAB)": [bic], "PSNR model": [model]}
    top, left = demo._zoom_corner(model, bic, 32)
    assert 90 - 32 < top <= 90 and 120 - 32 < left <= 120, (top, left)
    png = demo.comparison_png(images, tmp_path / "c.png", lq=lq, crop=32, zoom=2)
    img = Image.open(png)
    tile = 32 * 2
    assert img.width == 2 * tile + 4 * (tile + 4)  # thumbnail + LR, bicubic, model, HR
    # the model's zoomed tile shows the bright patch (it would be flat grey at the centre)
    x0 = 2 * tile + 4 + 2 * (tile + 4)
    patch = torch.tensor(list(img.crop((x0, 16, x0 + tile, 16 + tile)).getdata())).float()
    assert patch.max() > 200


def test_colour_shift_in_8bit_levels():
    from esrgan_lit import demo

    a = [torch.full((3, 8, 8), 0.5)]
    b = [torch.full((3, 8, 8), 0.5)]
    b[0][1] += 10 / 255
    assert abs(demo.colour_shift(a, b) - 10.0) < 1e-3

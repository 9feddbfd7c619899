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

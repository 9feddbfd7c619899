# ruff: noqa: F811  (pytest fixtures imported from test_download are used as arguments)
"""Real-ESRGAN's `inference_realesrgan.py` spellings on `esrgan-upscale`, `--device cuda:N`, and
the `--tta` self-ensemble (API, CLI, evaluate's "+" row)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image

from esrgan_lit import hub
from esrgan_lit.archs import RRDBNet
from esrgan_lit.inference import Upscaler
from esrgan_lit.inference.upscaler import DIHEDRAL, dihedral, undo_dihedral
from esrgan_lit.upscale import main, parse_args
from esrgan_lit.weights import save_generator
from test_download import _Handler, server  # noqa: F401  (the shared 127.0.0.1 server fixture)


def _net(scale: int = 2, seed: int = 0) -> RRDBNet:
    torch.manual_seed(seed)
    m = RRDBNet(scale=scale, num_feat=8, num_block=1, num_grow_ch=8).eval()
    for p in m.parameters():
        p.data.normal_(0.0, 0.05)
    return m


@pytest.fixture
def model_path(tmp_path):
    path = tmp_path / "g.safetensors"
    save_generator(_net(), path)
    return path


def test_real_esrgan_spellings_parse_to_our_options(tmp_path) -> None:
    a = parse_args(["-i", "a.png", "-i", "dir", "-o", "out", "-n", "RealESRGAN_x4plus", "-s", "3.5",
                    "-t", "128", "--tile_pad", "10", "--fp32", "--ext", "auto", "-g", "1",
                    "--suffix", "out", "--alpha_upsampler", "realesrgan"])  # fmt: skip
    assert a.inputs == ["a.png", "dir"] and a.model == "RealESRGAN_x4plus"
    assert (a.outscale, a.tile, a.tile_overlap, a.precision) == (3.5, 128, 10, "fp32")
    assert (a.ext, a.device, a.suffix, a.alpha) == (None, "cuda:1", "out", "net")
    b = parse_args(
        ["x.png", "-o", "o", "--model_path", "g.pth", "--device", "cuda:0", "--ext", "png"]
    )
    assert (b.inputs, b.model, b.device, b.ext) == (["x.png"], "g.pth", "cuda:0", "png")
    ours = parse_args(["x.png", "-o", "o", "--model", "g.pth", "--tile-overlap", "8"])
    assert (ours.model, ours.tile_overlap, ours.device, ours.precision) == (
        "g.pth",
        8,
        "auto",
        "fp32",
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["-o", "o", "--model", "g.pth"], "at least one INPUT"),
        (["x.png", "-o", "o"], "give a generator"),
        (["x.png", "-o", "o", "--model", "g", "--device", "gpu0"], "invalid device 'gpu0'"),
        (["x.png", "-o", "o", "--model", "g", "-g", "1", "--device", "cpu"], "contradicts"),
    ],
)
def test_bad_combinations_are_clear_errors(argv, message, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse_args(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.device_count() > 7, reason="needs a GPU index that does not exist")
def test_missing_gpu_index_is_a_clear_error(tmp_path, model_path, capsys) -> None:
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    rc = main(["-i", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "--model", str(model_path),
               "--device", "cuda:7"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "cuda:7" in err and ("not available" in err or "no such GPU" in err)


def test_cli_with_real_esrgan_flags_and_a_hub_name(server, tmp_path, monkeypatch) -> None:
    path = tmp_path / "tiny.pth"
    save_generator(_net(), path)
    data = path.read_bytes()
    _Handler.files["/t.pth"] = data
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    entry = hub.HubModel(**{**hub.MODELS["RealESRGAN_x2plus"].__dict__, "url": f"{server[0]}/t.pth",
                            "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)})  # fmt: skip
    monkeypatch.setitem(hub.MODELS, "RealESRGAN_x2plus", entry)
    Image.fromarray(np.full((10, 12, 3), 128, np.uint8)).save(tmp_path / "a.jpg")
    rc = main(["-i", str(tmp_path / "a.jpg"), "-o", str(tmp_path / "out"), "-n", "RealESRGAN_x2plus",
               "-s", "3", "-t", "8", "--tile_pad", "4", "--fp32", "--ext", "auto", "--suffix", "_out",
               "--device", "cpu"])  # fmt: skip
    assert rc == 0
    with Image.open(tmp_path / "out" / "a_out.jpg") as im:
        assert im.size == (36, 30)


def test_dihedral_transforms_are_the_eight_symmetries_and_invert() -> None:
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    outs = {tuple(dihedral(x, k, f).flatten().tolist()) for k, f in DIHEDRAL}
    assert len(DIHEDRAL) == 8 and len(outs) == 8
    for k, f in DIHEDRAL:
        torch.testing.assert_close(undo_dihedral(dihedral(x, k, f), k, f), x)


@pytest.mark.parametrize("tile", [0, 8])
def test_tta_is_the_mean_of_the_eight_transformed_outputs(tile) -> None:
    net = _net()
    x = torch.rand(3, 16, 20)
    expected = torch.zeros(3, 32, 40)
    with torch.no_grad():
        for k in range(4):
            for flip in (False, True):
                t = x.flip(-1) if flip else x
                y = net(torch.rot90(t, k, dims=(-2, -1))[None])[0]
                y = torch.rot90(y, -k, dims=(-2, -1))
                expected += (y.flip(-1) if flip else y) / 8
    got = Upscaler(net, device="cpu", tta=True, tile=tile, tile_overlap=8).upscale(x)
    plain = Upscaler(net, device="cpu").upscale(x)
    # tiles overlap by 8 px of context here, so the tiled ensemble matches to the blending error
    torch.testing.assert_close(got, expected.clamp(0, 1), atol=1e-5 if tile == 0 else 2e-3, rtol=0)
    assert (got - plain).abs().max() > 1e-3  # the ensemble really differs from one pass


def test_evaluate_adds_a_plus_row(tmp_path, model_path) -> None:
    from hydra import compose, initialize_config_dir

    from esrgan_lit.config import config_dir
    from esrgan_lit.evaluate import evaluate

    hr = tmp_path / "Tiny"
    hr.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(hr / f"{i}.png")
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("evaluate", overrides=[
            f"generator={model_path}", f"test_dirs=[{hr}]", "scale=2", "metrics=[psnr_y,ssim_y]",
            f"output_dir={tmp_path / 'out'}", "tta=true", "device=cpu", "progress=false"])  # fmt: skip
    evaluate(cfg)
    out = tmp_path / "out"
    table = (out / "metrics.md").read_text()
    assert "| Set | Metric | Bicubic | g | g+ |" in table
    plus = json.loads((out / "metrics_tta.json").read_text())
    main_ = json.loads((out / "metrics.json").read_text())
    assert plus["Tiny"]["num_images"] == 2 and plus["Tiny"]["psnr_y"] != main_["Tiny"]["psnr_y"]
    assert "g+" in (out / "per_image.csv").read_text()


def test_cli_offline_names_where_to_put_the_model(tmp_path, monkeypatch, capsys) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    entry = hub.HubModel(**{**hub.MODELS["RealESRNet_x4plus"].__dict__,
                            "url": f"http://127.0.0.1:{port}/x.pth"})  # fmt: skip
    monkeypatch.setitem(hub.MODELS, "RealESRNet_x4plus", entry)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    rc = main(["-i", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "-n", "RealESRNet_x4plus"])
    err = capsys.readouterr().err
    assert rc == 2 and str(tmp_path / "hub" / "checkpoints" / "RealESRNet_x4plus.pth") in err

"""Evaluation CLI: hand-computed scores, the Set5 bicubic oracle, files, errors, the real CLI."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from PIL import Image

from esrgan_lit.archs import RRDBNet
from esrgan_lit.config import config_dir
from esrgan_lit.evaluate import evaluate
from esrgan_lit.weights import save_generator

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SET5 = SHARED / "benchmarks" / "Set5"
KEYS = {"psnr_y", "ssim_y", "rmse", "niqe", "lpips", "ma", "pi", "num_images"}
C1 = (0.01 * 255) ** 2


def constant_generator(value: float, scale: int = 4) -> RRDBNet:
    """A tiny RRDBNet whose output is ``value`` everywhere: all weights 0, conv_last bias = value."""
    net = RRDBNet(scale=scale, num_feat=8, num_block=1, num_grow_ch=4)
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        net.conv_last.bias.fill_(value)
    return net


def y_of(level: int) -> int:
    """MATLAB rgb2ycbcr Y of a grey RGB level (R = G = B): round(16 + 219 * level / 255)."""
    return math.floor(16 + 219 * level / 255 + 0.5)


def ssim_const(a: float, b: float) -> float:
    """SSIM of two constant images (variances 0): (2ab + C1) / (a^2 + b^2 + C1)."""
    return (2 * a * b + C1) / (a * a + b * b + C1)


def uniform_set(root: Path) -> Path:
    """Two uniform RGB images (level 128) and one uniform grey image, sizes not multiples of 4."""
    root.mkdir(parents=True)
    Image.fromarray(np.full((41, 50, 3), 128, np.uint8)).save(root / "a.png")
    Image.fromarray(np.full((44, 37, 3), 128, np.uint8)).save(root / "b.png")
    Image.fromarray(np.full((42, 42), 128, np.uint8)).save(root / "g.png")
    return root


def cfg_for(tmp_path: Path, *overrides: str):
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose(
            "evaluate",
            overrides=[
                f"output_dir={tmp_path / 'out'}",
                "progress=false",
                "device=cpu",
                *overrides,
            ],
        )


def test_constant_generator_hand_values(tmp_path):
    data = uniform_set(tmp_path / "Flat")
    gen = tmp_path / "const.safetensors"
    save_generator(constant_generator(0.2), gen)
    cfg = cfg_for(
        tmp_path,
        f"generator={gen}",
        f"test_dirs=[{data}]",
        "metrics=[psnr_y,ssim_y,rmse,niqe]",
        "bicubic_row=false",
        "save_images=true",
    )
    metrics = evaluate(cfg)
    out = tmp_path / "out"
    row = metrics["Flat"]
    assert set(row) == KEYS and row["num_images"] == 3
    # SR level round(0.2*255) = 51; RGB: Y 60 vs Y(128) = 126; grey: raw 51 vs 128
    assert (y_of(51), y_of(128)) == (60, 126)
    d_rgb, d_grey = 66, 77
    psnrs = [20 * math.log10(255 / d) for d in (d_rgb, d_rgb, d_grey)]
    assert row["psnr_y"] == pytest.approx(sum(psnrs) / 3, abs=1e-9)
    ssims = [ssim_const(60, 126), ssim_const(60, 126), ssim_const(51, 128)]
    assert row["ssim_y"] == pytest.approx(sum(ssims) / 3, abs=1e-9)
    # PIRM RMSE: sqrt of the mean of per-image MSEs, not the mean of per-image RMSEs
    assert row["rmse"] == pytest.approx(math.sqrt((2 * 66**2 + 77**2) / 3), abs=1e-9)
    assert row["niqe"] is None and row["lpips"] is None  # too small for NIQE; not requested

    assert json.loads((out / "metrics.json").read_text()) == metrics
    notes = json.loads((out / "notes.json").read_text())["const"]["Flat"]
    assert "96" in notes["niqe"] and "not requested" in notes["lpips"]
    with open(out / "per_image.csv", newline="") as f:
        per_image = {r["image"]: r for r in csv.DictReader(f)}
    assert set(per_image) == {"a", "b", "g"}
    assert float(per_image["g"]["rmse"]) == pytest.approx(77.0)
    assert float(per_image["a"]["psnr_y"]) == pytest.approx(psnrs[0])
    sr = np.asarray(Image.open(out / "images" / "const" / "Flat" / "b.png"))
    assert sr.shape == (44, 36, 3) and (sr == 51).all()  # mod-cropped to 4, uint8 level 51
    assert np.asarray(Image.open(out / "images" / "const" / "Flat" / "g.png")).ndim == 2
    md = (out / "metrics.md").read_text()
    assert "| Flat (3) | PSNR-Y (dB) ↑ |" in md and "NIQE" in md


@pytest.mark.skipif(not SET5.is_dir(), reason="../shared/data/benchmarks/Set5 not available")
def test_set5_bicubic_oracle(tmp_path):
    """ESRGAN paper, supplementary Table 2, bicubic x4 on Set5: 28.42 dB / 0.8104."""
    cfg = cfg_for(tmp_path, "generator=bicubic", f"test_dirs=[{SET5}]", "metrics=[psnr_y,ssim_y]")
    row = evaluate(cfg)["Set5"]
    assert row["num_images"] == 5
    assert abs(row["psnr_y"] - 28.42) <= 0.01 and abs(row["ssim_y"] - 0.810) <= 0.001
    assert row["psnr_y"] == pytest.approx(28.4189, abs=1e-3)  # MATLAB protocol, computed
    assert row["ssim_y"] == pytest.approx(0.8102, abs=1e-4)
    with open(tmp_path / "out" / "per_image.csv", newline="") as f:
        per_image = {r["image"]: r for r in csv.DictReader(f)}
    assert float(per_image["butterfly"]["psnr_y"]) == pytest.approx(22.10, abs=0.005)
    assert float(per_image["head"]["ssim_y"]) == pytest.approx(0.7532, abs=1e-4)
    assert not (tmp_path / "out" / "bicubic.json").exists()  # generator is the baseline


def test_unavailable_metrics_are_null_with_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no AlexNet weights there
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # no Ma forests there
    monkeypatch.delenv("ESRGAN_LIT_MA_MODEL", raising=False)
    data = uniform_set(tmp_path / "Flat")
    cfg = cfg_for(tmp_path, f"test_dirs=[{data}]", "metrics=[psnr_y,lpips,ma,pi]")
    row = evaluate(cfg)["Flat"]
    assert set(row) == KEYS
    assert row["lpips"] is None and row["ma"] is None and row["pi"] is None
    notes = json.loads((tmp_path / "out" / "notes.json").read_text())["Bicubic"]["Flat"]
    assert "LPIPS" in notes["lpips"] and "Ma" in notes["ma"] and "Ma" in notes["pi"]
    assert "n/a" in (tmp_path / "out" / "metrics.md").read_text()


def test_bad_inputs_clear_errors(tmp_path):
    data = uniform_set(tmp_path / "Flat")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        evaluate(cfg_for(tmp_path, f"test_dirs=[{tmp_path / 'nowhere'}]"))
    with pytest.raises(FileNotFoundError, match=r"missing\.pth"):
        evaluate(cfg_for(tmp_path, f"generator={tmp_path / 'missing.pth'}", f"test_dirs=[{data}]"))
    with pytest.raises(ValueError, match="nothing to evaluate"):
        evaluate(cfg_for(tmp_path))
    with pytest.raises(ValueError, match="unknown metrics"):
        evaluate(cfg_for(tmp_path, f"test_dirs=[{data}]", "metrics=[psnr_y,fid]"))
    x2 = tmp_path / "x2.safetensors"
    save_generator(constant_generator(0.5, scale=2), x2)
    with pytest.raises(ValueError, match="x4"):
        evaluate(cfg_for(tmp_path, f"generator={x2}", f"test_dirs=[{data}]", "metrics=[psnr_y]"))


def test_cli_subprocess_generator_and_bicubic(tmp_path):
    """The contract as run from outside: python -m esrgan_lit.evaluate ... hydra.run.dir=OUT."""
    rng = np.random.default_rng(0)
    dirs = []
    for name, n in (("SetA", 2), ("SetB", 1)):
        d = tmp_path / name
        d.mkdir()
        for i in range(n):
            img = rng.integers(0, 256, (32, 36, 3), dtype=np.uint8)
            Image.fromarray(img).save(d / f"im{i}.png")
        dirs.append(str(d))
    torch.manual_seed(0)
    gen = tmp_path / "tiny.pth"
    save_generator(RRDBNet(num_feat=8, num_block=1, num_grow_ch=4), gen)
    out = tmp_path / "run"
    env = {**os.environ, "WANDB_MODE": "disabled"}
    proc = subprocess.run(
        [
            sys.executable, "-m", "esrgan_lit.evaluate", f"generator={gen}", "scale=4",
            f"test_dirs=[{','.join(dirs)}]", "metrics=[psnr_y,ssim_y,rmse]", "device=cpu",
            f"hydra.run.dir={out}",
        ],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics) == ["SetA", "SetB"]
    assert all(set(v) == KEYS for v in metrics.values())
    assert metrics["SetA"]["num_images"] == 2 and metrics["SetB"]["num_images"] == 1
    assert all(isinstance(metrics[s]["psnr_y"], float) for s in metrics)
    bicubic = json.loads((out / "bicubic.json").read_text())
    assert bicubic["SetA"]["psnr_y"] != metrics["SetA"]["psnr_y"]
    md = (out / "metrics.md").read_text()
    assert "| Set | Metric | Bicubic | tiny |" in md
    with open(out / "per_image.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and {r["method"] for r in rows} == {"Bicubic", "tiny"}


def test_ma_and_pi_share_one_forest_pass(tmp_path):
    """With a forests file, Ma comes from the PerceptualIndex pass and PI = ((10 - Ma) + NIQE)/2."""
    from esrgan_lit.metrics.ma import MA_LINEAR
    from esrgan_lit.metrics.ma_forest import MaForests, RegressionForest, save_forests

    leaves = (4.0, 8.0, 6.0)  # one-leaf forests: every image gets these three scores
    forests = tuple(RegressionForest([0, 1], [-1], [0.0], [-1], [-1], [v]) for v in leaves)
    model = tmp_path / "forests.npz"
    save_forests(model, MaForests(forests=forests))  # type: ignore[arg-type]
    ma = MA_LINEAR[0] + sum(b * s for b, s in zip(MA_LINEAR[1:], leaves))
    assert ma == pytest.approx(6.50814, abs=1e-5)

    data = tmp_path / "Tex"
    data.mkdir()
    yy, xx = np.mgrid[0:208, 0:208]
    img = (
        120 + 60 * np.sin(xx / 3) * np.cos(yy / 5) + np.random.default_rng(0).normal(0, 8, xx.shape)
    )
    Image.fromarray(img.clip(0, 255).astype(np.uint8)).convert("RGB").save(data / "t.png")
    cfg = cfg_for(
        tmp_path,
        f"test_dirs=[{data}]",
        "metrics=[niqe,ma,pi]",
        f"metric_args.ma.model_path={model}",
    )
    row = evaluate(cfg)["Tex"]
    assert row["ma"] == pytest.approx(ma, abs=1e-9)
    assert row["niqe"] is not None
    assert row["pi"] == pytest.approx(0.5 * ((10 - ma) + row["niqe"]), abs=1e-9)


def test_data_benchmarks_skips_absent_sets(tmp_path, monkeypatch):
    """data=benchmarks reads conf/data/benchmarks.yaml; sets not on disk are left out, noted."""
    monkeypatch.setenv("ESRGAN_LIT_DATA_DIR", str(tmp_path / "data"))
    uniform_set(tmp_path / "data" / "benchmark" / "Set14" / "HR")
    cfg = cfg_for(tmp_path, "data=benchmarks", "metrics=[psnr_y]", "data.val_num_workers=0")
    metrics = evaluate(cfg)
    assert list(metrics) == ["Set14"] and metrics["Set14"]["num_images"] == 3
    skipped = json.loads((tmp_path / "out" / "notes.json").read_text())["_skipped_sets"]
    assert set(skipped) == {"Set5", "BSD100", "Urban100", "Manga109", "PIRM"}
    monkeypatch.setenv("ESRGAN_LIT_DATA_DIR", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="none of the sets"):
        evaluate(cfg_for(tmp_path, "data=benchmarks"))


def test_tiled_inference_matches_whole_image(tmp_path, monkeypatch):
    """tile=N goes through esrgan_lit.inference.Upscaler; overlap covers the tiny net's reach."""
    from esrgan_lit.inference import Upscaler

    calls: list[int] = []
    original = Upscaler.upscale

    def spy(self, image, **kwargs):
        calls.append(self.tile)
        return original(self, image, **kwargs)

    monkeypatch.setattr(Upscaler, "upscale", spy)
    rng = np.random.default_rng(1)
    data = tmp_path / "Rand"
    data.mkdir()
    Image.fromarray(rng.integers(0, 256, (64, 72, 3), dtype=np.uint8)).save(data / "r.png")
    torch.manual_seed(0)
    gen = tmp_path / "tiny.safetensors"
    save_generator(RRDBNet(num_feat=8, num_block=1, num_grow_ch=4), gen)
    common = (
        f"generator={gen}",
        f"test_dirs=[{data}]",
        "metrics=[psnr_y,rmse]",
        "bicubic_row=false",
    )
    whole = evaluate(cfg_for(tmp_path / "a", *common))["Rand"]
    assert calls == []  # default: whole image, plain fp32 forward
    tiled = evaluate(cfg_for(tmp_path / "b", *common, "tile=8", "tile_overlap=8"))["Rand"]
    assert calls == [8]
    assert tiled["psnr_y"] == pytest.approx(whole["psnr_y"], abs=0.05)
    assert tiled["rmse"] == pytest.approx(whole["rmse"], rel=1e-2)

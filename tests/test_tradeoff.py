"""Perception-distortion trade-off: selection logic by hand, interpolated generators end to end."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from PIL import Image

from esrgan_lit.archs import RRDBNet
from esrgan_lit.config import config_dir
from esrgan_lit.evaluation.tradeoff_report import (
    best_under_budget,
    choose_perceptual,
    pirm_region,
    plot_tradeoff,
)
from esrgan_lit.tradeoff import tradeoff
from esrgan_lit.weights import save_generator

ROWS = [
    {"alpha": 0.0, "rmse": 10.0, "pi": 5.0, "niqe": 6.0, "lpips": 0.30},
    {"alpha": 0.5, "rmse": 12.0, "pi": 3.0, "niqe": 4.0, "lpips": 0.20},
    {"alpha": 1.0, "rmse": 14.0, "pi": 2.0, "niqe": 3.5, "lpips": 0.25},
]


def test_perceptual_axis_preference():
    assert choose_perceptual(ROWS) == "pi"
    no_pi = [{**r, "pi": None} for r in ROWS]
    assert choose_perceptual(no_pi) == "niqe"
    partial_niqe = [{**r, "niqe": None if r["alpha"] == 1.0 else r["niqe"]} for r in no_pi]
    assert choose_perceptual(partial_niqe) == "lpips"
    assert choose_perceptual([{"alpha": 0.0, "rmse": 1.0}]) is None
    assert choose_perceptual(ROWS, "lpips") == "lpips"


@pytest.mark.parametrize(
    ("budget", "key", "alpha"),
    [(12.5, "pi", 0.5), (16.0, "pi", 1.0), (11.5, "pi", 0.0), (9.0, "pi", None),
     (None, "pi", 1.0), (16.0, "lpips", 0.5)],
)  # fmt: skip
def test_best_alpha_under_budget(budget, key, alpha):
    best = best_under_budget(ROWS, key, budget)
    if alpha is None:
        assert best is None
    else:
        assert best is not None and best["alpha"] == alpha
        assert best[key] == next(r[key] for r in ROWS if r["alpha"] == alpha)


@pytest.mark.parametrize(
    ("rmse", "region"),
    [(11.5, "Region 1"), (11.51, "Region 2"), (12.5, "Region 2"), (16.0, "Region 3"),
     (16.01, None), (None, None)],
)  # fmt: skip
def test_pirm_regions(rmse, region):
    assert pirm_region(rmse) == region


def test_plot_is_a_png(tmp_path):
    path = plot_tradeoff(
        tmp_path / "p.png",
        {"SetA": ROWS},
        "pi",
        budget=12.5,
        best={"SetA": best_under_budget(ROWS, "pi", 12.5)},
        references={"Bicubic": {"SetA": {"rmse": 9.0, "pi": 7.0}}},
    )
    with Image.open(path) as img:
        assert img.format == "PNG" and img.size[0] > 300
    assert not list(tmp_path.glob(".*tmp*"))  # atomic write left nothing behind


# ------------------------------------------------------------------ end to end


def generator(bias: float, *, identity: bool) -> RRDBNet:
    """Tiny RRDBNet with known output: ``bias`` everywhere, or nearest-upsampled input + bias.

    All weights are zero except (identity=True) a centre-tap identity on the first three
    channels of every conv on the main path; the RRDB trunk's contribution is cut by conv_body = 0.
    Two such networks differ only in conv_last's bias, so interpolating them blends the bias.
    """
    net = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        if identity:
            for conv in (net.conv_first, net.conv_up1, net.conv_up2, net.conv_hr, net.conv_last):
                for c in range(3):
                    conv.weight[c, c, 1, 1] = 1.0
        net.conv_last.bias.fill_(bias)
    return net


def cfg_for(tmp_path: Path, *overrides: str):
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose(
            "tradeoff",
            overrides=[
                f"output_dir={tmp_path / 'out'}",
                "progress=false",
                "device=cpu",
                *overrides,
            ],
        )


def test_interpolated_constant_generators_hand_rmse(tmp_path):
    data = tmp_path / "Flat"
    data.mkdir()
    for i, (h, w) in enumerate(((40, 44), (36, 40))):
        Image.fromarray(np.full((h, w, 3), 128, np.uint8)).save(data / f"{i}.png")
    a, b = tmp_path / "psnr.safetensors", tmp_path / "gan.pth"
    save_generator(generator(0.2, identity=False), a)
    save_generator(generator(0.6, identity=False), b)
    summary = tradeoff(
        cfg_for(
            tmp_path, f"psnr={a}", f"gan={b}", "alphas=[0,0.5,1]", f"test_dirs=[{data}]",
            "metrics=[psnr_y,rmse,niqe]", "rmse_budget=25",
        )
    )  # fmt: skip
    # alpha -> SR level round(255 * ((1-a)*0.2 + a*0.6)) -> Y vs Y(128) = 126
    expected = {0.0: abs(60 - 126), 0.5: abs(104 - 126), 1.0: abs(147 - 126)}
    rows = {r["alpha"]: r for r in summary["rows"]}
    assert set(rows) == set(expected)
    for alpha, d in expected.items():
        assert rows[alpha]["rmse"] == pytest.approx(d, abs=1e-9)
        assert rows[alpha]["psnr_y"] == pytest.approx(20 * math.log10(255 / d), abs=1e-9)
    assert rows[0.5]["pirm_region"] is None
    # flat outputs have no NIQE: no perceptual axis, so the plot is PSNR-Y and RMSE vs alpha
    assert summary["perceptual_metric"] is None and summary["best"] == {"Flat": None}
    with Image.open(tmp_path / "out" / "tradeoff.png") as img:
        assert img.format == "PNG"
    note = next(n for n in summary["notes"] if "no perceptual score" in n)
    assert "PSNR-Y and RMSE against alpha" in note
    assert "PSNR-Y and RMSE against alpha" in (tmp_path / "out" / "tradeoff.md").read_text()
    assert json.loads((tmp_path / "out" / "tradeoff.json").read_text())["rows"][1]["alpha"] == 0.5


def test_tradeoff_plot_best_alpha_and_wandb_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    rng = np.random.default_rng(0)
    data = tmp_path / "Tex"
    data.mkdir()
    yy, xx = np.mgrid[0:216, 0:216]
    for i in range(2):
        base = 120 + 60 * np.sin(xx / (3 + i)) * np.cos(yy / 5)
        img = np.stack([base + 20 * c for c in range(3)], -1) + rng.normal(0, 8, (216, 216, 3))
        Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(data / f"t{i}.png")
    a, b = tmp_path / "psnr.safetensors", tmp_path / "gan.safetensors"
    save_generator(generator(0.0, identity=True), a)
    save_generator(generator(0.1, identity=True), b)
    summary = tradeoff(
        cfg_for(
            tmp_path, f"psnr={a}", f"gan={b}", "alphas=[0,0.5,1]", f"test_dirs=[{data}]",
            "metrics=[rmse,niqe]", "rmse_budget=40", "wandb=true", "bicubic_row=true",
        )
    )  # fmt: skip
    out = tmp_path / "out"
    assert summary["perceptual_metric"] == "niqe"
    rows = summary["rows"]
    assert [r["alpha"] for r in rows] == [0.0, 0.5, 1.0]
    # output = nearest(LR) + bias: the added offset (0, 0.05, 0.1) only raises RMSE
    assert rows[0]["rmse"] < rows[1]["rmse"] < rows[2]["rmse"]
    within = [r for r in rows if r["rmse"] <= 40]
    assert summary["best"]["Tex"]["alpha"] == min(within, key=lambda r: r["niqe"])["alpha"]
    assert summary["bicubic"][0]["rmse"] < rows[0]["rmse"]  # bicubic beats nearest upsampling
    with Image.open(out / "tradeoff.png") as img:
        assert img.format == "PNG"
    md = (out / "tradeoff.md").read_text()
    assert "best alpha" in md and "| Tex | bicubic |" in md
    with open(out / "tradeoff.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 4
    with open(out / "per_image.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 8  # (3 alphas + bicubic) x 2 images
    assert list((out / "wandb").glob("offline-run-*")), "no offline W&B run written"


def test_distortion_plot_without_perceptual_scores(tmp_path, monkeypatch):
    """No finite perceptual score (NaN counts as none): PSNR-Y and RMSE vs alpha, titled so."""
    import matplotlib.figure

    from esrgan_lit.evaluation import tradeoff_report

    rows = [{**r, "psnr_y": 30.0 - r["alpha"], "niqe": math.nan, "pi": None} for r in ROWS]
    assert choose_perceptual(rows, "niqe") is None
    titles: list[str] = []
    real = matplotlib.figure.Figure.suptitle
    monkeypatch.setattr(
        matplotlib.figure.Figure,
        "suptitle",
        lambda self, t, **kw: titles.append(t) or real(self, t, **kw),
    )
    path, keys = tradeoff_report.plot_distortion(tmp_path / "d.png", {"SetA": rows}, budget=12.5)
    assert keys == ["psnr_y", "rmse"]
    assert titles == [tradeoff_report.NO_PERCEPTUAL_TITLE] and "No perceptual" in titles[0]
    with Image.open(path) as img:
        assert img.format == "PNG" and img.size[0] > 600  # two panels
    # no distortion metric either: still a PNG, which says so
    path, keys = tradeoff_report.plot_distortion(tmp_path / "e.png", {"SetA": [{"alpha": 0.0}]})
    assert keys == [] and path.is_file()


def test_tradeoff_names_mismatched_models_by_file(tmp_path):
    a, b = tmp_path / "small.safetensors", tmp_path / "wide.safetensors"
    save_generator(generator(0.0, identity=False), a)
    save_generator(RRDBNet(num_feat=16, num_block=1, num_grow_ch=4), b)
    data = tmp_path / "Flat"
    data.mkdir()
    Image.fromarray(np.full((40, 40, 3), 128, np.uint8)).save(data / "0.png")
    with pytest.raises(Exception, match="cannot interpolate") as info:
        tradeoff(cfg_for(tmp_path, f"psnr={a}", f"gan={b}", f"test_dirs=[{data}]"))
    msg = str(info.value)
    assert str(a) in msg and str(b) in msg and "<RRDBNet>" not in msg


def test_tradeoff_rejects_bad_alphas_and_missing_checkpoints(tmp_path):
    a = tmp_path / "a.safetensors"
    save_generator(generator(0.0, identity=False), a)
    with pytest.raises(ValueError, match=r"\[1\.5\]"):
        tradeoff(cfg_for(tmp_path, f"psnr={a}", f"gan={a}", "alphas=[0,1.5]"))
    with pytest.raises(FileNotFoundError, match=r"gan=.*nope"):
        tradeoff(cfg_for(tmp_path, f"psnr={a}", f"gan={tmp_path / 'nope.pth'}"))

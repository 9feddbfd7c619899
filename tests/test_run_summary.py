"""`train` ends by saying where generator.safetensors and metrics.json went, with the final
scores; `tradeoff` ends by listing its files (issue 18, item 2). Run as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from esrgan_lit.archs import RRDBNet
from esrgan_lit.run_summary import files_summary, train_summary
from esrgan_lit.weights import save_generator

TINY = [
    "trainer=cpu",
    "logger=none",
    "model.generator.num_feat=8",
    "model.generator.num_block=1",
    "model.generator.num_grow_ch=4",
    "data.batch_size=2",
    "data.gt_size=32",
    "data.num_workers=0",
    "data.persistent_workers=false",
    "data.val_num_workers=0",
    "trainer.max_steps=2",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
]


def _images(root: Path, n: int, size: int = 48) -> Path:
    root.mkdir(parents=True)
    rng = np.random.default_rng(n)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), np.uint8)).save(root / f"{i}.png")
    return root


def _cli(module: str, *args: str, cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "WANDB_MODE": "offline"}
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_train_prints_where_its_files_went_and_the_scores(tmp_path):
    hr, val = _images(tmp_path / "hr", 3), _images(tmp_path / "val", 1)
    run = tmp_path / "run"
    out = _cli(
        "esrgan_lit.train", "data=folder", f"data.train_sets.folder.hr={hr}",
        f"+data.val_sets.mine={{hr: {val}}}", f"hydra.run.dir={run}", *TINY, cwd=tmp_path,
    )  # fmt: skip
    tail = out[out.index("[esrgan-lit] run directory") :]
    assert str(run / "generator.safetensors") in tail and str(run / "metrics.json") in tail
    psnr = json.loads((run / "metrics.json").read_text())["mine"]["psnr_y"]
    assert f"mine: psnr_y {psnr:.4g} dB" in tail
    assert f"--model {run / 'generator.safetensors'}" in tail


def test_train_summary_without_validation_says_so(tmp_path):
    (tmp_path / "generator.safetensors").write_bytes(b"")
    text = train_summary(tmp_path)
    assert "metrics:   none" in text and "+data.val_sets.NAME" in text


def test_tradeoff_lists_its_files(tmp_path):
    data = _images(tmp_path / "Flat", 1, 40)
    a, b = tmp_path / "psnr.safetensors", tmp_path / "gan.safetensors"
    for bias, path in ((0.2, a), (0.6, b)):
        net = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)
        net.conv_last.bias.data.fill_(bias)
        save_generator(net, path)
    out = _cli(
        "esrgan_lit.tradeoff", f"psnr={a}", f"gan={b}", "alphas=[0,1]", f"test_dirs=[{data}]",
        "metrics=[psnr_y,rmse]", "progress=false", "device=cpu", f"hydra.run.dir={tmp_path / 'o'}",
        cwd=tmp_path,
    )  # fmt: skip
    tail = out[out.index("[esrgan-lit] wrote into") :]
    for name in ("tradeoff.json", "tradeoff.csv", "tradeoff.md", "per_image.csv"):
        assert str(tmp_path / "o" / name) in tail
    assert ".hydra" not in tail and files_summary(tmp_path / "o") in out

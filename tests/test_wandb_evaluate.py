"""``evaluate wandb=true`` offline: the paper-style table, per-image scores and comparison
panels, read back from the offline run's files."""

from __future__ import annotations

import json
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
from wandb_records import records, run_files


def _photos(root: Path) -> Path:
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(40, 48), (36, 44), (44, 40)]):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / f"p{i}.png")
    return root


def test_evaluate_logs_table_and_comparisons_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    torch.manual_seed(0)
    gen = tmp_path / "tiny.safetensors"
    save_generator(RRDBNet(num_feat=8, num_block=1, num_grow_ch=4), gen)
    data = _photos(tmp_path / "Rand")
    out = tmp_path / "out"
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("evaluate", overrides=[
            f"output_dir={out}", "progress=false", "device=cpu", f"generator={gen}",
            f"test_dirs=[{data}]", "metrics=[psnr_y,ssim_y]", "wandb=true", "wandb_images=2",
        ])  # fmt: skip
    metrics = evaluate(cfg)
    (run_file,) = run_files(out)
    files = run_file.parent / "files"
    (table_file,) = files.glob("media/table/evaluation/table_*.table.json")
    table = json.loads(table_file.read_text())
    assert table["columns"] == ["method", "set", "psnr_y", "ssim_y", "num_images"]
    rows = {r[0]: r for r in table["data"]}
    assert set(rows) == {"tiny", "Bicubic"}  # the generator and the bicubic baseline
    assert rows["tiny"][2] == pytest.approx(metrics["Rand"]["psnr_y"])
    (per_image,) = files.glob("media/table/evaluation/per_image_*.table.json")
    assert len(json.loads(per_image.read_text())["data"]) == 6  # 3 images x 2 methods
    panels = sorted(files.glob("media/images/evaluation/comparisons_*.png"))
    assert len(panels) == 2
    assert Image.open(panels[0]).size == (4 * 36, 36)  # LR | bicubic | SR | HR, 36 px crop
    summary = {
        item.key: item.value_json
        for r in records(run_file)
        if r.HasField("summary")
        for item in r.summary.update
    }
    assert float(summary["Rand/psnr_y"]) == pytest.approx(metrics["Rand"]["psnr_y"])

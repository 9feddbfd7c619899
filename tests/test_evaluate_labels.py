"""Evaluation tables name a run's generator by its run folder, not "generator" (issue 18, item 7)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from PIL import Image

from esrgan_lit.archs import RRDBNet
from esrgan_lit.config import config_dir
from esrgan_lit.evaluate import checkpoint_label, evaluate
from esrgan_lit.weights import save_generator


def test_generic_file_names_take_the_run_folder(tmp_path):
    assert checkpoint_label(Path("outputs/demo/psnr/generator.safetensors")) == "psnr"
    assert checkpoint_label(Path("runs/esrgan_x4/checkpoints/last.ckpt")) == "esrgan_x4"
    assert checkpoint_label(Path("weights/RRDB_ESRGAN_x4.pth")) == "RRDB_ESRGAN_x4"


def test_two_runs_get_two_columns(tmp_path):
    data = tmp_path / "Flat"
    data.mkdir()
    Image.fromarray(np.full((40, 44, 3), 128, np.uint8)).save(data / "a.png")
    labels = []
    for run in ("psnr", "gan"):
        gen = save_generator(
            RRDBNet(num_feat=8, num_block=1, num_grow_ch=4),
            tmp_path / run / "generator.safetensors",
        )
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose("evaluate", overrides=[
                f"generator={gen}", f"test_dirs=[{data}]", "metrics=[psnr_y]", "progress=false",
                "device=cpu", f"output_dir={tmp_path / ('out_' + run)}", "bicubic_row=false",
            ])  # fmt: skip
        evaluate(cfg)
        table = (tmp_path / f"out_{run}" / "metrics.md").read_text()
        labels.append(run in table and "generator" not in table)
    assert labels == [True, True]

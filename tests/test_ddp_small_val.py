"""DDP validation with a set smaller than the number of processes (issue 12, item 3).

A 1-image set on 2 ranks gives rank 1 an empty share: the run must finish, every set must be
computed on every rank, and the numbers must equal a 1-process evaluation of the same weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import open_dict
from PIL import Image

from esrgan_lit.config import config_dir
from esrgan_lit.train import train

TINY = [
    "experiment=psnr_pretrain",
    "data=sample",
    "trainer=cpu",
    "logger=none",
    "model.generator.num_feat=8",
    "model.generator.num_block=1",
    "model.generator.num_grow_ch=4",
    "data.batch_size=2",
    "data.gt_size=32",
    "trainer.max_steps=1",
    "callbacks.model_summary=null",
    "callbacks.progress_bar=null",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


def _cfg(out: Path, overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=[*TINY, *overrides], return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
        cfg.hydra.runtime.output_dir = str(out)
    HydraConfig().set_config(cfg)
    return cfg


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_one_image_set_on_two_ranks_equals_one_process(tmp_path):
    one = tmp_path / "one"
    one.mkdir()
    yy, xx = np.mgrid[0:64, 0:64]
    img = np.stack([128 + 60 * np.sin(xx / (3 + c)) * np.cos(yy / 4) for c in range(3)], -1)
    Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(one / "only.png")
    common = [f"paths.data_dir={tmp_path / 'data'}", f"+data.val_sets.one={{hr: {one}}}"]
    ddp = tmp_path / "ddp"
    fork = ["trainer=ddp_cpu", "trainer.devices=2", "+trainer.strategy.start_method=fork"]
    train(_cfg(ddp, [*common, *fork]))  # crashed: "`DataLoader` within local rank has zero length"
    saved = json.loads((ddp / "metrics.json").read_text())
    assert {"sample", "one"} <= set(saved)

    # one process, the same exported weights, every configured set
    from esrgan_lit.callbacks.val_metrics import build_metric
    from esrgan_lit.weights import load_generator

    gen = load_generator(ddp / "generator.safetensors")
    dm = instantiate(_cfg(tmp_path / "eval", common).data)
    dm.prepare_data()
    dm.setup("validate")
    for name, loader in zip(dm.val_set_names, dm.val_dataloader()):
        metrics = {k: build_metric(k, 4) for k in saved[name]}
        with torch.no_grad():
            for batch in loader:
                sr = gen(batch["lq"]).clamp(0, 1)
                for m in metrics.values():
                    m.update(sr, batch["gt"])
        for key, m in metrics.items():
            assert saved[name][key] == pytest.approx(float(m.compute()), abs=1e-5), (name, key)

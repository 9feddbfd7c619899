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
from hydra.utils import instantiate
from PIL import Image

from esrgan_lit.train import train
from train_helpers import compose_cfg

STAGE = ["experiment=psnr_pretrain", "logger=none", "trainer.max_steps=1"]


def _cfg(out: Path, overrides: list[str]):
    # every run dir sits in tmp_path, so the runs share tmp_path / "data"
    return compose_cfg(out, [*STAGE, *overrides], str(out.parent / "data"))


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_one_image_set_on_two_ranks_equals_one_process(tmp_path):
    one = tmp_path / "one"
    one.mkdir()
    yy, xx = np.mgrid[0:64, 0:64]
    img = np.stack([128 + 60 * np.sin(xx / (3 + c)) * np.cos(yy / 4) for c in range(3)], -1)
    Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(one / "only.png")
    common = [f"+data.val_sets.one={{hr: {one}}}"]  # data in tmp_path / "data" (see _cfg)
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

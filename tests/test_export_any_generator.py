"""docs/extending.md's TinyNet trains AND exports (issue 18, item 7): the export callback writes
any generator's weights, and the documented way of loading them back works."""

from __future__ import annotations

import json

import numpy as np
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

from esrgan_lit.inference import Upscaler
from esrgan_lit.train import train
from train_helpers import compose_run


class TinyNet(nn.Module):
    """The network of docs/extending.md, word for word."""

    def __init__(self, scale: int = 4, num_feat: int = 32) -> None:
        super().__init__()
        self.scale, self.num_in_ch, self.num_out_ch = scale, 3, 3
        self.body = nn.Sequential(
            nn.Conv2d(3, num_feat, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(num_feat, 3 * scale * scale, 3, padding=1), nn.PixelShuffle(scale),
        )  # fmt: skip

    def forward(self, x):
        return self.body(x)


def test_tinynet_trains_exports_and_loads_back(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("hr", 3), ("val", 1)):
        (tmp_path / split).mkdir()
        for i in range(n):
            img = rng.integers(0, 256, (48, 48, 3), np.uint8)
            Image.fromarray(img).save(tmp_path / split / f"{i}.png")
    out = tmp_path / "run"
    cfg = compose_run(out, [
        "experiment=psnr_pretrain", "data=folder", f"data.train_sets.folder.hr={tmp_path / 'hr'}",
        f"+data.val_sets.mine={{hr: {tmp_path / 'val'}}}", "trainer=cpu", "logger=none",
        "~model.generator", f"+model.generator={{_target_: {__name__}.TinyNet, num_feat: 8}}",
        "data.batch_size=2", "data.gt_size=32", "data.num_workers=0",
        "data.persistent_workers=false", "data.val_num_workers=0", "trainer.max_steps=2",
        "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
        "callbacks.progress_bar=null", "callbacks.model_summary=null",
    ])  # fmt: skip
    train(cfg)
    gen = out / "generator.safetensors"
    assert gen.is_file() and json.loads((out / "metrics.json").read_text())["mine"]
    with safe_open(str(gen), "pt") as f:
        assert f.metadata()["class"] == f"{__name__}.TinyNet"
    # docs/extending.md: rebuild the network, load the state dict, hand it to the Upscaler
    net = TinyNet(num_feat=8)
    net.load_state_dict(load_file(gen))
    sr = Upscaler(net, device="cpu").upscale(torch.rand(3, 8, 8))
    assert sr.shape[-2:] == (32, 32)

"""The self-ensemble on Set5 with the demo's trained generator is not worse than plain inference.

Trains `experiment=demo` (shortened: `ESRGAN_LIT_TTA_DEMO_STEPS`, default 300) unless
`ESRGAN_LIT_DEMO_GENERATOR` names an already trained demo generator (e.g. `make demo`'s
`outputs/demo/psnr/generator.safetensors`), then runs `evaluate tta=true` on Set5.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

SET5 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "benchmarks" / "Set5"


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.skipif(not SET5.is_dir(), reason=f"Set5 not at {SET5}")
def test_tta_is_not_worse_than_plain_on_set5(tmp_path: Path) -> None:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from esrgan_lit.config import config_dir
    from esrgan_lit.evaluate import evaluate

    generator = os.environ.get("ESRGAN_LIT_DEMO_GENERATOR")
    if not generator:
        pytest.importorskip("skimage")  # the built-in sample photos (the `sample` extra)
        from esrgan_lit import demo
        from esrgan_lit.train import train

        steps = int(os.environ.get("ESRGAN_LIT_TTA_DEMO_STEPS", "300"))
        overrides = [f"trainer.max_steps={steps}", "logger=none",
                     f"paths.data_dir={tmp_path / 'data'}"]  # fmt: skip
        train(demo._compose("demo", tmp_path / "psnr", overrides))
        generator = str(tmp_path / "psnr" / "generator.safetensors")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("evaluate", overrides=[
            f"generator={generator}", "name=demo", f"test_dirs=[{SET5}]", "tta=true",
            "metrics=[psnr_y,ssim_y]", "device=cpu", "progress=false", "bicubic_row=false",
            f"output_dir={tmp_path / 'eval'}"])  # fmt: skip
    evaluate(cfg)
    plain = json.loads((tmp_path / "eval" / "metrics.json").read_text())["Set5"]
    plus = json.loads((tmp_path / "eval" / "metrics_tta.json").read_text())["Set5"]
    print(f"Set5 x4 demo generator: plain {plain}, tta {plus}")
    assert plus["num_images"] == plain["num_images"] == 5
    assert plus["psnr_y"] >= plain["psnr_y"], (plain, plus)
    assert plus["ssim_y"] >= plain["ssim_y"] - 1e-4, (plain, plus)

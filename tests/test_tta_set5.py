"""The self-ensemble on Set5 with the demo's trained generator is not worse than plain inference.

Needs the generator `make demo` trains (1500 steps; `outputs/demo/psnr/generator.safetensors`), or
any trained demo generator named by `ESRGAN_LIT_DEMO_GENERATOR`; skips when neither is there.
(A shortened demo is no substitute: after 300 steps its EMA generator scores ~16 dB on Set5, far
below bicubic, and then nothing about the ensemble is being measured.)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SET5 = ROOT.parent / "shared" / "data" / "benchmarks" / "Set5"
DEMO = Path(
    os.environ.get("ESRGAN_LIT_DEMO_GENERATOR", ROOT / "outputs/demo/psnr/generator.safetensors")
)


@pytest.mark.slow
@pytest.mark.skipif(not SET5.is_dir(), reason=f"Set5 not at {SET5}")
@pytest.mark.skipif(
    not DEMO.is_file(),
    reason=f"no trained demo generator at {DEMO} (run `make demo` or set ESRGAN_LIT_DEMO_GENERATOR)",
)
def test_tta_is_not_worse_than_plain_on_set5(tmp_path: Path) -> None:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from esrgan_lit.config import config_dir
    from esrgan_lit.evaluate import evaluate

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("evaluate", overrides=[
            f"generator={DEMO}", "name=demo", f"test_dirs=[{SET5}]", "tta=true",
            "metrics=[psnr_y,ssim_y]", "device=cpu", "progress=false",
            f"output_dir={tmp_path / 'eval'}"])  # fmt: skip
    evaluate(cfg)
    plain = json.loads((tmp_path / "eval" / "metrics.json").read_text())["Set5"]
    plus = json.loads((tmp_path / "eval" / "metrics_tta.json").read_text())["Set5"]
    bicubic = json.loads((tmp_path / "eval" / "bicubic.json").read_text())["Set5"]
    assert plain["psnr_y"] > bicubic["psnr_y"], "the demo generator is not trained"
    assert plus["num_images"] == plain["num_images"] == 5
    assert plus["psnr_y"] >= plain["psnr_y"], (plain, plus)
    assert plus["ssim_y"] >= plain["ssim_y"] - 1e-4, (plain, plus)

"""Smoke test of benchmarks/bench_degradation.py (tiny sizes), so the report cannot rot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_degradation.py"
TINY = ["--device", "cpu", "--batch", "2", "--iters", "1", "--warmup", "0", "--num-block", "1"]
TINY += ["--step-iters", "1", "--step-warmup", "0"]


@pytest.mark.parametrize("crop", ["48", "0"])
def test_bench_degradation_reports_pairs_and_share(crop):
    args = [*TINY, "--gt-size", "32", "--crop-pad-size", crop]
    out = subprocess.run(
        [sys.executable, str(PATH), *args], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    head = "degraded as 48 px crops" if crop == "48" else "degraded whole"
    assert f"batch 2 x 32px GT ({head})" in out.stdout
    assert "| degradation |" in out.stdout and "share of a step:" in out.stdout

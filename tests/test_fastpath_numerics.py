"""The fast path keeps the math: tiny GAN and PSNR runs, fast vs plain fp32 (issue 15).

The 300-iteration full-size comparison is ``benchmarks/bench_train_numerics.py --device cuda``;
here 30 iterations of the tiny nets on CPU through the same code, with the same tolerances:
each gap within a fixed bound or 2.5x the gap of a control run (the same switches in fp32).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_train_numerics.py"


def _load():
    spec = importlib.util.spec_from_file_location("bench_train_numerics", PATH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


bench = _load()


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    n = torch.get_num_threads()
    out = tmp_path_factory.mktemp("num") / "numerics.json"
    try:
        yield bench.main(["--tiny", "--iters", "30", "--out", str(out)]), out
    finally:
        torch.set_num_threads(n)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("stage", ["psnr", "gan"])
def test_fast_path_curves_and_weights_match_plain_fp32(result, stage):
    res, _ = result
    cmp, tol = res[stage], bench.TOLERANCE[stage]
    ctl = cmp["control_fp32_switches"]
    assert cmp["nonfinite_plain"] == cmp["nonfinite_fast"] == [0, 0]  # no NaN fallback fired
    for k, gap in cmp["curve_gap"].items():  # the stated tolerance, or 2.5x the control's
        assert gap <= max(tol["curve"], bench.CONTROL_FACTOR * ctl["curve_gap"][k]), k
    assert 0 < cmp["weight_gap"] <= max(tol["weights"], bench.CONTROL_FACTOR * ctl["weight_gap"])
    assert cmp["ok"]
    n_curves = 1 if stage == "psnr" else 6  # l_pix (+ l_percep, l_gan, l_g_total, l_d_*)
    assert len(cmp["curve_gap"]) == n_curves


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_report_files_are_written(result):
    _, out = result
    assert out.is_file() and out.with_suffix(".md").is_file()
    assert "within tolerance" in out.with_suffix(".md").read_text()


def test_compare_flags_a_diverging_run():
    plain = {
        "curves": {"l": [1.0] * 20},
        "delta": {"generator.w": torch.ones(4)},
        "nonfinite": [0, 0],
    }
    fast = {
        "curves": {"l": [2.0] * 20},
        "delta": {"generator.w": torch.ones(4)},
        "nonfinite": [0, 0],
    }
    plain["seconds"] = fast["seconds"] = 1.0
    cmp = bench.compare(plain, fast)
    assert cmp["curve_gap"]["l"] == pytest.approx(1.0) and not bench.verdict("psnr", cmp)
    cmp["control_fp32_switches"] = {"curve_gap": {"l": 0.5}, "weight_gap": 0.0}
    assert bench.verdict("psnr", cmp)  # within 2.5x the control's gap
    cmp["control_fp32_switches"]["curve_gap"]["l"] = 0.1
    assert not bench.verdict("psnr", cmp)
    fast["curves"]["l"], fast["nonfinite"] = [1.0] * 20, [1, 1]
    assert not bench.verdict("psnr", bench.compare(plain, fast))

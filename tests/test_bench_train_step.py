"""Smoke test of benchmarks/bench_train_step.py on tiny networks, so the report cannot rot.

FLOP counts are checked against conv FLOPs computed here by hand (2*Cin*Cout*k*k per output
pixel), the RRDBNet formula against issue 6's 35.9 MFLOP per input pixel, and the hand-written
loop against the real ESRGANModule (identical weights after one iteration).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch

PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_train_step.py"
TINY = ["--num-feat", "8", "--num-block", "1", "--num-grow-ch", "4", "--d-feat", "8"]
TINY += ["--quick", "--steps", "2", "--threads", "1"]  # batch 2 x gt 32 (lq 8)


def _load():
    spec = importlib.util.spec_from_file_location("bench_train_step", PATH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


bench = _load()


def conv(cin: int, cout: int, px: int, k: int = 3) -> int:
    return 2 * cin * cout * k * k * px


def rrdbnet_fwd(nf: int, nb: int, gc: int, lq_px: int) -> tuple[int, int]:
    """(total, conv_first) forward FLOPs of an x4 RRDBNet on ``lq_px`` input pixels."""
    rdb = sum(conv(nf + i * gc, gc, lq_px) for i in range(4)) + conv(nf + 4 * gc, nf, lq_px)
    first = conv(3, nf, lq_px)
    up = conv(nf, nf, 4 * lq_px) + 2 * conv(nf, nf, 16 * lq_px) + conv(nf, 3, 16 * lq_px)
    return first + 3 * nb * rdb + conv(nf, nf, lq_px) + up, first


def vgg19_conv5_4(px: int) -> int:
    widths = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256)] + [(256, 256)] * 3
    widths += [(256, 512)] + [(512, 512)] * 7
    scale = [1, 1, 2, 2, 4, 4, 4, 4, 8, 8, 8, 8, 16, 16, 16, 16]
    return sum(conv(ci, co, px // s**2) for (ci, co), s in zip(widths, scale))


@pytest.fixture(scope="module")
def tiny_run():
    n = torch.get_num_threads()
    cfg = dataclasses.replace(bench.parse(TINY)[0], peak_n=256)
    try:
        yield cfg, bench.run(cfg)
    finally:
        torch.set_num_threads(n)


def test_analytic_rrdbnet_matches_issue_figure():
    total, _ = rrdbnet_fwd(64, 23, 32, 1)
    assert total / 1e6 == pytest.approx(35.9, abs=0.05)


def test_parse_rejects_bad_settings():
    cfg, _ = bench.parse(["--quick"])
    assert (cfg.batch, cfg.gt_size, cfg.num_block, cfg.num_feat) == (2, 32, 23, 64)
    for bad in (["--gt-size", "48"], ["--gt-size", "32", "--batch", "1"], ["--variants", "fp16"]):
        with pytest.raises((SystemExit, ValueError)):
            bench.parse(bad)


def test_lightning_and_hand_loop_do_the_same_iterations(tiny_run):
    cfg, info = tiny_run
    (res,) = info["variants"]
    assert res.global_step == res.iterations == cfg.warmup + cfg.steps  # max_steps = iterations
    assert len(res.lightning) == cfg.steps and len(res.hand) == 2 * cfg.steps
    assert all(0 < w < 60 and 0 <= c < 60 for w, c in res.lightning + res.hand + res.breakdown)
    assert res.max_diff < 1e-6  # same weights and BN statistics after one iteration
    assert math.isfinite(res.log_ms) and res.log_ms > 0
    assert len(info["peak"]["fp32"]) == 2 * cfg.peak_reps
    assert all(w > 0 and c > 0 for w, c in info["peak"]["fp32"])


def test_flops_per_phase_match_hand_counts(tiny_run):
    cfg, info = tiny_run
    f = info["variants"][0].flops
    lq_px = cfg.batch * (cfg.gt_size // 4) ** 2
    g_fwd, g_first = rrdbnet_fwd(8, 1, 4, lq_px)
    assert f["G fwd"] == g_fwd
    assert f["G bwd"] == 2 * g_fwd - g_first  # weight + input grads; none for the LR input
    vgg = vgg19_conv5_4(cfg.batch * cfg.gt_size**2)
    assert f["VGG fwd"] == 2 * vgg  # SR and GT features
    assert f["VGG bwd"] == vgg  # frozen VGG: input grads of the SR branch only
    assert f["D fwd"] > 0 and f["D bwd"] > f["D fwd"] / 2
    assert info["g_mflop_per_px"] == pytest.approx(g_fwd / lq_px / 1e6)


def test_report_and_written_file(tiny_run, tmp_path, monkeypatch):
    _, info = tiny_run
    text = bench.render(info, "cmd")
    for needle in ("Lightning overhead", "Not measured here", "| VGG bwd |", "Load average"):
        assert needle in text
    monkeypatch.setattr(bench, "run", lambda c: info)
    out = bench.main([*TINY, "--out", str(tmp_path / "r.md")])
    assert out == tmp_path / "r.md" and "## fp32:" in out.read_text()


def test_bf16_channels_last_variant_runs_on_cpu():
    cfg, _ = bench.parse([*TINY, "--steps", "1", "--variants", "bf16-cl"])
    cfg = dataclasses.replace(cfg, peak_n=256)
    n = torch.get_num_threads()
    try:
        (res,) = bench.run(cfg)["variants"]
    finally:
        torch.set_num_threads(n)
    assert res.global_step == cfg.warmup + cfg.steps
    assert res.max_diff < 1e-3 and all(w > 0 for w, _ in res.lightning + res.hand)

"""The GPU benchmark's code path (benchmarks/bench_train_step_gpu.py) on CPU with tiny nets.

The figures mean nothing here; what is checked: every variant runs through the real Trainer or
the BasicSR-style loop, FLOPs are counted, the JSON has the issue's keys, and the BasicSR-style
loop does the paper's math (its first G step equals our module's, up to its extra D forward).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


gpu = _load("bench_train_step_gpu")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu") / "train_step_gpu.json"
    args = ["--device", "cpu", "--tiny", "--stages", "psnr", "--steps", "1"]
    args += ["--workers", "1", "--data-batches", "2", "--json", str(out)]
    n = torch.get_num_threads()
    try:
        yield gpu.main(args), out
    finally:
        torch.set_num_threads(n)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_tiny_run_writes_the_issue_json(tiny):
    _, out = tiny
    data = json.loads(out.read_text())
    assert set(data) >= {"gpu", "gan", "psnr"} and data["gpu"] is None and data["gan"] is None
    psnr = data["psnr"]
    for key in ("basicsr_loop_ms", "lit_default_ms", "lit_auto_ms", "lit_fast_ms"):
        assert psnr[key] > 0, key
    assert psnr["lit_fast_compile_ms"] is None  # not asked for
    d = psnr["lit_default_detail"]
    assert d["flop_per_iter"] > 0 and d["nonfinite_steps"] == 0
    assert 0 <= data["data"]["share"] <= 1 and data["data"]["workers"] == 1
    text = out.with_suffix(".md").read_text()
    assert "| psnr | basicsr_loop |" in text and "Data wait" in text


def test_flops_of_basicsr_psnr_step_are_the_generators():
    sz = gpu.sizes(True)
    nets = gpu.make_nets(sz)
    args = gpu.parse(["--device", "cpu", "--tiny", "--steps", "1"])
    r = gpu.time_basicsr("psnr", nets, sz, args)
    lq_px = sz["batch"] * (sz["gt"] // 4) ** 2
    # forward + backward of G: 3x the forward minus conv_first's input gradient
    g = nets[0]
    with torch.utils.flop_counter.FlopCounterMode(display=False) as fc:
        g(torch.rand(sz["batch"], 3, sz["gt"] // 4, sz["gt"] // 4))
    g_fwd = fc.get_total_flops()
    first = 2 * 3 * sz["nf"] * 9 * lq_px
    assert r["flop"] == 3 * g_fwd - first


def test_parse_refuses_full_size_on_cpu():
    with pytest.raises(SystemExit):
        gpu.parse(["--device", "cpu"])
    with pytest.raises(SystemExit):
        gpu.parse(["--device", "cpu", "--tiny", "--stages", "vgg"])

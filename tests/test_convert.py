"""``python -m esrgan_lit.convert IN OUT``: any supported checkpoint -> safetensors / BasicSR pth."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from esrgan_lit.archs import RRDBNet
from esrgan_lit.convert import main
from esrgan_lit.weights import load_generator


def tiny_old_arch(path: Path) -> RRDBNet:
    """Write a tiny x4 net in the original ESRGAN old-arch layout (keys from the issue)."""
    torch.manual_seed(0)
    net = RRDBNet(num_feat=8, num_block=1, num_grow_ch=6).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.1)
    tail = {"conv_first": "model.0", "conv_body": "model.1.sub.1", "conv_up1": "model.3"}
    tail |= {"conv_up2": "model.6", "conv_hr": "model.8", "conv_last": "model.10"}
    sd = {}
    for k, v in net.state_dict().items():
        if k.startswith("body."):
            _, i, rdb, c, leaf = k.split(".")
            sd[f"model.1.sub.{i}.RDB{rdb[-1]}.{c}.0.{leaf}"] = v
        else:
            head, leaf = k.split(".")
            sd[f"{tail[head]}.{leaf}"] = v
    torch.save(sd, path)
    return net


def same_output(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    x = torch.rand(1, 3, 6, 5)
    with torch.no_grad():
        return torch.equal(a(x), b(x))


def test_convert_to_safetensors_and_pth(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = tmp_path / "old.pth"
    net = tiny_old_arch(src)
    assert main([str(src), str(tmp_path / "g.safetensors")]) == 0
    printed = capsys.readouterr().out
    assert "RRDBNet x4" in printed and "gc 6" in printed
    assert same_output(load_generator(tmp_path / "g.safetensors"), net)

    assert main([str(tmp_path / "g.safetensors"), str(tmp_path / "out" / "g.pth")]) == 0
    raw = torch.load(tmp_path / "out" / "g.pth", weights_only=True)
    assert raw["params_ema"].keys() == net.state_dict().keys()  # BasicSR layout
    assert same_output(load_generator(tmp_path / "out" / "g.pth"), net)


def test_convert_reports_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main([str(tmp_path / "nope.pth"), str(tmp_path / "o.safetensors")]) == 1
    err = capsys.readouterr().err
    assert "nope.pth" in err and "no such checkpoint file" in err
    assert not (tmp_path / "o.safetensors").exists()
    src = tmp_path / "old.pth"
    tiny_old_arch(src)
    assert main([str(src), str(tmp_path / "o.onnx")]) == 2
    assert "o.onnx" in capsys.readouterr().err


def test_convert_module_entry_point(tmp_path: Path) -> None:
    src = tmp_path / "old.pth"
    net = tiny_old_arch(src)
    dst = tmp_path / "g.safetensors"
    proc = subprocess.run(
        [sys.executable, "-m", "esrgan_lit.convert", str(src), str(dst)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "nf 8, nb 1, gc 6" in proc.stdout
    assert same_output(load_generator(dst), net)

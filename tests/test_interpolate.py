"""``python -m esrgan_lit.interpolate psnr=A gan=B alpha=0.8 output=OUT`` (and ``-m`` sweeps)."""

from __future__ import annotations

import sys

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from safetensors.torch import load_file

from esrgan_lit.archs import RRDBNet
from esrgan_lit.interpolate import interpolate_to_file, main, output_path
from esrgan_lit.weights import save_generator


@pytest.fixture
def pair(tmp_path):
    torch.manual_seed(0)
    a, b = (
        RRDBNet(num_feat=8, num_block=1, num_grow_ch=4),
        RRDBNet(num_feat=8, num_block=1, num_grow_ch=4),
    )
    pa, pb = tmp_path / "psnr.safetensors", tmp_path / "gan.pth"  # two different formats
    save_generator(a, pa)
    save_generator(b, pb)
    return a.state_dict(), b.state_dict(), pa, pb


def _run_cli(monkeypatch, args):
    monkeypatch.setattr(sys, "argv", ["esrgan-interpolate", *args])
    GlobalHydra.instance().clear()
    main()


def test_cli_blends_weights(pair, tmp_path, monkeypatch):
    a, b, pa, pb = pair
    out = tmp_path / "interp.safetensors"
    _run_cli(monkeypatch, [f"psnr={pa}", f"gan={pb}", "alpha=0.8", f"output={out}",
                           f"hydra.run.dir={tmp_path / 'run'}"])  # fmt: skip
    got = load_file(out)
    for k in a:
        torch.testing.assert_close(got[k], 0.2 * a[k] + 0.8 * b[k])


def test_multirun_sweeps_alpha(pair, tmp_path, monkeypatch):
    a, b, pa, pb = pair
    out = tmp_path / "sweep_out"
    _run_cli(monkeypatch, ["-m", f"psnr={pa}", f"gan={pb}", "alpha=0,0.5,1", f"output={out}/",
                           f"hydra.sweep.dir={tmp_path / 'sweep'}"])  # fmt: skip
    for alpha in (0, 0.5, 1):
        got = load_file(out / f"interp_alpha{alpha:g}.safetensors")
        for k in a:
            torch.testing.assert_close(got[k], (1 - alpha) * a[k] + alpha * b[k])


def test_bad_inputs_are_clear(pair, tmp_path):
    _, _, pa, pb = pair
    with pytest.raises(ValueError, match="alpha must be in"):
        interpolate_to_file(str(pa), str(pb), 1.5, str(tmp_path / "x.safetensors"))
    with pytest.raises(FileNotFoundError, match="gan="):
        interpolate_to_file(
            str(pa), str(tmp_path / "nope.pth"), 0.5, str(tmp_path / "x.safetensors")
        )
    other = tmp_path / "other.safetensors"
    save_generator(RRDBNet(num_feat=16, num_block=1, num_grow_ch=4), other)
    with pytest.raises(Exception, match="has shape"):
        interpolate_to_file(str(pa), str(other), 0.5, str(tmp_path / "x.safetensors"))
    assert not (tmp_path / "x.safetensors").exists()


def test_output_path_rules(tmp_path):
    assert output_path(str(tmp_path / "a.pth"), 0.8).name == "a.pth"
    assert output_path(str(tmp_path), 0.8).name == "interp_alpha0.8.safetensors"

"""Export: ONNX (dynamic batch/height/width) vs PyTorch via ONNX Runtime, TorchScript round trip."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from esrgan_lit.archs import RRDBNet
from esrgan_lit.export import main
from esrgan_lit.weights import save_generator


def tiny(path, scale):
    torch.manual_seed(0)
    m = RRDBNet(scale=scale, num_feat=8, num_block=1, num_grow_ch=8).eval()
    for p in m.parameters():
        p.data.normal_(0.0, 0.05)
    save_generator(m, path)
    return m


@pytest.mark.parametrize("scale", [4, 2])
def test_onnx_matches_pytorch_at_other_sizes(tmp_path, scale, capsys):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    m = tiny(tmp_path / "g.safetensors", scale)
    out = tmp_path / "g.onnx"
    assert main(["--model", str(tmp_path / "g.safetensors"), "--format", "onnx", str(out)]) == 0
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    for shape in [(1, 3, 20, 36), (2, 3, 12, 8)]:  # not the 32x32 export example
        x = torch.rand(*shape)
        got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
        with torch.no_grad():
            want = m(x).numpy()
        assert got.shape == want.shape == (shape[0], 3, shape[2] * scale, shape[3] * scale)
        assert np.abs(got - want).max() < 1e-3


def test_torchscript_round_trip(tmp_path):
    m = tiny(tmp_path / "g.pth", 4)
    out = tmp_path / "g.pt"
    assert main(["--model", str(tmp_path / "g.pth"), "--format", "torchscript", str(out)]) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript is deprecated upstream; it still loads
        loaded = torch.jit.load(str(out))
    x = torch.rand(1, 3, 10, 14)
    with torch.no_grad():
        assert torch.allclose(loaded(x), m(x), atol=1e-5)


def test_bad_model_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "x.pth").write_bytes(b"junk")
    assert (
        main(["--model", str(tmp_path / "x.pth"), "--format", "onnx", str(tmp_path / "o.onnx")])
        == 2
    )
    assert "x.pth" in capsys.readouterr().err
    assert not (tmp_path / "o.onnx").exists()

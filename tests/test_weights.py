"""Checkpoints: every key format round-trips, sizes are read from shapes, bad files give clear
errors, pickled code never runs, interpolation is the hand blend."""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from esrgan_lit.archs import RRDBNet, SRResNet, VGGStyleDiscriminator
from esrgan_lit.weights import (
    CheckpointError,
    UnsafeCheckpointError,
    interpolate,
    load_generator,
    load_state_dict,
    save_generator,
)
from esrgan_lit.weights.formats import from_canonical


def tiny(seed: int = 0, **kw: int) -> RRDBNet:
    """A small RRDBNet with large random weights (so any wrong tensor changes the output)."""
    torch.manual_seed(seed)
    args = {"num_feat": 8, "num_block": 2, "num_grow_ch": 4, **kw}
    m = RRDBNet(**args).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.1)
    return m


def out(m: nn.Module, seed: int = 1) -> torch.Tensor:
    torch.manual_seed(seed)
    with torch.no_grad():
        return m(torch.rand(1, m.num_in_ch, 8, 12))


# --- foreign layouts written by hand from the key lists (not by our formats.py) ---


def to_new_arch(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    ren = {"conv_body": "trunk_conv", "conv_hr": "HRconv"}
    res = {}
    for k, v in sd.items():
        k2 = re.sub(r"^body\.(\d+)\.rdb(\d)\.", r"RRDB_trunk.\1.RDB\2.", k)
        k2 = re.sub(r"^conv_up(\d)\.", r"upconv\1.", k2)
        head, rest = k2.split(".", 1)
        res[f"{ren.get(head, head)}.{rest}"] = v
    return res


def to_old_arch(sd: dict[str, torch.Tensor], nb: int, x8: bool = False) -> dict[str, torch.Tensor]:
    if x8:
        tail = {"conv_up1": 3, "conv_up2": 6, "conv_up3": 9, "conv_hr": 11, "conv_last": 13}
    else:
        tail = {"conv_up1": 3, "conv_up2": 6, "conv_hr": 8, "conv_last": 10}
    res = {}
    for k, v in sd.items():
        m = re.match(r"^body\.(\d+)\.rdb(\d)\.conv(\d)\.(\w+)$", k)
        head, rest = k.split(".", 1)
        if m:
            res[f"model.1.sub.{m[1]}.RDB{m[2]}.conv{m[3]}.0.{m[4]}"] = v
        elif head == "conv_first":
            res[f"model.0.{rest}"] = v
        elif head == "conv_body":
            res[f"model.1.sub.{nb}.{rest}"] = v
        else:
            res[f"model.{tail[head]}.{rest}"] = v
    return res


def test_hand_layouts_agree_with_formats_module() -> None:
    sd = tiny(scale=8).state_dict()
    assert from_canonical(sd, "esrgan_new").keys() == to_new_arch(sd).keys()
    assert from_canonical(sd, "esrgan_old").keys() == to_old_arch(sd, 2, x8=True).keys()
    old = to_old_arch(tiny().state_dict(), 2)
    assert {"model.0.weight", "model.1.sub.2.weight", "model.3.bias", "model.10.weight"} <= set(old)
    assert "model.1.sub.1.RDB3.conv5.0.weight" in old


CASES = [
    ("basicsr_raw", 4, ".pth"),
    ("basicsr_raw", 4, ".safetensors"),
    ("params_ema", 4, ".pth"),
    ("params", 4, ".pth"),
    ("state_dict", 4, ".pth"),
    ("module_prefix", 4, ".pth"),
    ("orig_mod_prefix", 4, ".pth"),
    ("new_arch", 4, ".pth"),
    ("new_arch", 8, ".safetensors"),
    ("old_arch", 4, ".pth"),
    ("old_arch", 8, ".pth"),
    ("old_arch", 4, ".safetensors"),
    ("old_arch", 4, "legacy.pth"),  # pre-1.6 torch.save format, as the 2018 ESRGAN releases
    ("basicsr_unshuffle", 2, ".pth"),
    ("basicsr_unshuffle", 1, ".safetensors"),
    ("lightning", 4, ".ckpt"),
    ("lightning_averaged", 2, ".ckpt"),
]


@pytest.mark.parametrize(("layout", "scale", "suffix"), CASES)
def test_round_trip_every_format(tmp_path: Path, layout: str, scale: int, suffix: str) -> None:
    net = tiny(scale=scale)
    sd = net.state_dict()
    obj: dict = {
        "basicsr_raw": sd,
        "basicsr_unshuffle": sd,
        "params_ema": {"params_ema": sd, "params": tiny(9, scale=scale).state_dict()},
        "params": {"params": sd},
        "state_dict": {"state_dict": sd, "epoch": 3},
        "module_prefix": {f"module.{k}": v for k, v in sd.items()},
        "orig_mod_prefix": {f"_orig_mod.{k}": v for k, v in sd.items()},
        "new_arch": to_new_arch(sd),
        "old_arch": to_old_arch(sd, 2, x8=scale == 8),
    }.get(layout, {})
    if layout == "lightning":  # EMA weights preferred over the raw generator
        other = tiny(7).state_dict()
        obj = {
            "state_dict": {
                **{f"generator.{k}": v for k, v in other.items()},
                **{f"generator_ema.{k}": v for k, v in sd.items()},
                **{
                    f"discriminator.{k}": v
                    for k, v in VGGStyleDiscriminator(2, 2).state_dict().items()
                },
            },
            "hyper_parameters": {"cfg": OmegaConf.create({"model": {"nf": 8}}), "dir": Path("x")},
            "optimizer_states": [],
        }
    if layout == "lightning_averaged":  # torch.optim.swa_utils.AveragedModel(torch.compile(G))
        obj = {
            "state_dict": {
                **{f"generator._orig_mod.{k}": v * 0 for k, v in sd.items()},
                **{f"generator_ema.module._orig_mod.{k}": v for k, v in sd.items()},
                "generator_ema.n_averaged": torch.tensor(5),
            }
        }
    path = tmp_path / f"g{suffix}"
    if suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in obj.items()}, str(path))
    elif suffix == "legacy.pth":
        torch.save(obj, path, _use_new_zipfile_serialization=False)
    else:
        torch.save(obj, path)
    loaded = load_generator(path)
    assert isinstance(loaded, RRDBNet)
    assert not loaded.training
    assert (loaded.scale, loaded.num_feat, loaded.num_block, loaded.num_grow_ch) == (scale, 8, 2, 4)
    assert torch.equal(out(loaded), out(net))


def test_sizes_read_from_shapes_not_assumed() -> None:
    for kw in [
        {"num_feat": 16, "num_block": 3, "num_grow_ch": 12},
        {"num_feat": 12, "num_block": 1, "num_grow_ch": 32, "num_in_ch": 1, "num_out_ch": 1},
        {"num_feat": 8, "num_block": 2, "num_grow_ch": 6, "num_in_ch": 4, "num_out_ch": 3},
    ]:
        net = tiny(**kw)
        for fmt in (net.state_dict(), to_new_arch(net.state_dict())):
            m = load_generator(fmt)
            for k, v in kw.items():
                assert getattr(m, k) == v, k
            assert torch.equal(out(m), out(net))


def test_safetensors_metadata_and_ambiguous_channels(tmp_path: Path) -> None:
    # 12 input channels at x4 looks like an RGB pixel-unshuffle x2 model from shapes alone;
    # the metadata save_generator writes settles it.
    net = tiny(num_in_ch=12, num_out_ch=3)
    path = save_generator(net, tmp_path / "g.safetensors")
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    assert meta["arch"] == "RRDBNet"
    assert (meta["scale"], meta["num_feat"], meta["num_block"], meta["num_grow_ch"]) == (
        "4",
        "8",
        "2",
        "4",
    )
    assert (meta["num_in_ch"], meta["num_out_ch"]) == ("12", "3")
    m = load_generator(path)
    assert (m.scale, m.num_in_ch) == (4, 12)
    assert torch.equal(out(m), out(net))
    # without metadata the shapes alone read as pixel-unshuffle x2 RGB (the x2 convention)
    assert load_generator(net.state_dict()).scale == 2


def test_save_pth_is_basicsr_params_ema(tmp_path: Path) -> None:
    net = tiny(scale=2)
    path = save_generator(net, tmp_path / "g.pth")
    raw = torch.load(path, weights_only=True)
    assert list(raw) == ["params_ema"]
    assert raw["params_ema"].keys() == net.state_dict().keys()
    assert torch.equal(out(load_generator(path)), out(net))


def test_save_unwraps_wrappers_and_srresnet_round_trip(tmp_path: Path) -> None:
    net = tiny()
    avg = torch.optim.swa_utils.AveragedModel(net)
    save_generator(avg, tmp_path / "a.safetensors")
    assert torch.equal(out(load_generator(tmp_path / "a.safetensors")), out(net))
    torch.manual_seed(0)
    sr = SRResNet(scale=4, num_feat=8, num_block=2, batch_norm=True).eval()
    save_generator(sr, tmp_path / "s.safetensors")
    back = load_generator(tmp_path / "s.safetensors")
    assert isinstance(back, SRResNet)
    assert back.batch_norm and (back.scale, back.num_block) == (4, 2)
    x = torch.rand(1, 3, 6, 6)
    with torch.no_grad():
        assert torch.equal(back(x), sr(x))


def test_save_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dst = tmp_path / "g.safetensors"
    save_generator(tiny(0), dst)
    before = dst.read_bytes()

    def boom(*args: object, **kwargs: object) -> None:
        Path(args[1]).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr("esrgan_lit.weights.io.save_file", boom)
    with pytest.raises(OSError, match="disk full"):
        save_generator(tiny(1), dst)
    assert dst.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.safetensors"]
    with pytest.raises(ValueError, match=r"\.onnx"):
        save_generator(tiny(), tmp_path / "g.onnx")


def test_load_state_dict_is_the_unwrapped_reader(tmp_path: Path) -> None:
    sd = to_old_arch(tiny().state_dict(), 2)
    torch.save({"params_ema": {f"module.{k}": v for k, v in sd.items()}}, tmp_path / "o.pth")
    got = load_state_dict(tmp_path / "o.pth")
    assert got.keys() == sd.keys()
    assert all(torch.equal(got[k], sd[k]) for k in sd)


# --- safety ---------------------------------------------------------------------------


class Payload:
    """Unpickling this runs ``exec``: it would create ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[override]
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


@pytest.mark.parametrize("writer", ["torch_zip", "raw_pickle"])
def test_malicious_pickle_refused_and_payload_never_runs(tmp_path: Path, writer: str) -> None:
    # the payload is live: a plain unpickle does create its marker
    live = tmp_path / "live_marker"
    pickle.loads(pickle.dumps(Payload(live)))
    assert live.exists()

    marker = tmp_path / "marker"
    obj = {"params_ema": tiny().state_dict(), "extra": Payload(marker)}
    path = tmp_path / "evil.pth"
    if writer == "torch_zip":
        torch.save(obj, path)
    else:
        path.write_bytes(pickle.dumps(obj))
    for call in (load_generator, load_state_dict):
        with pytest.raises(
            UnsafeCheckpointError, match=r"refused.*exec.*nothing was executed"
        ) as e:
            call(path)
        assert str(path) in str(e.value)
    assert not marker.exists()
    with pytest.raises(UnsafeCheckpointError):
        interpolate(path, tiny(), 0.5)
    assert not marker.exists()


def test_pickled_module_is_not_a_state_dict(tmp_path: Path) -> None:
    torch.save(tiny(), tmp_path / "whole.pth")
    with pytest.raises(CheckpointError, match=r"whole\.pth: holds a pickled Python object"):
        load_generator(tmp_path / "whole.pth")


def test_lightning_hparams_with_modules_and_partials_load(tmp_path: Path) -> None:
    """Hydra ``_partial_`` optimisers / modules in hyper_parameters become inert placeholders."""
    import functools

    net = tiny()
    ckpt = {
        "state_dict": {f"generator.{k}": v for k, v in net.state_dict().items()},
        "hyper_parameters": {
            "optimizer": functools.partial(torch.optim.Adam, lr=1e-4),
            "discriminator": VGGStyleDiscriminator(3, 2),
        },
    }
    torch.save(ckpt, tmp_path / "l.ckpt")
    assert torch.equal(out(load_generator(tmp_path / "l.ckpt")), out(net))


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_truncated_and_garbage_files(tmp_path: Path, suffix: str) -> None:
    good = tmp_path / f"good{suffix}"
    save_generator(tiny(), good)
    data = good.read_bytes()
    for name, content in [("trunc", data[: len(data) // 2]), ("garbage", os.urandom(4096))]:
        bad = tmp_path / f"{name}{suffix}"
        bad.write_bytes(content)
        with pytest.raises(CheckpointError, match="truncated, corrupt") as e:
            load_generator(bad)
        assert str(bad) in str(e.value)
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_generator(tmp_path / "empty.pth")
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_generator(tmp_path / "missing.pth")


def test_unknown_architecture(tmp_path: Path) -> None:
    torch.save(VGGStyleDiscriminator(3, 4).state_dict(), tmp_path / "d.pth")
    with pytest.raises(CheckpointError, match=r"d\.pth: unknown generator architecture.*conv0_0"):
        load_generator(tmp_path / "d.pth")
    with pytest.raises(CheckpointError, match="not a tensor"):
        load_generator({"conv_first.weight": [1, 2]})


def test_missing_unexpected_and_wrong_shape_keys(tmp_path: Path) -> None:
    net = tiny()
    sd = dict(net.state_dict())
    del sd["body.1.rdb3.conv5.bias"]
    path = tmp_path / "m.pth"
    torch.save(sd, path)
    with pytest.raises(
        CheckpointError, match=r"m\.pth.*missing keys \['body\.1\.rdb3\.conv5\.bias'\]"
    ):
        load_generator(path)
    assert isinstance(load_generator(path, strict=False), RRDBNet)

    sd = {**net.state_dict(), "extra.weight": torch.zeros(1)}
    with pytest.raises(CheckpointError, match=r"unexpected keys \['extra\.weight'\]"):
        load_generator(sd)

    sd = {**net.state_dict(), "conv_hr.weight": torch.zeros(8, 8, 1, 1)}
    with pytest.raises(
        CheckpointError, match=r"'conv_hr\.weight' has shape \(8, 8, 1, 1\).*\(8, 8, 3, 3\)"
    ):
        load_generator(sd)

    sd = {k: v for k, v in net.state_dict().items() if not k.startswith("conv_up2")}
    with pytest.raises(CheckpointError, match="1 upsampling convs"):
        load_generator(sd)


# --- interpolation ----------------------------------------------------------------------


def test_interpolate_endpoints_and_hand_blend(tmp_path: Path) -> None:
    a, b = tiny(1), tiny(2)
    # a as an old-arch file, b as a module: formats need not match
    torch.save(to_old_arch(a.state_dict(), 2), tmp_path / "a.pth")
    sa, sb = a.state_dict(), b.state_dict()
    m0 = interpolate(tmp_path / "a.pth", b, 0.0)
    m1 = interpolate(tmp_path / "a.pth", b, 1.0)
    for k in sa:
        assert torch.equal(m0.state_dict()[k], sa[k])
        assert torch.equal(m1.state_dict()[k], sb[k])
    half = interpolate(sa, b, 0.5)
    for k in sa:
        hand = 0.5 * sa[k] + 0.5 * sb[k]
        torch.testing.assert_close(half.state_dict()[k], hand, rtol=0, atol=1e-7)
    m08 = interpolate(a, b, 0.8)
    k = "body.1.rdb2.conv3.weight"
    torch.testing.assert_close(m08.state_dict()[k], 0.2 * sa[k] + 0.8 * sb[k], rtol=0, atol=1e-7)
    assert not m08.training
    assert not torch.equal(out(half), out(a)) and not torch.equal(out(half), out(b))


def test_interpolate_mismatch_names_key() -> None:
    a = tiny(1)
    with pytest.raises(CheckpointError, match=r"'body\.2\.rdb1\.conv1\.weight'"):
        interpolate(a, tiny(2, num_block=3), 0.5)
    with pytest.raises(CheckpointError, match=r"'body\.0\.rdb1\.conv1\.weight' has shape"):
        interpolate(a, tiny(2, num_grow_ch=6), 0.5)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="alpha"):
            interpolate(a, tiny(2), bad)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_load_generator_to_cuda(tmp_path: Path) -> None:
    net = tiny()
    save_generator(net, tmp_path / "g.safetensors")
    gpu = load_generator(tmp_path / "g.safetensors", device="cuda")
    assert next(gpu.parameters()).device.type == "cuda"
    torch.manual_seed(1)
    x = torch.rand(1, 3, 8, 12)
    with torch.no_grad():
        torch.testing.assert_close(gpu(x.cuda()).cpu(), net(x), rtol=1e-3, atol=1e-4)

"""Each architecture family owns its checkpoint knowledge: key layouts (declarative tables),
constructor arguments read from shapes, receptive radius and the striped CPU forward."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from esrgan_lit.archs import RRDBNet, SRResNet, rrdbnet_keys, srresnet
from esrgan_lit.archs.keymaps import KeyLayoutError, Keys
from esrgan_lit.archs.rrdbnet_striped import striped_forward
from esrgan_lit.inference import receptive_radius
from esrgan_lit.weights import CheckpointError
from esrgan_lit.weights.formats import LAYOUTS, detect_format, infer_spec, translates_keys

SRC = Path(__file__).resolve().parents[1] / "src" / "esrgan_lit"


def tiny(scale: int = 4, **kw: int) -> RRDBNet:
    torch.manual_seed(0)
    return RRDBNet(scale=scale, **{"num_feat": 8, "num_block": 2, "num_grow_ch": 4, **kw}).eval()


def test_keys_condition() -> None:
    cond = Keys(all=("a.weight",), prefix=("b.",), match=(r"c\.\d+\.",))
    assert cond({"a.weight", "b.x", "c.3.w"})
    assert not cond({"a.weight", "b.x", "c.x.w"})
    assert not cond({"b.x", "c.3.w"})


@pytest.mark.parametrize("layout", rrdbnet_keys.LAYOUTS, ids=lambda lay: lay.name)
@pytest.mark.parametrize("scale", [1, 4, 8])
def test_rrdbnet_layouts_round_trip_and_are_recognised_alone(layout, scale) -> None:
    sd = tiny(scale, num_block=3).state_dict()
    foreign = layout.foreign(sd)
    # Exactly one layout claims the foreign keys, so the detection order cannot matter.
    assert [lay.name for lay in LAYOUTS if lay.detect(set(foreign))] == [layout.name]
    back = layout.canonical(foreign, "f.pth")
    assert back.keys() == sd.keys()
    assert all(back[k] is sd[k] for k in sd)


def test_srresnet_layout_is_recognised_alone() -> None:
    sd = SRResNet(num_feat=8, num_block=2).state_dict()
    assert [lay.name for lay in LAYOUTS if lay.detect(set(sd))] == ["srresnet"]
    assert srresnet.LAYOUT.arch is SRResNet


@pytest.mark.parametrize(
    ("scale", "kw"),
    [(1, {}), (2, {"num_out_ch": 1, "num_in_ch": 1}), (4, {"num_grow_ch": 6}), (8, {})],
)
def test_rrdbnet_constructor_arguments_are_read_from_shapes(scale, kw) -> None:
    m = tiny(scale, **kw)
    got = rrdbnet_keys.read_kwargs(m.state_dict(), "m.pth", {})
    assert got == {
        "num_in_ch": m.num_in_ch,
        "num_out_ch": m.num_out_ch,
        "scale": scale,
        "num_feat": 8,
        "num_block": 2,
        "num_grow_ch": m.num_grow_ch,
    }
    assert RRDBNet(**got).state_dict().keys() == m.state_dict().keys()


def test_srresnet_constructor_arguments_are_read_from_shapes() -> None:
    m = SRResNet(scale=8, num_feat=8, num_block=3, batch_norm=True)
    got = srresnet.read_kwargs(m.state_dict(), "s.pth", {})
    assert got == {
        "num_in_ch": 3,
        "num_out_ch": 3,
        "scale": 8,
        "num_feat": 8,
        "num_block": 3,
        "batch_norm": True,
    }


def test_layout_errors_are_value_errors_and_become_checkpoint_errors() -> None:
    sd = tiny().state_dict()
    del sd["body.0.rdb1.conv1.weight"]
    with pytest.raises(KeyLayoutError, match=r"m\.pth: missing key 'body\.0\.rdb1\.conv1\.weight'"):
        rrdbnet_keys.read_kwargs(sd, "m.pth", {})
    assert issubclass(KeyLayoutError, ValueError)
    with pytest.raises(CheckpointError, match=r"m\.pth: missing key"):
        infer_spec(sd, detect_format(sd), "m.pth")


def test_only_families_with_foreign_layouts_translate_keys() -> None:
    assert translates_keys(tiny())
    assert not translates_keys(SRResNet(num_feat=8, num_block=1))
    assert not translates_keys(torch.nn.Conv2d(3, 3, 3))


def test_foreign_key_names_live_only_in_the_family_module() -> None:
    # The original ESRGAN names are RRDBNet knowledge: no other source file may spell them.
    names = ("RRDB_trunk", "HRconv", "trunk_conv", "model.1.sub")
    holders = {
        p.relative_to(SRC).as_posix()
        for p in SRC.rglob("*.py")
        if any(n in p.read_text(encoding="utf-8") for n in names)
    }
    assert holders == {"archs/rrdbnet_keys.py"}


@pytest.mark.parametrize("scale", [1, 2, 4, 8])
def test_rrdbnet_knows_its_receptive_radius(scale) -> None:
    m = tiny(scale)
    r = m.receptive_radius()
    assert receptive_radius(m) == r
    # 5 convs per dense block, 3 per RRDB, 2 RRDBs + conv_first + conv_body, times the unshuffle.
    assert r >= (2 * 3 * 5 + 2) * m.unshuffle


def test_striped_forward_method_matches_model() -> None:
    m = tiny(2)
    x = torch.rand(1, 3, 10, 14)
    with torch.no_grad():
        want = m(x)
        got = m.striped_forward(x, stripe_pixels=64, trunk_stripe_pixels=20)
        same = striped_forward(m, x, stripe_pixels=64)
    assert (got - want).abs().max() < 1e-5
    assert (same - want).abs().max() < 1e-5


def test_old_inference_lean_path_still_works() -> None:
    from esrgan_lit.inference.lean import rrdbnet_forward

    assert rrdbnet_forward is striped_forward


class _FakeCompiled(torch.nn.Module):
    """Like torch.compile's OptimizedModule: attribute reads fall through to the wrapped model."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self._orig_mod = model
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self._orig_mod(x)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._orig_mod, name)


def test_upscaler_runs_a_compiled_wrapper_whole(monkeypatch) -> None:
    # The striped forward is asked of RRDBNet itself; a compiled wrapper that merely forwards
    # RRDBNet's attributes used to be taken for one, so its compiled forward never ran.
    from esrgan_lit.inference import Upscaler

    monkeypatch.setattr(torch, "compile", lambda m, **kw: _FakeCompiled(m))
    up = Upscaler(tiny(), device="cpu", compile=True)
    out = up.upscale(torch.rand(3, 8, 8))
    assert out.shape == (3, 32, 32)
    assert up.compiled.calls == 1

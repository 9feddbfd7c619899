"""GeneratorEMA: warm-up schedule, its checkpoint state, and the pretrained starting point."""

from __future__ import annotations

import functools
import math
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from esrgan_lit.archs import RRDBNet
from esrgan_lit.callbacks import GeneratorEMA
from esrgan_lit.lit import PSNRModule


def _module() -> SimpleNamespace:
    """Stands in for the LightningModule: the callback only reads ``.generator``."""
    return SimpleNamespace(generator=nn.Linear(1, 1, bias=False))


def _step(ema: GeneratorEMA, mod: SimpleNamespace, value: float, step: int) -> None:
    with torch.no_grad():
        mod.generator.weight.fill_(value)
    ema.on_train_batch_end(SimpleNamespace(global_step=step), mod, None, None, step)


def test_warmup_decay_numbers() -> None:
    """min(decay, (1 + n) / (10 + n)): 0.1 first, 0.5 after 8, capped at ``decay``."""
    ema = GeneratorEMA(decay=0.999)
    got = []
    for n in (0, 1, 8, 80, 890, 8990, 10**6):
        ema.num_updates = n
        got.append(ema.current_decay())
    assert got == pytest.approx([0.1, 2 / 11, 0.5, 0.9, 0.99, 0.999, 0.999])
    assert GeneratorEMA(decay=0.999, warmup=False).current_decay() == 0.999


def test_warmup_shadow_follows_the_schedule() -> None:
    """Weights 0 then 1, 2, 3: the shadow is the hand-computed warm-up average, not ~0."""
    mod = _module()
    with torch.no_grad():
        mod.generator.weight.fill_(0.0)
    ema = GeneratorEMA(decay=0.999)
    ema.on_fit_start(None, mod)
    expected = 0.0
    for n, w in enumerate((1.0, 2.0, 3.0)):
        d = (1 + n) / (10 + n)
        expected = d * expected + (1 - d) * w
        _step(ema, mod, w, n)
    assert ema.num_updates == 3
    assert float(ema.shadow["weight"]) == pytest.approx(expected, rel=1e-6)
    # 0.9 * 1 = 0.9 after one update; the fixed decay would leave 0.001.
    fixed = GeneratorEMA(decay=0.999, warmup=False)
    mod2 = _module()
    with torch.no_grad():
        mod2.generator.weight.fill_(0.0)
    fixed.on_fit_start(None, mod2)
    _step(fixed, mod2, 1.0, 0)
    assert float(fixed.shadow["weight"]) == pytest.approx(0.001, rel=1e-5)


def test_300_updates_keep_little_of_the_initialisation() -> None:
    """The fault of issue 12: 300 fixed-decay updates keep 74 % of w0; the warm-up ~1.6e-17.

    With warm-up the weight of w0 is prod_n (1 + n) / (10 + n) = 9! / (301 * ... * 309)."""

    def residual(warmup: bool) -> float:
        mod = _module()
        with torch.no_grad():
            mod.generator.weight.fill_(1.0)  # w0 = 1, trained weights = 0
        ema = GeneratorEMA(decay=0.999, warmup=warmup)
        ema.on_fit_start(None, mod)
        for n in range(300):
            _step(ema, mod, 0.0, n)
        return float(ema.shadow["weight"])

    assert residual(False) == pytest.approx(0.999**300, rel=1e-4)  # 0.741
    assert residual(True) == pytest.approx(math.factorial(9) / math.prod(range(301, 310)), rel=1e-3)


def test_state_dict_round_trip_and_old_checkpoints() -> None:
    mod = _module()
    ema = GeneratorEMA(decay=0.9)
    ema.on_fit_start(None, mod)
    for n in range(3):
        _step(ema, mod, float(n), n)
    state = ema.state_dict()
    assert state["warmup"] is True and state["num_updates"] == 3

    fresh = GeneratorEMA(decay=0.9, warmup=False)
    fresh.load_state_dict(state)
    assert fresh.warmup is True and fresh.num_updates == 3
    fresh.on_fit_start(None, _module())
    assert torch.equal(fresh.shadow["weight"], ema.shadow["weight"])

    # a checkpoint written before the warm-up existed: no "warmup" key, fixed-decay averaging
    old = {"decay": 0.9, "num_updates": 7, "shadow": {"weight": torch.full((1, 1), 0.25)}}
    legacy = GeneratorEMA(decay=0.9)
    legacy.load_state_dict(old)
    assert legacy.warmup is False and legacy.num_updates == 7
    legacy.on_fit_start(None, _module())
    assert float(legacy.shadow["weight"]) == 0.25
    assert legacy.current_decay() == 0.9


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="decay"):
        GeneratorEMA(decay=1.0)
    with pytest.raises(ValueError, match="update_every"):
        GeneratorEMA(update_every=0)


def test_shadow_starts_from_pretrained_generator(tmp_path) -> None:
    """model.pretrained_generator is loaded in __init__, so on_fit_start copies those weights."""
    torch.manual_seed(1)
    pre = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)
    path = tmp_path / "pre.safetensors"
    save_file({k: v.contiguous() for k, v in pre.state_dict().items()}, str(path))
    torch.manual_seed(2)  # a different random init, overwritten by the pretrained weights
    m = PSNRModule(
        RRDBNet(num_feat=8, num_block=1, num_grow_ch=4),
        functools.partial(torch.optim.Adam, lr=1e-3),
        pretrained_generator=str(path),
    )
    ema = GeneratorEMA()
    ema.on_fit_start(None, m)
    for k, v in pre.state_dict().items():
        assert torch.equal(ema.shadow[k], v), k
    # no random initialisation to forget: the fixed decay from the first update
    assert ema.current_decay() == ema.decay == 0.999


def test_warmup_kept_for_random_init_and_on_resume(tmp_path) -> None:
    m = PSNRModule(
        RRDBNet(num_feat=8, num_block=1, num_grow_ch=4), functools.partial(torch.optim.Adam)
    )
    ema = GeneratorEMA()
    ema.on_fit_start(None, m)
    assert ema.current_decay() == pytest.approx(0.1)
    resumed = GeneratorEMA()  # a resumed run keeps the schedule it was saved with
    resumed.load_state_dict(ema.state_dict() | {"num_updates": 8})
    resumed.on_fit_start(None, m)
    assert resumed.warmup and resumed.current_decay() == pytest.approx(0.5)

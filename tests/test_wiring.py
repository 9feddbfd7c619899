"""Callbacks find each other by role (a runtime protocol / a class), never by a class name."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from omegaconf import OmegaConf
from omegaconf.errors import MissingMandatoryValue

from esrgan_lit.callbacks import (
    AveragedWeights,
    ExportOutputs,
    GeneratorEMA,
    SRMetrics,
    ValidationResults,
    generator_weights,
)
from esrgan_lit.cli_errors import message


class _Averager:  # any name: what counts is the role
    def ema_state_dict(self, pl_module):
        return {"weight": torch.full((2, 2), 7.0), "bias": torch.zeros(2)}


class _Scores:
    def __init__(self) -> None:
        self.last = {"Set5": {"psnr_y": 30.0}}


def test_the_shipped_callbacks_play_their_roles() -> None:
    assert isinstance(GeneratorEMA(), AveragedWeights)
    assert isinstance(SRMetrics(["psnr_y"]), ValidationResults)
    assert not isinstance(ExportOutputs("x"), AveragedWeights | ValidationResults)


def test_export_uses_any_weight_averager() -> None:
    module = SimpleNamespace(generator=torch.nn.Linear(2, 2))
    raw = generator_weights(SimpleNamespace(callbacks=[]), module)
    assert torch.equal(raw["weight"], module.generator.weight.detach())
    averaged = generator_weights(SimpleNamespace(callbacks=[_Averager()]), module)
    assert torch.equal(averaged["weight"], torch.full((2, 2), 7.0))


def test_export_reads_any_validation_results(tmp_path) -> None:
    export = ExportOutputs(str(tmp_path))
    trainer = SimpleNamespace(
        sanity_checking=False, callbacks=[export, _Scores()], global_step=12, is_global_zero=False
    )
    export.on_validation_end(trainer, None)
    assert export.metrics == {"Set5": {"psnr_y": 30.0}} and export.last_val_step == 12


def test_missing_value_message_for_a_subclass_too() -> None:
    class Narrower(MissingMandatoryValue):
        pass

    cfg = OmegaConf.create({"data": {"root": "???"}})
    try:
        cfg.data.root  # noqa: B018
    except MissingMandatoryValue as err:
        assert message(err) == "data.root is required: pass data.root=VALUE on the command line"
        narrower = Narrower(str(err))
        narrower.full_key = err.full_key
        assert message(narrower).startswith("data.root is required")

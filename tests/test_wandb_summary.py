"""Best-so-far validation values in the W&B summary: direction per metric, NaN, resume."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from esrgan_lit.callbacks import WandbBestSummary
from esrgan_lit.callbacks import wandb_summary as mod


class FakeRun:
    def __init__(self) -> None:
        self.summary: dict[str, float] = {}
        self.defined: dict[str, str] = {}

    def define_metric(self, name: str, summary: str) -> None:
        self.defined[name] = summary


def _validate(cb: WandbBestSummary, run: FakeRun, step: int, zero: bool = True, **metrics) -> None:
    trainer = SimpleNamespace(
        sanity_checking=False,
        is_global_zero=zero,
        global_step=step,
        callback_metrics={k.replace("__", "/"): torch.tensor(v) for k, v in metrics.items()},
    )
    cb.on_validation_end(trainer, None)


@pytest.fixture
def run(monkeypatch) -> FakeRun:
    r = FakeRun()
    monkeypatch.setattr(mod, "_wandb_runs", lambda trainer: [r])
    return r


def test_best_values_follow_each_metrics_direction(run):
    cb = WandbBestSummary()
    _validate(cb, run, 10, val__Set5__psnr_y=30.0, val__Set5__niqe=6.0, train__l_pix=0.1)
    _validate(cb, run, 20, val__Set5__psnr_y=29.0, val__Set5__niqe=5.0)
    _validate(cb, run, 30, val__Set5__psnr_y=float("nan"), val__Set5__niqe=7.0)
    assert run.summary["best/val/Set5/psnr_y"] == 30.0  # higher is better; NaN never wins
    assert run.summary["best/val/Set5/niqe"] == 5.0  # lower is better
    assert run.summary["best/step"] == 20  # the last step that improved something
    assert "best/train/l_pix" not in run.summary  # only validation metrics
    assert run.defined == {"val/Set5/psnr_y": "max", "val/Set5/niqe": "min"}


def test_nan_first_is_replaced_and_resume_keeps_the_best(run):
    cb = WandbBestSummary()
    _validate(cb, run, 1, val__sample__psnr_y=float("nan"))
    assert "best/val/sample/psnr_y" not in run.summary
    _validate(cb, run, 2, val__sample__psnr_y=25.0)
    resumed = WandbBestSummary()
    resumed.load_state_dict(cb.state_dict())
    run.summary.clear()
    _validate(resumed, run, 3, val__sample__psnr_y=24.0)
    assert "best/val/sample/psnr_y" not in run.summary  # 24 < 25 kept from before the resume
    _validate(resumed, run, 4, val__sample__psnr_y=26.0)
    assert run.summary["best/val/sample/psnr_y"] == 26.0


def test_only_rank_zero_writes(run):
    cb = WandbBestSummary()
    _validate(cb, run, 1, zero=False, val__sample__psnr_y=25.0)
    assert run.summary == {} and cb.best == {"val/sample/psnr_y": 25.0}

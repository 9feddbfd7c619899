"""The GAN step reads top to bottom: the steps are called in training_step, no id()-keyed state."""

from __future__ import annotations

import ast
import inspect
import textwrap
from pathlib import Path

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from esrgan_lit.lit import ESRGANModule, PSNRModule

LIT = Path(__file__).resolve().parents[1] / "src" / "esrgan_lit" / "lit"


def _calls(fn) -> list[str]:
    """Method names called in ``fn``'s body, in source order."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    calls.sort(key=lambda n: (n.lineno, n.col_offset))
    return [n.func.attr for n in calls if isinstance(n.func, ast.Attribute)]


def test_training_step_shows_g_step_d_step_and_bookkeeping() -> None:
    calls = [
        c
        for c in _calls(ESRGANModule.training_step)
        if c
        in {"toggle_optimizer", "manual_backward", "step_optimizer", "untoggle_optimizer"}
        | {"finish_iteration", "_discriminator_backward"}
    ]
    assert calls == [
        *("toggle_optimizer", "manual_backward", "step_optimizer", "untoggle_optimizer"),
        *("toggle_optimizer", "_discriminator_backward", "step_optimizer", "untoggle_optimizer"),
        "finish_iteration",
    ]


def test_no_optimizer_keyed_state_or_private_step_hooks_in_the_modules() -> None:
    for path in LIT.glob("*.py"):
        if path.name.startswith("compat"):
            continue  # the seam for private Lightning APIs
        src = path.read_text(encoding="utf-8")
        assert "id(opt" not in src, path.name
        assert "_on_before_step" not in src and "_on_after_step" not in src, path.name


class _BareStep(PSNRModule):
    def training_step(self, batch, batch_idx):
        opt = self.optimizers()
        opt.zero_grad()
        self.manual_backward(self.generator(batch[0]).mean())
        opt.step()  # not through step_optimizer: the guard would not know the step


def test_a_step_outside_step_optimizer_is_a_clear_error(tmp_path) -> None:
    gen = torch.nn.Conv2d(3, 3, 1)
    m = _BareStep(gen, optimizer=lambda params: torch.optim.SGD(params, lr=0.1))
    data = DataLoader(TensorDataset(torch.rand(2, 3, 4, 4)))
    trainer = L.Trainer(
        max_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    with pytest.raises(RuntimeError, match="step_optimizer"):
        trainer.fit(m, data)

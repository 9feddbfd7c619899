"""The step's private-Lightning-API seam fails loudly when Lightning changes what it relies on."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from lightning.pytorch.core.optimizer import LightningOptimizer

from esrgan_lit.lit.compat import uncounted_step


class _Strategy:
    """Just what ``LightningOptimizer.step`` asks of its strategy."""

    def optimizer_step(self, optimizer, closure, **kwargs):
        return optimizer.step(closure=closure, **kwargs)


def test_lightning_optimizer_still_has_the_step_hooks() -> None:
    """The private hooks ``uncounted_step`` swaps out exist and are called by ``step()``."""
    opt = LightningOptimizer(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1))
    calls: list[str] = []
    opt._on_before_step = lambda: calls.append("before")
    opt._on_after_step = lambda: calls.append("after")
    opt._strategy = _Strategy()  # type: ignore[assignment]
    opt.step()
    assert calls == ["before", "after"]
    with uncounted_step(opt):
        opt.step()
    assert calls == ["before", "after"]  # not called inside
    opt.step()
    assert calls == ["before", "after"] * 2  # restored after


def test_uncounted_step_names_the_missing_api() -> None:
    class NoHooks:
        pass

    with (
        pytest.raises(RuntimeError, match=r"_on_before_step.*compat\.uncounted_step"),
        uncounted_step(NoHooks()),
    ):
        pass


def test_manual_loop_still_counts_through_the_hooks(tmp_path) -> None:
    """Lightning's manual loop advances global_step in ``_on_after_step``; uncounted: not."""

    class Two(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.automatic_optimization = False
            self.a, self.b = torch.nn.Linear(1, 1), torch.nn.Linear(1, 1)

        def configure_optimizers(self):
            return [torch.optim.SGD(m.parameters(), lr=0.1) for m in (self.a, self.b)]

        def training_step(self, batch, batch_idx):
            opt_a, opt_b = self.optimizers()
            for opt, m, counted in ((opt_a, self.a, True), (opt_b, self.b, False)):
                opt.zero_grad()
                self.manual_backward(m(batch[0]).sum())
                if counted:
                    opt.step()
                else:
                    with uncounted_step(opt):
                        opt.step()

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(8, 1)))
    trainer = L.Trainer(
        max_steps=3,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(Two(), data)
    assert trainer.global_step == 3

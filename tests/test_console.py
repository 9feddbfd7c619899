"""Our entry points drop Lightning's "💡 Tip: try installing litlogger/litmodels" adverts and
nothing else."""

from __future__ import annotations

import logging

import lightning as L
import pytest

from esrgan_lit.utils import console


def _trainer_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    caplog.clear()
    with caplog.at_level(logging.INFO):
        L.Trainer(logger=True, accelerator="cpu", max_steps=1, enable_progress_bar=False)
    return [r.getMessage() for r in caplog.records]


@pytest.fixture
def no_filter():
    """Run with the filter removed, put back whatever was installed before."""
    loggers = [logging.getLogger(n) for n in console.LIGHTNING_RANK_ZERO_LOGGERS]
    had = [console._FILTER in lg.filters for lg in loggers]
    for lg in loggers:
        lg.removeFilter(console._FILTER)
    yield
    for lg, on in zip(loggers, had, strict=True):
        if on:
            lg.addFilter(console._FILTER)


def test_adverts_dropped_other_info_kept(no_filter, caplog, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # logger=True writes lightning_logs/ here
    before = _trainer_messages(caplog)
    if not any(m.startswith("💡 Tip") for m in before):
        pytest.skip("this Lightning version prints no adverts")
    console.quiet_third_party()
    console.quiet_third_party()  # idempotent
    after = _trainer_messages(caplog)
    assert not [m for m in after if "Tip" in m], after
    # the real diagnostics still come through
    assert [m for m in before if "Tip" not in m] == after
    assert any("GPU available" in m for m in after)
    assert (
        logging.getLogger(console.LIGHTNING_RANK_ZERO_LOGGERS[0]).filters.count(console._FILTER)
        == 1
    )


def test_train_installs_the_filter(no_filter, tmp_path):
    """``train()`` (so the CLI, the demo and the notebooks) installs it before building a Trainer."""
    from esrgan_lit import train as train_mod

    with pytest.raises(Exception):  # noqa: B017 - any failure after the filter is installed
        train_mod.train(_broken_cfg())
    assert console._FILTER in logging.getLogger(console.LIGHTNING_RANK_ZERO_LOGGERS[0]).filters


def _broken_cfg():
    from omegaconf import OmegaConf

    return OmegaConf.create({"model": {"x": 1}, "paths": {"output_dir": None}})


def test_filter_keeps_messages_it_cannot_format():
    rec = logging.LogRecord("x", logging.INFO, __file__, 1, "%d", ("not a number",), None)
    assert console.DropAdverts().filter(rec) is True


def test_lightning_internal_deprecation_silenced():
    import warnings

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        console.quiet_third_party()
        warnings.warn(
            "`isinstance(treespec, LeafSpec)` is deprecated, use ...", FutureWarning, stacklevel=2
        )
        warnings.warn("a warning of ours", UserWarning, stacklevel=2)
    assert [str(w.message) for w in seen] == ["a warning of ours"]

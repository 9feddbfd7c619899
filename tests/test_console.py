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


def test_wandb_logger_does_not_pass_anonymous(tmp_path, monkeypatch):
    """wandb warns about ``anonymous=None``, which Lightning always passes; we leave it out."""
    pytest.importorskip("wandb")
    from lightning.pytorch.loggers import WandbLogger

    monkeypatch.setenv("WANDB_MODE", "offline")
    lg = WandbLogger(save_dir=str(tmp_path), offline=True, project="p")
    assert "anonymous" in lg._wandb_init  # what Lightning does (the test would pass vacuously)
    console.drop_wandb_anonymous([lg, object()])
    assert "anonymous" not in lg._wandb_init
    assert lg._wandb_init["project"] == "p"


def test_offline_wandb_training_prints_no_anonymous_warning(tmp_path, capfd, monkeypatch):
    """End to end: a 1-step offline W&B run through ``train()`` says nothing about 'anonymous'
    (without the fix wandb prints "The anonymous setting has no effect ...")."""
    pytest.importorskip("wandb")
    pytest.importorskip("skimage")
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from esrgan_lit.config import config_dir
    from esrgan_lit.train import train

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.chdir(tmp_path)
    tiny = ["model.generator.num_feat=8", "model.generator.num_block=1",
            "model.generator.num_grow_ch=4", "data.batch_size=2", "data.gt_size=32",
            "trainer.max_steps=1", "trainer.enable_progress_bar=false",
            "callbacks.progress_bar=null"]  # fmt: skip
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=["experiment=demo", "logger=wandb", f"paths.data_dir={tmp_path}", *tiny],
            return_hydra_config=True,
        )
    GlobalHydra.instance().clear()
    with open_dict(cfg):
        cfg.paths.output_dir = cfg.hydra.runtime.output_dir = str(tmp_path / "run")
    HydraConfig().set_config(cfg)
    try:
        train(cfg)
    finally:
        HydraConfig.instance().cfg = None
    out, err = capfd.readouterr()
    assert "anonymous" not in out + err
    assert "Tip:" not in out + err

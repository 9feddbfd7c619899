"""hparams_search: a 2-trial Optuna search per training stage, one of them stored in SQLite."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra

import train_helpers

pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
optuna = pytest.importorskip("optuna")

TINY = [
    *train_helpers.TINY,
    "logger=none",
    "trainer.max_steps=1",
    "callbacks.image_logger=null",
    "hydra.sweeper.n_trials=2",
    "hydra.sweeper.sampler.n_startup_trials=1",
]


def _search(monkeypatch, tmp_path: Path, args: list[str]) -> Path:
    from esrgan_lit.train import main

    sweep = tmp_path / "sweep"
    argv = ["esrgan-train", *args, *TINY, f"paths.data_dir={tmp_path / 'data'}"]
    monkeypatch.setattr(sys, "argv", [*argv, f"hydra.sweep.dir={sweep}"])
    GlobalHydra.instance().clear()
    main()
    return sweep


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_psnr_stage_search_stored_in_sqlite(tmp_path, monkeypatch):
    """hydra.sweeper.storage=sqlite:///x.db: two finished trials in the database (issue 18)."""
    db = tmp_path / "x.db"
    _search(monkeypatch, tmp_path, [
        "hparams_search=optuna", "experiment=psnr_pretrain",
        f"hydra.sweeper.storage=sqlite:///{db}", "hydra.sweeper.study_name=psnr",
    ])  # fmt: skip
    study = optuna.load_study(study_name="psnr", storage=f"sqlite:///{db}")
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 2
    assert all(math.isfinite(t.value) for t in done)
    assert all("model.optimizer.lr" in t.params for t in done)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_gan_stage_search(tmp_path, monkeypatch):
    """hparams_search=optuna_esrgan sweeps the G and D learning rates the GAN model has."""
    sweep = _search(monkeypatch, tmp_path, [
        "hparams_search=optuna_esrgan", "experiment=esrgan", "model.pretrained_generator=null",
        "model.perceptual_loss=null", "model.discriminator.num_feat=4",
    ])  # fmt: skip
    assert (sweep / "0" / "metrics.json").is_file() and (sweep / "1" / "metrics.json").is_file()
    best = (sweep / "optimization_results.yaml").read_text()
    assert "model.optimizer_g.lr" in best and "model.optimizer_d.lr" in best


def test_psnr_search_space_is_not_used_for_the_gan_stage():
    """optuna.yaml's model.optimizer.lr does not exist in the GAN model: each stage has a file."""
    from hydra import compose, initialize_config_dir

    from esrgan_lit.config import config_dir

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        for search, experiment, model_keys in (
            ("optuna", "psnr_pretrain", ["optimizer"]),
            ("optuna_esrgan", "esrgan", ["optimizer_g", "optimizer_d", "gan_weight"]),
        ):
            cfg = compose(
                "train",
                [f"hparams_search={search}", f"experiment={experiment}",
                 "model.pretrained_generator=null"],
                return_hydra_config=True,
            )  # fmt: skip
            for key in cfg.hydra.sweeper.params:
                group, _, rest = key.partition(".")
                if group == "model":
                    assert rest.split(".")[0] in model_keys and rest.split(".")[0] in cfg.model

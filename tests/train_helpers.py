"""Tiny training configs for the tests that run ``esrgan_lit.train.train`` (one copy of the
override list and of the compose-as-Hydra-would step)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from esrgan_lit.config import config_dir

TINY = [
    "data=sample",
    "trainer=cpu",
    "model.generator.num_feat=8",
    "model.generator.num_block=1",
    "model.generator.num_grow_ch=4",
    "data.batch_size=2",
    "data.gt_size=32",
    "callbacks.model_summary=null",
    "callbacks.progress_bar=null",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


def compose_run(out: Path, overrides: Sequence[str]) -> DictConfig:
    """``train.yaml`` composed with ``overrides`` as Hydra would for a run in ``out`` (its run dir,
    registered as the Hydra run config)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
        cfg.hydra.runtime.output_dir = str(out)
    HydraConfig().set_config(cfg)
    return cfg


def compose_cfg(
    out: Path, overrides: Sequence[str], data_dir: str, *, tiny_wins: bool = False
) -> DictConfig:
    """:func:`compose_run` with :data:`TINY` and ``overrides`` (the latter win unless
    ``tiny_wins``)."""
    base = [*TINY, f"paths.data_dir={data_dir}"]
    return compose_run(out, [*overrides, *base] if tiny_wins else [*base, *overrides])

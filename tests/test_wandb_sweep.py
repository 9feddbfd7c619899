"""The W&B Sweeps recipe drives the Hydra entry point: the agent's command composes, sampled
values land in the config, the metric is one the run writes, and the run joins the agent's."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf, open_dict
from wandb.sdk.launch.sweeps import utils as sweep_utils

from esrgan_lit.config import config_dir
from esrgan_lit.train import _prepare_wandb

SWEEP = Path(__file__).resolve().parents[1] / "sweeps" / "wandb_sweep.yaml"


def _first(spec: dict) -> object:
    return spec["values"][0] if "values" in spec else spec.get("min", spec.get("value"))


def agent_command(sweep: dict, params: dict) -> list[str]:
    """The command line ``wandb agent`` builds (wandb_agent.py: macros expanded the same way)."""
    command = sweep_utils.create_sweep_command(list(sweep["command"]))
    sweep_vars = sweep_utils.create_sweep_command_args(
        {"args": {k: {"value": v} for k, v in params.items()}}
    )
    sweep_vars.update(interpreter=["python"], program=[sweep["program"]], env=["/usr/bin/env"])
    out: list[str] = []
    for c in map(str, command):
        out += sweep_vars.get(c[2:-1]) or [] if c.startswith("${") and c.endswith("}") else [c]
    return out


def test_sweep_command_composes_with_the_sampled_values(monkeypatch):
    sweep = yaml.safe_load(SWEEP.read_text())
    params = {k: _first(v) for k, v in sweep["parameters"].items()}
    cmd = agent_command(sweep, params)
    assert cmd[:4] == ["/usr/bin/env", "python", "-m", "esrgan_lit.train"]
    overrides = cmd[4:]
    assert all(not o.startswith("-") for o in overrides)  # Hydra overrides, no flags
    monkeypatch.setenv("WANDB_RUN_ID", "agentrun1")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    for key, value in params.items():
        assert OmegaConf.select(cfg, key) == pytest.approx(value), key
    assert "wandb" in cfg.logger
    assert cfg.hydra.run.dir == "outputs/wandb_sweep/agentrun1"
    # the metric is what WandbBestSummary writes for one of the configured validation sets
    prefix, set_name, metric = sweep["metric"]["name"].rsplit("/", 2)
    assert prefix == "best/val" and set_name in cfg.data.val_sets
    assert metric in cfg.callbacks.val_metrics.metrics
    assert sweep["metric"]["goal"] == "maximize"


def test_training_joins_the_agents_run(tmp_path, monkeypatch):
    cfg = OmegaConf.create({"paths": {"output_dir": str(tmp_path)}, "logger": {"wandb": {}}})
    monkeypatch.setenv("WANDB_RUN_ID", "agentrun2")
    _prepare_wandb(cfg)
    assert cfg.logger.wandb.id == "agentrun2"
    monkeypatch.delenv("WANDB_RUN_ID")
    with open_dict(cfg):
        cfg.logger.wandb.id = None
    _prepare_wandb(cfg)  # without an agent: a fresh id, kept in the run dir for resume
    assert cfg.logger.wandb.id == (tmp_path / "wandb_run_id.txt").read_text().strip()

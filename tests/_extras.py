"""Optional extras (`pip install 'esrgan-lit[sweep,slurm,...]'`): tests that need one skip cleanly
when it is absent. `make test` installs them all; a plain `make install` does not."""

from __future__ import annotations

import importlib
from collections.abc import Iterable

import pytest

# A Hydra override -> the plugin module (and extra) it needs to compose.
PLUGIN_OVERRIDES = {
    "hparams_search=optuna": ("hydra_plugins.hydra_optuna_sweeper", "sweep"),
    "hydra/launcher=slurm": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
}


def has_module(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def skip_without_plugins(overrides: Iterable[str]) -> None:
    """pytest.skip when an override needs a Hydra plugin whose extra is not installed."""
    for override in overrides:
        need = PLUGIN_OVERRIDES.get(override.lstrip("+~"))
        if need and not has_module(need[0]):
            pytest.skip(
                f"{override} needs the '{need[1]}' extra (pip install 'esrgan-lit[{need[1]}]')"
            )

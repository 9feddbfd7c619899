"""Where the Hydra configs live, for a source checkout and for a non-editable install alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

REQUIRED = "esrgan.required"


def _required(why: str) -> None:
    """Resolver for keys a config cannot default: it fails, saying what to pass.

    A plain ``???`` is no use in an experiment: OmegaConf keeps the group's existing value when
    merging MISSING over it, so the requirement would silently vanish.
    """
    raise ValueError(why)


if not OmegaConf.has_resolver(REQUIRED):
    OmegaConf.register_new_resolver(REQUIRED, _required)


class MissingConfigValueError(ValueError):
    """A key the chosen experiment needs was not given on the command line."""


def check_required(cfg: DictConfig, key: str) -> None:
    """Stop before any work when a ``${esrgan.required:...}`` value under ``cfg[key]`` is unset."""

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{path}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}[{i}]")
        elif isinstance(node, str) and node.startswith("${" + REQUIRED + ":"):
            why = node[len(REQUIRED) + 3 : -1].strip("'\"")
            raise MissingConfigValueError(f"{path} is required: {why}")

    walk(OmegaConf.to_container(cfg[key], resolve=False), key)


def config_dir() -> Path:
    """Absolute path of the ``conf/`` tree.

    A wheel carries the configs inside the package (``esrgan_lit/conf``); a source checkout keeps
    them at the repository root. Entry points pass this to ``hydra.main`` so the configs resolve
    from any working directory.
    """
    here = Path(__file__).resolve().parent
    for candidate in (here / "conf", here.parents[1] / "conf"):
        if (candidate / "train.yaml").is_file() or (candidate / "evaluate.yaml").is_file():
            return candidate
    raise FileNotFoundError(
        f"esrgan-lit configs not found: looked in {here / 'conf'} and {here.parents[1] / 'conf'}"
    )

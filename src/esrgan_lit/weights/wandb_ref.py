"""``wandb:ENTITY/PROJECT/NAME:ALIAS`` generator references, resolved to a downloaded file.

A training run logs its ``generator.safetensors`` as a W&B model artifact
(:class:`esrgan_lit.callbacks.WandbModelArtifacts`); wherever a checkpoint path is accepted,
such a reference may stand instead. ``wandb`` is imported only when a reference is resolved:
this layer must stay importable without the training stack's heavy dependencies.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

PREFIX = "wandb:"
# The file the export callback writes; other single checkpoints in an artifact are accepted too.
GENERATOR_FILE = "generator.safetensors"
_SUFFIXES = (".safetensors", ".pth", ".pt", ".ckpt")


def is_wandb_ref(spec: Any) -> bool:
    return isinstance(spec, str) and spec.startswith(PREFIX)


def artifact_name(spec: str) -> str:
    """``wandb:e/p/name:alias`` -> ``e/p/name:alias`` (``:latest`` added when no alias/version)."""
    name = spec[len(PREFIX) :].strip()
    if not name or name.endswith(("/", ":")):
        raise ValueError(f"{spec!r}: expected wandb:ENTITY/PROJECT/NAME:ALIAS (e.g. ...:best)")
    if ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return name


def _fetch(name: str) -> Any:
    """The artifact, through the active run when there is one (W&B then records the lineage)."""
    import wandb

    run = wandb.run
    if run is not None and not run.settings._offline:
        return run.use_artifact(name)
    return wandb.Api().artifact(name, type="model")


def _generator_file(root: Path, spec: str) -> Path:
    preferred = root / GENERATOR_FILE
    if preferred.is_file():
        return preferred
    found = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in _SUFFIXES)
    if len(found) != 1:
        names = [str(p.relative_to(root)) for p in found]
        raise FileNotFoundError(
            f"{spec}: the artifact holds no {GENERATOR_FILE} and {len(found)} other checkpoint "
            f"files {names}; reference an artifact written by esrgan-lit's WandbModelArtifacts"
        )
    return found[0]


def resolve_wandb_ref(spec: Any) -> Path | None:
    """The local generator file of a ``wandb:`` reference (downloaded by W&B into
    ``$WANDB_ARTIFACT_DIR``, default ``./artifacts``); ``None`` for anything else."""
    if not is_wandb_ref(spec):
        return None
    name = artifact_name(spec)
    if os.environ.get("WANDB_MODE") in ("offline", "disabled"):
        hint = " (WANDB_MODE is offline: set WANDB_MODE=online, or download it and pass the path)"
    else:
        hint = ""
    try:
        artifact = _fetch(name)
        root = Path(artifact.download())
    except ImportError as err:
        raise ImportError(f"{spec}: resolving W&B references needs the wandb package") from err
    except Exception as err:  # wandb raises CommError/ValueError/...: say which reference failed
        raise FileNotFoundError(f"{spec}: cannot fetch W&B artifact {name!r}{hint}: {err}") from err
    return _generator_file(root, spec)

"""Why a ``model.pretrained_generator`` does not fit, in a few lines instead of ~700.

``load_state_dict`` lists every mismatched tensor; when checkpoint and config are the same
family in other sizes, the useful answer is the sizes and the overrides that make them match.
"""

from __future__ import annotations

from torch import nn

from esrgan_lit.weights.errors import CheckpointError
from esrgan_lit.weights.formats import GeneratorSpec
from esrgan_lit.weights.io import resolve

_FIELDS = ("num_in_ch", "num_out_ch", "num_feat", "num_block", "num_grow_ch", "batch_norm", "scale")


def describe_mismatch(generator: nn.Module, path: str, err: BaseException) -> str:
    """The size fix when it can be read, else the head of ``err``."""
    return _size_fix(generator, path) or _head(err)


def _head(err: BaseException, lines: int = 6) -> str:
    """The first lines of a (possibly ~700-line) load_state_dict error."""
    text = str(err).splitlines()
    return "\n".join(text[:lines]) + (
        f"\n... ({len(text) - lines} more lines)" if len(text) > lines else ""
    )


def _size_fix(generator: nn.Module, path: str) -> str | None:
    """When checkpoint and config are the same family in other sizes: both, and the overrides
    that make the config match (``None`` when the sizes cannot be read)."""
    try:
        want, have = resolve(path)[1], GeneratorSpec.of(generator)
    except (CheckpointError, OSError, ValueError):  # a foreign generator: the raw error
        return None
    if want.arch != have.arch:
        return f"the checkpoint is a {want.arch}, the config builds a {have.arch}"
    fields = [f for f in _FIELDS if getattr(want, f) != getattr(have, f)]
    if not fields:
        return None
    fix = " ".join(
        ("scale" if f == "scale" else f"model.generator.{f}") + f"={str(getattr(want, f)).lower()}"
        for f in fields
    )
    sizes = ", ".join(f"{f}={getattr(want, f)} (config {getattr(have, f)})" for f in fields)
    return f"the checkpoint has {sizes}. To load it, set: {fix}"

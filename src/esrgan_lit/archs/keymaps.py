"""Declarative checkpoint key layouts: how a state dict is recognised, renamed and sized.

Each architecture family declares its layouts next to its network (``rrdbnet_keys.py``,
``srresnet.py``): which keys identify the layout, how its names map onto our module's own
attribute names and back, and how the constructor arguments are read from tensor shapes (never
assumed). ``esrgan_lit.weights`` only walks the families' tables. The idea (key conditions, sizes
from shapes) follows spandrel's architecture descriptions; the code is ours.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

StateDict = dict[str, torch.Tensor]
# (regex, replacement) pairs; the first rule that matches a key renames it, others leave it.
Renames = tuple[tuple[str, str], ...]
Rename = Renames | Callable[[Mapping[str, torch.Tensor], str], StateDict]
ReadKwargs = Callable[[Mapping[str, torch.Tensor], str, Mapping[str, str]], dict[str, Any]]


class KeyLayoutError(ValueError):
    """A state dict does not fit the layout it claims: the message names the key and the rule."""


@dataclass(frozen=True)
class Keys:
    """A key condition: every ``all`` key is present, and for each ``prefix`` / ``match`` entry
    some key starts with it / matches that regex (from the key's start)."""

    all: tuple[str, ...] = ()
    prefix: tuple[str, ...] = ()
    match: tuple[str, ...] = ()

    def __call__(self, keys: Collection[str]) -> bool:
        return (
            all(k in keys for k in self.all)
            and all(any(k.startswith(p) for k in keys) for p in self.prefix)
            and all(any(re.match(rx, k) for k in keys) for rx in self.match)
        )


@dataclass(frozen=True)
class KeyLayout:
    """One checkpoint layout of one architecture family."""

    name: str  # stable id, e.g. "basicsr", "esrgan_old"
    arch: type[nn.Module]  # the network it loads into
    summary: str  # the characteristic keys, for "expected one of" messages
    detect: Keys
    read_kwargs: ReadKwargs  # canonical state dict, name, metadata hints -> constructor kwargs
    to_canonical: Rename = ()  # foreign names -> our attribute names
    from_canonical: Rename = ()  # our attribute names -> foreign names

    def canonical(self, sd: Mapping[str, torch.Tensor], name: str) -> StateDict:
        return _apply(self.to_canonical, sd, name)

    def foreign(self, sd: Mapping[str, torch.Tensor], name: str = "<state dict>") -> StateDict:
        return _apply(self.from_canonical, sd, name)


def _apply(how: Rename, sd: Mapping[str, torch.Tensor], name: str) -> StateDict:
    """A table of rules, or a function for layouts whose names depend on the sizes."""
    return how(sd, name) if callable(how) else rename(sd, how)


def rename(sd: Mapping[str, torch.Tensor], rules: Iterable[tuple[str, str]]) -> StateDict:
    """``sd`` with each key renamed by the first (regex, replacement) rule that matches it;
    keys no rule matches keep their names."""
    compiled = [(re.compile(rx), repl) for rx, repl in rules]
    return {_rename_key(k, compiled): v for k, v in sd.items()}


def _rename_key(key: str, rules: list[tuple[re.Pattern[str], str]]) -> str:
    for pattern, repl in rules:
        key, n = pattern.subn(repl, key)
        if n:
            return key
    return key


def need(sd: Mapping[str, torch.Tensor], key: str, ndim: int, name: str) -> torch.Tensor:
    """The tensor a size is read from; a clear error when it is missing or not a conv weight."""
    if key not in sd:
        raise KeyLayoutError(f"{name}: missing key {key!r} needed to read the network size")
    t = sd[key]
    if t.ndim != ndim:
        raise KeyLayoutError(
            f"{name}: key {key!r} has shape {tuple(t.shape)}; expected a {ndim}-D conv weight"
        )
    return t


def indices(sd: Mapping[str, torch.Tensor], pattern: str) -> set[int]:
    """The integers captured by ``pattern``'s first group over all keys (block / stage indices)."""
    return {int(m.group(1)) for k in sd if (m := re.match(pattern, k))}

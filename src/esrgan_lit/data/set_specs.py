"""Named data set specs: value checks, spec normalisation and the (HR, LR) pairs of one set.

A spec is an HR path string or a mapping with ``hr`` (and optionally ``lr``), or ``root`` (a
folder of HR images, or a benchmark folder laid out as ``root/HR`` + ``root/LR_bicubic/X{scale}``).
Kept apart from :class:`~esrgan_lit.data.datamodule.SRDataModule`, which only wires sets to loaders.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, ListConfig, OmegaConf

from esrgan_lit.data.hints import missing_data_hint
from esrgan_lit.data.pairs import Pair, _lr_lookup, build_pairs
from esrgan_lit.data.sources import DataNotFoundError, open_source


def whole_number(key: str, value: Any, minimum: int = 1, optional: bool = False) -> int | None:
    """``value`` as an int >= ``minimum``, or a ValueError naming ``data.<key>`` (checked in
    ``__init__``: a bad value otherwise passes and crashes later inside a convolution)."""
    if value is None and optional:
        return None
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    ok = ok or (isinstance(value, float) and value.is_integer())
    ok = ok or (isinstance(value, str) and value.strip().lstrip("+-").isdigit())
    if not ok or int(value) < minimum:
        raise ValueError(f"data.{key}={value!r}: must be a whole number >= {minimum}")
    return int(value)


def as_set_dict(sets: Any) -> dict[str, Any]:
    """A path, one spec, a list or a ``name -> spec`` mapping, as ``name -> spec``."""
    if sets is None:
        return {}
    if isinstance(sets, (str, os.PathLike)):
        return {Path(sets).name: sets}
    if isinstance(sets, Mapping):
        if "hr" in sets or "root" in sets:  # a single spec
            name = Path(str(sets.get("hr") or sets.get("root"))).name
            return {name: sets}
        return {str(k): v for k, v in sets.items() if v is not None}
    return {
        Path(str(s if isinstance(s, (str, os.PathLike)) else s.get("hr") or s.get("root"))).name
        + (f"_{i}" if i else ""): s
        for i, s in enumerate(sets)
    }


def spec_paths(spec: Any, scale: int) -> tuple[str, str | None]:
    """(HR path, LR path or None) of a spec; a benchmark root gives ``HR`` + ``LR_bicubic/X{scale}``."""
    if isinstance(spec, (str, os.PathLike)):
        return str(spec), None
    spec = dict(spec)
    if spec.get("hr"):
        return str(spec["hr"]), (str(spec["lr"]) if spec.get("lr") else None)
    root = Path(os.path.expanduser(str(spec.get("root") or "")))
    if not str(spec.get("root") or ""):
        raise ValueError(f"data set spec needs 'hr' or 'root': {spec!r}")
    if (root / "HR").is_dir():
        lr = root / "LR_bicubic" / f"X{scale}"
        return str(root / "HR"), (str(lr) if lr.is_dir() else spec.get("lr"))
    return str(root), (str(spec["lr"]) if spec.get("lr") else None)


def set_pairs(
    name: str,
    spec: Any,
    field: str,
    *,
    scale: int,
    min_size: int,
    check_files: str,
    skip_bad_files: bool,
    data_dir: str,
    downloads: Any,
) -> list[Pair]:
    """The checked (HR, LR) pairs of one named set; a missing folder is a
    :class:`DataNotFoundError` whose hint names an override that works when pasted."""
    hr_path, lr_path = spec_paths(spec, scale)
    hr = lr = None
    try:
        hr = open_source(hr_path, what=f"{name}: HR folder", skip_bad_files=skip_bad_files)
        if lr_path:
            lr = open_source(lr_path, what=f"{name}: LR folder", skip_bad_files=skip_bad_files)
    except DataNotFoundError as err:
        lr_missing = hr is not None
        hint = missing_data_hint(
            field,
            name,
            spec,
            lr_missing=lr_missing,
            path=str(lr_path if lr_missing else hr_path),
            data_dir=data_dir,
            downloads=downloads,
        )
        raise DataNotFoundError(f"{err}. {hint}") from None
    return (
        build_pairs(
            hr,
            lr,
            scale=scale,
            min_size=min_size,
            deep=check_files == "full",
            skip_bad_files=skip_bad_files,
            what=f"data set {name!r}",
        )
        if check_files != "none"
        else unchecked_pairs(hr, lr, scale)
    )


def plain(value: Any) -> Any:
    """OmegaConf containers (as Hydra passes them) -> dict/list, recursively."""
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


def spec_hr(spec: Any) -> str:
    if isinstance(spec, (str, os.PathLike)):
        return str(spec)
    return str(spec.get("hr") or spec.get("root") or spec.get("lr"))


def unchecked_pairs(hr: Any, lr: Any, scale: int) -> list[Pair]:
    """``check_files: none``: pair by name only; sizes are checked when each image is read."""
    table = _lr_lookup(lr.keys(), scale) if lr is not None else {}
    pairs = []
    hr_keys = hr.keys()
    for key in hr_keys:
        lr_key = table.get(key) if lr is not None else None
        if lr is not None and lr_key is None:
            raise DataNotFoundError(f"{hr.describe(key)}: no LR image for it in {lr.root}")
        pairs.append(Pair(hr, key, lr, lr_key, 0, 0, 3))
    return pairs

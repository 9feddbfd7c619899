"""Evaluation sets from ``esrgan_lit.data``: ``test_dirs`` folders or a config's benchmark sets.

The data layer does the protocol (HR mod-cropped; LR read from ``LR_bicubic/X{scale}`` when
present, else MATLAB bicubic of the HR rounded to uint8; grey images kept single-channel). Each
sample is ``{"lq", "gt", "name", "grey"}`` with float [0, 1] (C, h, w) / (C, H, W) tensors.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from esrgan_lit.data.sources import DataNotFoundError, open_source

Sample = dict[str, Any]


@dataclass
class EvalSet:
    """A named set of samples; ``samples()`` can be iterated more than once."""

    name: str
    size: int
    samples: Callable[[], Iterable[Sample]]

    def __len__(self) -> int:
        return self.size


def _unbatch(batch: Mapping[str, Any]) -> Iterator[Sample]:
    lq, gt = batch["lq"], batch["gt"]
    if lq.ndim == 3:  # an unbatched dataset
        yield dict(batch)
        return
    names, greys = batch.get("name"), batch.get("grey")
    for i in range(lq.shape[0]):
        yield {
            "lq": lq[i],
            "gt": gt[i],
            "name": str(names[i]) if names is not None else f"{i:04d}",
            "grey": bool(greys[i]) if greys is not None else gt.shape[1] == 1,
        }


def datamodule_sets(datamodule: Any) -> list[EvalSet]:
    """The test sets of an ``SRDataModule`` (one loader per named set)."""
    datamodule.setup("test")
    loaders = datamodule.test_dataloader()
    if not isinstance(loaders, (list, tuple)):
        loaders = [loaders]
    names = list(datamodule.test_set_names)
    if len(names) != len(loaders):
        raise RuntimeError(f"data module gave {len(loaders)} test loaders for sets {names}")
    sets = []
    for name, loader in zip(names, loaders):

        def samples(loader: Any = loader) -> Iterator[Sample]:
            for batch in loader:
                yield from _unbatch(batch)

        sets.append(EvalSet(name=name, size=len(loader.dataset), samples=samples))
    return sets


EMPTY_FOLDER_HELP = (
    "test_dirs: {folder} holds no images (png, jpg, bmp, tif, webp): give a folder of HR images, "
    "or a benchmark folder with HR/ (and LR_bicubic/X{scale}/) inside"
)


def folder_sets(
    folders: Sequence[str | os.PathLike[str]],
    scale: int,
    *,
    num_workers: int = 0,
    skip_bad_files: bool = False,
) -> list[EvalSet]:
    """One set per folder of HR images (or benchmark folder with ``HR/``), named by the folder."""
    if not folders:
        return []
    from esrgan_lit.data import SRDataModule  # pulls in Lightning: only folder sets need it

    specs: dict[str, dict[str, str]] = {}
    for folder in folders:
        root = Path(folder).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"test_dirs: {folder} does not exist or is not a directory")
        name = root.resolve().name
        if name in specs:
            raise ValueError(f"test_dirs: two folders are named {name!r}; set names must be unique")
        specs[name] = {"root": str(root)}
        try:  # evaluation advice, not the training-data advice the data module gives
            open_source(root / "HR" if (root / "HR").is_dir() else root, skip_bad_files=True)
        except DataNotFoundError:
            raise DataNotFoundError(EMPTY_FOLDER_HELP.format(folder=folder, scale=scale)) from None
    dm = SRDataModule(
        scale=scale,
        gt_size=scale,
        val_sets=specs,
        num_workers=num_workers,
        val_num_workers=num_workers,
        pin_memory=False,
        skip_bad_files=skip_bad_files,
    )
    return datamodule_sets(dm)


def present_sets(specs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Split a config's ``{name: {root|hr: PATH}}`` into sets on disk and missing ones (reasons).

    ``data=benchmarks`` lists six sets; Manga109 and PIRM are by hand, so absent ones are left
    out with a note instead of failing the whole evaluation.
    """
    present: dict[str, Any] = {}
    missing: dict[str, str] = {}
    for name, spec in specs.items():
        if spec is None:
            continue
        path = spec if isinstance(spec, str) else (spec.get("hr") or spec.get("root"))
        if path and not Path(os.path.expanduser(str(path))).exists():
            missing[name] = f"{path} not found"
        else:
            present[name] = spec
    return present, missing

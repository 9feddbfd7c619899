"""Data: datasets, the Lightning DataModule, MATLAB-bicubic LR, the sample split.

``SRDataModule`` is imported lazily so that ``esrgan_lit.data.prepare`` / ``lmdb_io`` / ``io``
stay usable without importing Lightning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from esrgan_lit.data.datamodule import SRDataModule

__all__ = ["SRDataModule"]


def __getattr__(name: str) -> Any:
    if name == "SRDataModule":
        from esrgan_lit.data.datamodule import SRDataModule

        return SRDataModule
    raise AttributeError(f"module 'esrgan_lit.data' has no attribute {name!r}")

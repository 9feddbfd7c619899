"""Where images come from: a folder (plain, nested like OST, or of sub-images) or an LMDB.

A source maps string keys (the path relative to its root, without extension, ``/``-separated) to
decoded images, and can describe an image (size, channels) cheaply so that datasets are checked
when they are listed, not an hour into training.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Protocol

import numpy as np

from esrgan_lit.data.errors import DataNotFoundError as DataNotFoundError  # re-export
from esrgan_lit.data.io import (
    ImageInfo,
    ImageReadError,
    is_image_file,
    probe_image,
    read_image,
)
from esrgan_lit.data.lmdb_io import LmdbReader

log = logging.getLogger(__name__)


class ImageSource(Protocol):
    root: Path

    def keys(self) -> list[str]: ...

    def read(self, key: str) -> np.ndarray: ...

    def info(self, key: str, *, deep: bool = False) -> ImageInfo: ...

    def describe(self, key: str) -> str: ...


class FolderSource:
    """Every image under ``root`` (recursively; hidden files and folders ignored).

    A non-image file is an error naming it, unless ``skip_bad_files`` (then it is logged and
    ignored): a stray file usually means the wrong folder was configured.
    """

    def __init__(self, root: str | os.PathLike[str], *, skip_bad_files: bool = False) -> None:
        self.root = Path(root)
        self._paths: dict[str, Path] = {}
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for fname in sorted(filenames):
                if fname.startswith("."):
                    continue
                path = Path(dirpath) / fname
                if not is_image_file(path):
                    msg = f"{path}: not an image file (suffix {path.suffix or 'none'!r}) in {self.root}"
                    if skip_bad_files:
                        log.warning("skipping %s", msg)
                        continue
                    raise ImageReadError(msg + "; remove it or set data.skip_bad_files=true")
                key = path.relative_to(self.root).with_suffix("").as_posix()
                if key in self._paths:
                    raise ImageReadError(
                        f"{path}: two images share the name {key!r} in {self.root} "
                        f"(also {self._paths[key].name}); keep one"
                    )
                self._paths[key] = path
        self._keys = sorted(self._paths)

    def keys(self) -> list[str]:
        return list(self._keys)

    def path(self, key: str) -> Path:
        return self._paths[key]

    def describe(self, key: str) -> str:
        return str(self._paths[key])

    def read(self, key: str) -> np.ndarray:
        return read_image(self._paths[key])

    def info(self, key: str, *, deep: bool = False) -> ImageInfo:
        return probe_image(self._paths[key], deep=deep)


class LmdbSource:
    """An image LMDB (``esrgan_lit.data.lmdb_io``; BasicSR's layout reads too)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._reader = LmdbReader(self.root)

    def keys(self) -> list[str]:
        return self._reader.keys()

    def describe(self, key: str) -> str:
        return f"{self.root}[{key}]"

    def read(self, key: str) -> np.ndarray:
        arr = self._reader.read(key)
        if arr.shape[2] in (2, 4):  # alpha dropped, as for files
            arr = np.ascontiguousarray(arr[:, :, :-1])
        return arr

    def info(self, key: str, *, deep: bool = False) -> ImageInfo:
        if deep:
            arr = self.read(key)
            return ImageInfo(arr.shape[0], arr.shape[1], arr.shape[2], arr.dtype.itemsize * 8)
        entry = self._reader.entry(key)
        h, w, c = entry.shape
        depth = 16 if entry.extra == "uint16" else 8
        return ImageInfo(h, w, 1 if c in (1, 2) else 3, depth)


def _is_lmdb(path: Path) -> bool:
    return path.is_dir() and (path / "data.mdb").is_file()


def open_source(
    path: str | os.PathLike[str], *, what: str = "image folder", skip_bad_files: bool = False
) -> ImageSource:
    """Open a folder or LMDB; a missing path or one without images is a ``DataNotFoundError``."""
    p = Path(os.path.expanduser(str(path)))
    if not p.exists():
        raise DataNotFoundError(f"{what} {p} does not exist")
    if not p.is_dir():
        raise DataNotFoundError(f"{what} {p} is not a directory")
    source: ImageSource = (
        LmdbSource(p) if _is_lmdb(p) else FolderSource(p, skip_bad_files=skip_bad_files)
    )
    if not source.keys():
        raise DataNotFoundError(f"{what} {p} contains no images")
    return source

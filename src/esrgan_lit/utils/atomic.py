"""Atomic file writes: a reader never sees a half-written checkpoint or image."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_write_path(dst: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``dst``; rename it onto ``dst`` only if the block succeeds.

    The temporary file keeps ``dst``'s suffix so writers that pick a format from the extension
    (PIL, safetensors, torch) behave as they would for ``dst``. On error it is removed.
    """
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.stem}.", suffix=f".tmp{dst.suffix}", dir=dst.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, dst)
    finally:
        tmp_path.unlink(missing_ok=True)

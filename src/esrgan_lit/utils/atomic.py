"""Atomic file writes: a reader never sees a half-written checkpoint or image."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path


def _create_temp(dst: Path) -> Path:
    """Create an empty temporary file beside ``dst`` with the mode a plain ``open(dst, "w")``
    would give a new file (0666 minus the umask), unlike ``tempfile.mkstemp``'s 0600.

    ``os.open`` applies the process umask itself, so nothing global is read or changed.
    """
    for _ in range(100):
        tmp = dst.parent / f".{dst.stem}.{secrets.token_hex(4)}.tmp{dst.suffix}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"{dst.parent}: could not create a temporary file beside {dst.name}")


@contextlib.contextmanager
def atomic_write_path(dst: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``dst``; rename it onto ``dst`` only if the block succeeds.

    The temporary file keeps ``dst``'s suffix so writers that pick a format from the extension
    (PIL, safetensors, torch) behave as they would for ``dst``. On error it is removed. The
    result has the permissions a plain write gives: an existing ``dst`` keeps its mode, a new
    one gets 0666 minus the umask.
    """
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = _create_temp(dst)
    mode = stat.S_IMODE(os.stat(tmp_path).st_mode)  # 0666 minus the umask, as os.open made it
    with contextlib.suppress(FileNotFoundError):
        mode = stat.S_IMODE(os.stat(dst).st_mode)  # a plain write keeps an existing file's mode
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        # writers that replace the file themselves (safetensors) leave their own mode: reset it
        os.chmod(tmp_path, mode)
        os.replace(tmp_path, dst)
    finally:
        tmp_path.unlink(missing_ok=True)

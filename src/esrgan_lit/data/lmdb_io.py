"""Image LMDBs (ours and BasicSR's): a reader datasets use in place of a folder, and the writer.

An image LMDB is a directory holding LMDB's ``data.mdb`` plus a ``meta_info.txt`` with one line
per image: ``{key}.{fmt} ({h},{w},{c}) {extra}``. ``fmt`` is ``png`` (the value is an encoded
image, any format Pillow decodes; ``extra`` is the PNG compression level, ``-1`` when the source
PNG was stored byte for byte) or ``raw`` (the value is the C-ordered HWC array; ``extra`` is its
dtype, ``uint8`` or ``uint16``). BasicSR writes the same ``png`` lines, so its LMDBs read here too.

Arrays are HWC uint8/uint16 (grey has C=1). 16-bit colour PNG/TIFF, which Pillow truncates to
8 bits, are decoded by :mod:`esrgan_lit.imageio` and written by ``encode_png`` (from there).
The ``lmdb`` package is an optional extra (``esrgan-lit[lmdb]``): it is imported only when an
LMDB is actually opened.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from esrgan_lit.data.errors import DataNotFoundError
from esrgan_lit.imageio import PNG_SIGNATURE, decode_bytes
from esrgan_lit.imageio import encode_png as encode_png  # prepare and the tests import it here

META_FILE = "meta_info.txt"
_META_RE = re.compile(
    r"^(?P<name>\S+)\s+\((?P<h>\d+),\s*(?P<w>\d+),\s*(?P<c>\d+)\)\s*(?P<extra>\S*)"
)


def import_lmdb() -> Any:
    """Import the optional ``lmdb`` package, or say which extra installs it."""
    try:
        import lmdb
    except ImportError as err:  # pragma: no branch - message is the point
        raise ImportError(
            "LMDB support needs the optional 'lmdb' package: pip install 'esrgan-lit[lmdb]' "
            "(or read the image folder instead)"
        ) from err
    return lmdb


def is_lmdb(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is an LMDB directory (it holds ``data.mdb``). No ``lmdb`` import needed."""
    p = Path(path)
    return p.is_dir() and (p / "data.mdb").is_file()


@dataclass(frozen=True)
class LmdbEntry:
    """One ``meta_info.txt`` line: how the value under ``key`` is stored."""

    key: str
    fmt: str  # "png" (encoded image) or "raw" (HWC array)
    shape: tuple[int, int, int]
    extra: str  # compression level for png, dtype name for raw


def parse_meta_info(path: str | os.PathLike[str]) -> dict[str, LmdbEntry]:
    """Parse ``meta_info.txt``; a malformed line is an error naming the file and line."""
    path = Path(path)
    entries: dict[str, LmdbEntry] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        m = _META_RE.match(line.strip())
        if m is None:
            raise ValueError(f"{path}:{lineno}: expected 'key.png (h,w,c) level', got {line!r}")
        name = m["name"]
        key, dot, fmt = name.rpartition(".")
        if not dot:
            key, fmt = name, "png"
        fmt = "raw" if fmt == "raw" else "png"
        shape = (int(m["h"]), int(m["w"]), int(m["c"]))
        if fmt == "raw" and m["extra"] not in ("uint8", "uint16"):
            raise ValueError(f"{path}:{lineno}: raw entry needs dtype uint8|uint16, got {line!r}")
        if key in entries:
            raise ValueError(f"{path}:{lineno}: duplicate key {key!r}")
        entries[key] = LmdbEntry(key, fmt, shape, m["extra"])
    return entries


def is_deep_colour(head: bytes) -> bool:
    """True for a 16-bit colour PNG or TIFF, which Pillow would truncate to 8 bits.

    A PNG needs only its first 26 bytes; a TIFF needs the whole file (tags may sit at the end).
    """
    if head.startswith(PNG_SIGNATURE):
        return len(head) > 25 and head[24] == 16 and head[25] in (2, 6)
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        try:
            with Image.open(io.BytesIO(head)) as im:
                bits = im.tag_v2.get(258) or (8,)
        except Exception:
            return False
        return len(bits) >= 3 and max(bits) > 8
    return False


def decode_image_bytes(buf: bytes, *, name: str = "<bytes>") -> np.ndarray:
    """Decode an encoded image to an HWC uint8/uint16 array (grey -> C=1, palette -> RGB/RGBA).

    The shared reader (:func:`esrgan_lit.imageio.decode_bytes`): checked, pixel-limited, never a
    decoder that can crash the process.
    """
    return decode_bytes(buf, name=name)


# One environment per LMDB per process. LMDB forbids opening the same files twice in a
# process and using an environment across fork(); the lmdb package enforces the first rule,
# so readers share handles here and every handle is closed just before this process forks
# (DataLoader workers then open their own, lazily).
_ENVS: dict[str, Any] = {}


def _close_all_envs() -> None:
    while _ENVS:
        _ENVS.popitem()[1].close()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_close_all_envs)


def _env_for(path: Path) -> Any:
    key = str(path.resolve())
    env = _ENVS.get(key)
    if env is None:
        lmdb = import_lmdb()
        env = lmdb.open(key, readonly=True, lock=False, readahead=False, meminit=False)
        _ENVS[key] = env
    return env


class LmdbReader:
    """Random access to an image LMDB; safe to hand to DataLoader workers.

    Holds only the path and the key list, so it pickles cheaply; the LMDB itself is opened on
    the first read in each process.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not is_lmdb(self.path):
            raise DataNotFoundError(f"{self.path}: not an LMDB directory (no data.mdb inside)")
        meta = self.path / META_FILE
        if not meta.is_file():
            raise DataNotFoundError(
                f"{self.path}: {META_FILE} missing; it lists the keys and how each is stored"
            )
        self._entries = parse_meta_info(meta)
        self._keys = sorted(self._entries)

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def keys(self) -> list[str]:
        """Sorted image keys (the source files' stems)."""
        return list(self._keys)

    def entry(self, key: str) -> LmdbEntry:
        """How ``key`` is stored (format, shape), without reading it."""
        try:
            return self._entries[key]
        except KeyError:
            raise KeyError(f"{self.path}: no image with key {key!r}") from None

    def read_bytes(self, key: str) -> bytes:
        """The stored value for ``key`` (encoded image or raw array bytes)."""
        self.entry(key)
        with _env_for(self.path).begin(write=False) as txn:
            buf = txn.get(key.encode("ascii"))
        if buf is None:
            raise KeyError(f"{self.path}: key {key!r} is listed in {META_FILE} but not stored")
        return bytes(buf)

    def read(self, key: str) -> np.ndarray:
        """Decode ``key`` to an HWC uint8/uint16 array."""
        entry = self.entry(key)
        buf = self.read_bytes(key)
        where = f"{self.path}[{key}]"
        if entry.fmt == "raw":
            dtype = np.dtype(entry.extra)
            h, w, c = entry.shape
            if len(buf) != h * w * c * dtype.itemsize:
                raise ValueError(
                    f"{where}: {len(buf)} bytes stored, expected {h}x{w}x{c} {dtype.name}"
                )
            return np.frombuffer(buf, dtype=dtype).reshape(h, w, c).copy()
        arr = decode_image_bytes(buf, name=where)
        if arr.shape[:2] != entry.shape[:2]:
            raise ValueError(f"{where}: decoded size {arr.shape} differs from {META_FILE}")
        return arr

    def close(self) -> None:
        """Close this process's handle on the LMDB (reopened by the next read)."""
        env = _ENVS.pop(str(self.path.resolve()), None)
        if env is not None:
            env.close()


# ---------------------------------------------------------------------------------------------
# Writing


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files directly in ``folder`` (hidden/temporary files skipped), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: input folder does not exist")
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    )


def encode_for_lmdb(path: Path, fmt: str, compress_level: int) -> tuple[bytes, LmdbEntry]:
    """Bytes to store for one image file, and its meta line. Runs in worker processes.

    A PNG source in ``png`` format is stored byte for byte: no re-encode, no change.
    """
    data = path.read_bytes()
    key = path.stem
    arr = decode_image_bytes(data, name=str(path))  # validates; gives the shape
    if fmt == "png" and data.startswith(PNG_SIGNATURE):
        return data, LmdbEntry(key, "png", arr.shape, "-1")  # type: ignore[arg-type]
    if fmt == "raw":
        return arr.tobytes(), LmdbEntry(key, "raw", arr.shape, arr.dtype.name)  # type: ignore[arg-type]
    entry = LmdbEntry(key, "png", arr.shape, str(compress_level))  # type: ignore[arg-type]
    return encode_png(arr, compress_level), entry


def meta_line(entry: LmdbEntry) -> str:
    h, w, c = entry.shape
    return f"{entry.key}.{entry.fmt} ({h},{w},{c}) {entry.extra}\n"


def write_lmdb(
    items: Any,
    output: str | os.PathLike[str],
    *,
    map_size: int,
    commit_every: int = 200,
) -> int:
    """Write ``(bytes, LmdbEntry)`` items into a new LMDB at ``output``, atomically.

    The database is built in a temporary directory beside ``output`` and renamed into place
    only when complete, so an interrupted conversion never leaves a half-written LMDB.
    """
    lmdb = import_lmdb()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent))
    n = 0
    try:
        env = lmdb.open(str(tmp), map_size=map_size)
        lines: list[str] = []
        seen: set[str] = set()
        try:
            txn = env.begin(write=True)
            for buf, entry in items:
                if entry.key in seen:
                    raise ValueError(f"duplicate image key {entry.key!r} (two files, same stem)")
                if not entry.key.isascii():
                    raise ValueError(f"image key {entry.key!r} is not ASCII")
                seen.add(entry.key)
                txn.put(entry.key.encode("ascii"), buf)
                lines.append(meta_line(entry))
                n += 1
                if n % commit_every == 0:
                    txn.commit()
                    txn = env.begin(write=True)
            txn.commit()
        finally:
            env.close()
        (tmp / META_FILE).write_text("".join(sorted(lines)))
        if output.exists():
            stale = _ENVS.pop(str(output.resolve()), None)  # a reader of the old database
            if stale is not None:
                stale.close()
            shutil.rmtree(output)
        os.replace(tmp, output)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return n

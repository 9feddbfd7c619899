"""Checked, resumable dataset downloads with safe extraction.

An archive spec (``conf/data/archives/*.yaml``, key ``archives:``) is a mapping::

    name: div2k_train_hr                # also names the marker file
    urls: [https://primary/..., https://mirror/...]   # tried in order
    filename: DIV2K_train_HR.zip        # default: last part of the first URL
    size: 3530603713                    # bytes, or null
    sha256: 9d0b9c...                   # or null
    md5: null                           # a weaker fallback where no SHA-256 is published
    extract_to: DIV2K                   # relative to the data root
    provides: [DIV2K_train_HR]          # paths under extract_to that mean "already here"
    homepage: https://...               # shown when the archive must be fetched by hand

``fetch(spec, root)`` downloads to ``root/downloads/<filename>.part`` (resuming with an HTTP
Range request), checks size and hash, renames the file into place, then extracts it into a
temporary folder and moves the result into ``root/<extract_to>``. Archive members that are
absolute, climb out with ``..``, or are links/devices are refused before anything is written.
An archive without any checksum is refused unless ``allow_unverified=True``.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import tempfile
import warnings
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from esrgan_lit.config import config_dir
from esrgan_lit.utils.fetch import (
    CHUNK,
    USER_AGENT,
    ChecksumError,
    DownloadError,
    download_resuming,
    hash_file,
)

__all__ = [
    "CHUNK",
    "USER_AGENT",
    "ArchiveSpec",
    "ChecksumError",
    "DownloadError",
    "UnsafeArchiveError",
    "UnverifiedArchiveError",
    "fetch",
    "fetch_all",
    "load_archive_specs",
    "safe_extract",
]


class UnsafeArchiveError(DownloadError):
    """The archive holds a member that would land outside the target or is a link."""


class UnverifiedArchiveError(DownloadError):
    """No checksum is recorded for this archive and unverified archives were not allowed."""


@dataclass(frozen=True)
class ArchiveSpec:
    name: str
    urls: tuple[str, ...]
    size: int | None = None
    sha256: str | None = None
    md5: str | None = None
    extract_to: str = "."
    filename: str = ""
    provides: tuple[str, ...] = ()
    homepage: str | None = None
    note: str | None = None
    optional: bool = False

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> ArchiveSpec:
        d = dict(m)
        if not d.get("name"):
            raise ValueError(f"archive spec without a name: {d!r}")
        if unknown := set(d) - set(cls.__dataclass_fields__):
            raise ValueError(f"archive {d['name']!r}: unknown fields {sorted(unknown)}")
        urls = d.get("urls") or ()
        d["urls"] = (urls,) if isinstance(urls, str) else tuple(str(u) for u in urls)
        d["provides"] = tuple(str(p) for p in (d.get("provides") or ()))
        if not d.get("filename"):
            if not d["urls"]:
                raise ValueError(f"archive {d['name']!r}: give urls or a filename")
            d["filename"] = PurePosixPath(d["urls"][0].split("?")[0]).name
        for key in ("sha256", "md5"):
            if d.get(key):
                d[key] = str(d[key]).lower()
        if d.get("size") is not None:
            d["size"] = int(d["size"])
        return cls(**d)

    @property
    def verified(self) -> bool:
        return bool(self.sha256 or self.md5)


# ---------------------------------------------------------------------------------------------
# Paths and messages


def archive_path(spec: ArchiveSpec, root: Path) -> Path:
    return root / "downloads" / spec.filename


def _target_dir(spec: ArchiveSpec, root: Path) -> Path:
    target = (root / spec.extract_to).resolve()
    if not target.is_relative_to(root.resolve()):
        raise ValueError(f"archive {spec.name!r}: extract_to {spec.extract_to!r} leaves {root}")
    return target


def _marker(spec: ArchiveSpec, root: Path) -> Path:
    return _target_dir(spec, root) / f".{spec.name}.extracted"


def is_extracted(spec: ArchiveSpec, root: str | os.PathLike[str]) -> bool:
    """True when this archive's content is in place (extracted by us, or put there by hand)."""
    root = Path(root)
    if _marker(spec, root).is_file():
        return True
    target = _target_dir(spec, root)
    return bool(spec.provides) and all((target / p).exists() for p in spec.provides)


def _no_address(spec: ArchiveSpec, root: Path) -> DownloadError:
    why = f" ({spec.note})" if spec.note else ""
    return DownloadError(
        f"{spec.name} cannot be downloaded automatically{why}. " + manual_hint(spec, root)
    )


def manual_hint(spec: ArchiveSpec, root: Path) -> str:
    """Where a user can put the files by hand when the download cannot happen."""
    target = _target_dir(spec, root)
    where = ", ".join(str(target / p) for p in spec.provides) or str(target)
    src = ", ".join(spec.urls) or spec.homepage or "its publisher"
    return (
        f"Download {spec.filename} from {src} and place it at {archive_path(spec, root)} "
        f"(it is verified and extracted on the next run), or extract it yourself so that "
        f"{where} exists."
    )


# ---------------------------------------------------------------------------------------------
# Download


def verify(spec: ArchiveSpec, path: Path) -> None:
    """Check size and checksums; raises ChecksumError naming the file and what differs."""
    actual = path.stat().st_size
    if spec.size is not None and actual != spec.size:
        raise ChecksumError(f"{path}: {actual} bytes, expected {spec.size} ({spec.name})")
    for algo in ("sha256", "md5"):
        want = getattr(spec, algo)
        if want and (got := hash_file(path, algo)) != want:
            raise ChecksumError(f"{path}: {algo} {got}, expected {want} ({spec.name})")


def download(
    spec: ArchiveSpec,
    root: str | os.PathLike[str],
    *,
    retries: int = 2,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Obtain the verified archive at ``root/downloads/<filename>`` (idempotent)."""
    root = Path(root)
    dst = archive_path(spec, root)
    if dst.is_file():
        verify(spec, dst)  # a file put there by hand or a previous run
        return dst
    if not spec.urls:
        raise _no_address(spec, root)
    dst.parent.mkdir(parents=True, exist_ok=True)
    part = dst.with_name(dst.name + ".part")
    errors: list[str] = []
    bad_bytes = False
    for url in spec.urls:
        if not download_resuming(url, part, size=spec.size, label=spec.filename, retries=retries,
                                 timeout=timeout, progress=progress, errors=errors,
                                 prefix=f"{url}: "):  # fmt: skip
            continue  # this address gave up: try the next one
        try:
            verify(spec, part)
        except ChecksumError as err:
            part.unlink(missing_ok=True)  # bad bytes are never resumed from
            errors.append(str(err))
            bad_bytes = True
            continue  # another address may serve the right bytes
        os.replace(part, dst)
        return dst
    cls = ChecksumError if bad_bytes else DownloadError
    raise cls(f"could not download {spec.name}: {'; '.join(errors)}. " + manual_hint(spec, root))


# ---------------------------------------------------------------------------------------------
# Safe extraction


def _check_member_name(name: str, archive: Path, dest: Path) -> None:
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or (p.parts and p.parts[0].endswith(":")):
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path")
    if ".." in p.parts or not (dest / p).resolve().is_relative_to(dest.resolve()):
        raise UnsafeArchiveError(f"{archive}: member {name!r} escapes the target folder")


def _safe_members_tar(tf: tarfile.TarFile, archive: Path, dest: Path) -> list[tarfile.TarInfo]:
    members = tf.getmembers()
    for m in members:
        _check_member_name(m.name, archive, dest)
        if m.issym() or m.islnk():
            raise UnsafeArchiveError(f"{archive}: member {m.name!r} is a link ({m.linkname!r})")
        if not (m.isfile() or m.isdir()):
            raise UnsafeArchiveError(f"{archive}: member {m.name!r} is not a file or folder")
    return members


def _safe_members_zip(zf: zipfile.ZipFile, archive: Path, dest: Path) -> list[zipfile.ZipInfo]:
    members = zf.infolist()
    for m in members:
        _check_member_name(m.filename, archive, dest)
        ftype = stat.S_IFMT(m.external_attr >> 16)  # 0 when the zip records no Unix type
        if ftype and ftype not in (stat.S_IFREG, stat.S_IFDIR):
            raise UnsafeArchiveError(f"{archive}: member {m.filename!r} is a link or special file")
    return members


def safe_extract(archive: str | os.PathLike[str], dest: str | os.PathLike[str]) -> None:
    """Extract a zip or tar into ``dest`` after checking every member; nothing on refusal."""
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for m in _safe_members_zip(zf, archive, dest):
                zf.extract(m, dest)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            members = _safe_members_tar(tf, archive, dest)
            if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12: a second line of defence
                tf.extractall(dest, members=members, filter="data")
            else:  # pragma: no cover
                tf.extractall(dest, members=members)
    else:
        raise DownloadError(f"{archive}: neither a zip nor a tar archive")


def _merge_into(src: Path, dst: Path) -> None:
    """Move ``src``'s content into ``dst`` by renames (archives may share a top folder)."""
    for item in src.iterdir():
        target = dst / item.name
        if item.is_dir() and target.is_dir():
            _merge_into(item, target)
        else:
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(item, target)


def extract(spec: ArchiveSpec, archive: Path, root: Path) -> Path:
    """Extract ``archive`` into ``root/<extract_to>`` via a temporary folder; write the marker."""
    target = _target_dir(spec, root)
    target.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{spec.name}.", suffix=".extracting", dir=target))
    try:
        safe_extract(archive, tmp)
        _merge_into(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _marker(spec, root).write_text(f"{spec.filename} {spec.sha256 or spec.md5 or 'unverified'}\n")
    return target


# ---------------------------------------------------------------------------------------------
# Public entry points


def fetch(
    spec: ArchiveSpec | Mapping[str, Any],
    root: str | os.PathLike[str],
    *,
    allow_unverified: bool = False,
    keep_archive: bool = True,
    retries: int = 2,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Make sure the archive's content is under ``root/<extract_to>``; return that folder."""
    if not isinstance(spec, ArchiveSpec):
        spec = ArchiveSpec.from_mapping(spec)
    root = Path(root)
    if is_extracted(spec, root):
        return _target_dir(spec, root)
    if not spec.urls and not archive_path(spec, root).is_file():
        raise _no_address(spec, root)
    if not spec.verified and not allow_unverified:
        raise UnverifiedArchiveError(
            f"{spec.name}: no SHA-256 (or MD5) is recorded for {spec.filename}, so a download "
            "could not be checked. Record its checksum in the archive config, pass "
            "allow_unverified=True (data.allow_unverified=true) to accept it unchecked. "
            + manual_hint(spec, root)
        )
    path = download(spec, root, retries=retries, timeout=timeout, progress=progress)
    target = extract(spec, path, root)
    if not keep_archive:
        path.unlink(missing_ok=True)
    return target


def load_archive_specs(name: str) -> list[ArchiveSpec]:
    """The ``archives:`` list of ``conf/data/archives/<name>.yaml``."""
    path = config_dir() / "data" / "archives" / f"{name}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no archive list named {name!r} ({path} does not exist)")
    data = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    if not isinstance(data, dict) or not isinstance(data.get("archives"), list):
        raise ValueError(f"{path}: expected a top-level 'archives:' list")
    return [ArchiveSpec.from_mapping(m) for m in data["archives"]]


def _flatten(specs: Any) -> list[ArchiveSpec]:
    if isinstance(specs, ArchiveSpec):
        return [specs]
    if isinstance(specs, str):
        return load_archive_specs(specs)
    if isinstance(specs, Mapping):
        if "archives" in specs:
            return _flatten(specs["archives"])
        if "name" in specs:
            return [ArchiveSpec.from_mapping(specs)]
        return [s for v in specs.values() for s in _flatten(v)]
    if isinstance(specs, Iterable):
        return [s for item in specs for s in _flatten(item)]
    raise TypeError(f"cannot read archive specs from {type(specs).__name__}")


def fetch_all(specs: Any, root: str | os.PathLike[str], **kwargs: Any) -> list[Path]:
    """``fetch`` every archive; ``specs`` is a list of specs, list names (``"div2k"``), or both.

    Omegaconf containers are accepted as they come; ``kwargs`` go to ``fetch``. Archives marked
    ``optional`` (licence-restricted sets with no public address) that cannot be obtained are
    skipped with a warning; the returned list holds the folders that are ready.
    """
    if isinstance(specs, (DictConfig, ListConfig)):
        specs = OmegaConf.to_container(specs, resolve=True)
    done: list[Path] = []
    for s in _flatten(specs):
        try:
            done.append(fetch(s, root, **kwargs))
        except DownloadError as err:
            if not s.optional or isinstance(err, (ChecksumError, UnsafeArchiveError)):
                raise
            warnings.warn(f"optional archive skipped: {err}", stacklevel=2)
    return done

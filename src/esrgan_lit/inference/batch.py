"""Plan a batch upscale before any work: which files to read, where each output goes, and why not.

The command line accepts files, folders and quoted globs. Everything that can go wrong with the
*set* of paths (an output that would overwrite an input, two inputs with one output, the tool's own
temporaries and earlier outputs found by the scan, symlink loops) is decided here, up front, so a
refused batch leaves every file as it was.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from esrgan_lit.imageio import NO_ALPHA_EXTS, READ_EXTS, WRITE_FORMATS, has_alpha

# utils.atomic writes ``.<stem>.<8 random chars>.tmp<suffix>`` beside the target (tempfile.mkstemp);
# a killed run can leave one behind, and it is never a user's image.
_TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp\.[A-Za-z0-9]+$")


class BatchPlanError(ValueError):
    """The set of inputs and outputs is unsafe (would overwrite an input, or clash)."""


@dataclass(frozen=True)
class Job:
    """One image to upscale: ``src`` is read, ``dst`` written; ``scanned`` if a folder/glob found it."""

    src: Path
    rel: Path
    dst: Path
    scanned: bool


def is_temp_file(path: Path) -> bool:
    """A temporary file of :func:`esrgan_lit.utils.atomic.atomic_write_path`."""
    return bool(_TEMP_NAME.match(path.name))


def output_path(outdir: Path, rel: Path, suffix: str, ext: str | None, has_alpha: bool) -> Path:
    """OUTDIR/<rel dir>/<stem><suffix><ext>; transparent images never go to JPEG/BMP (PNG instead)."""
    out_ext = WRITE_FORMATS[ext] if ext else rel.suffix.lower()
    if has_alpha and out_ext in NO_ALPHA_EXTS:
        out_ext = ".png"
    return outdir / rel.parent / f"{rel.stem}{suffix}{out_ext}"


def _inside(path: Path, folder: Path) -> bool:
    return path != folder and folder in path.parents


def _walk(base: Path, max_depth: int | None = None) -> Iterator[Path]:
    """Files under ``base``; linked folders are not entered (as ``Path.rglob``), so loops end."""
    base_depth = len(base.parts)
    for root, dirs, files in os.walk(base, followlinks=False):
        rootp = Path(root)
        if max_depth is not None and len(rootp.parts) - base_depth + 1 >= max_depth:
            dirs[:] = []
        dirs.sort()
        for name in sorted(files):
            yield rootp / name


def _match_parts(parts: Sequence[str], pat: Sequence[str]) -> bool:
    """glob semantics per path component; ``**`` spans zero or more folders; hidden names need a
    pattern that starts with a dot (as :mod:`glob` does)."""
    if not pat:
        return not parts
    if pat[0] == "**":
        for i in range(len(parts) + 1):
            if _match_parts(parts[i:], pat[1:]):
                return True
            if i < len(parts) and parts[i].startswith("."):
                return False
        return False
    if not parts:
        return False
    if parts[0].startswith(".") and not pat[0].startswith("."):
        return False
    return fnmatch.fnmatchcase(parts[0], pat[0]) and _match_parts(parts[1:], pat[1:])


def _glob(pattern: str) -> tuple[Path, list[Path]]:
    """(base folder, matching files) for ``pattern``; the base is its part before any wildcard."""
    parts = Path(pattern).parts
    n_fixed = next((i for i, p in enumerate(parts) if glob.has_magic(p)), len(parts))
    base = Path(*parts[:n_fixed]) if n_fixed else Path(".")
    pat = parts[n_fixed:]
    if not pat or not base.is_dir():
        return base, []
    depth = None if "**" in pat else len(pat)
    found = []
    for f in _walk(base, depth):
        rel = f.relative_to(base)
        if _match_parts(rel.parts, pat) and f.is_file():
            found.append(f)
    return base, found


def collect_inputs(
    inputs: Sequence[str], outdir: Path | None = None
) -> tuple[list[tuple[Path, Path]], list[str]]:
    """(source, relative output path) pairs, plus error messages for inputs that matched nothing.

    Folders and globs keep each file's folder relative to the folder / the glob's fixed part.
    Scans skip the tool's temporaries and, when ``outdir`` lies inside a scanned folder, the
    files under ``outdir`` (its own earlier outputs). Duplicates (same real file) are dropped.
    """
    pairs, errors = _collect(inputs, outdir)
    return [(src, rel) for src, rel, _ in pairs], errors


def _collect(
    inputs: Sequence[str], outdir: Path | None
) -> tuple[list[tuple[Path, Path, bool]], list[str]]:
    out_real = outdir.resolve() if outdir is not None else None
    pairs: list[tuple[Path, Path, bool]] = []
    errors: list[str] = []
    seen: set[Path] = set()

    def add(src: Path, rel: Path, scanned: bool) -> None:
        real = src.resolve()
        if real not in seen:
            seen.add(real)
            pairs.append((src, rel, scanned))

    for item in inputs:
        path = Path(item)
        if path.is_file():
            add(path, Path(path.name), False)
            continue
        if path.is_dir():
            base, found = path, list(_walk(path))
            what = "folder holds no images"
        else:
            base, found = _glob(item)
            what = "no such file, folder or matching glob"
        skip_out = out_real is not None and _inside(out_real, base.resolve())
        kept = [
            f
            for f in found
            if f.suffix.lower() in READ_EXTS
            and f.is_file()
            and not is_temp_file(f)
            and not (skip_out and _inside(f.resolve(), out_real))
        ]
        if not kept:
            errors.append(f"{item}: {what} ({', '.join(READ_EXTS)})")
        for f in kept:
            add(f, f.relative_to(base), True)
    return pairs, errors


def plan(
    inputs: Sequence[str], outdir: Path, suffix: str, ext: str | None
) -> tuple[list[Job], list[str], list[Path]]:
    """(jobs, errors for inputs that matched nothing, scanned files skipped as own outputs).

    Raises :class:`BatchPlanError` naming both paths when an output would resolve to an input
    file (symlinks and hard links included) or two inputs would write one output.
    """
    pairs, errors = _collect(inputs, outdir)
    jobs = []
    for src, rel, scanned in pairs:
        plain = output_path(outdir, rel, suffix, ext, False)
        alpha = output_path(outdir, rel, suffix, ext, True)
        dst = alpha if plain != alpha and has_alpha(src) else plain
        jobs.append(Job(src, rel, dst, scanned))
    # A scanned file that another input would write is an earlier output of this command
    # (``photos/ -o photos/ --suffix _x4`` run twice): drop it rather than upscale it again.
    # A file that would be written from itself is never dropped here: it is refused below.
    targets = {_real(j.dst): j for j in jobs}
    own = [
        j
        for j in jobs
        if j.scanned and _real(j.src) in targets and targets[_real(j.src)] is not j
        and _real(j.dst) != _real(j.src)
    ]  # fmt: skip
    own_ids = {id(j) for j in own}
    jobs = [j for j in jobs if id(j) not in own_ids]
    check_conflicts(jobs)
    return jobs, errors, [j.src for j in own]


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def check_conflicts(jobs: Sequence[Job]) -> None:
    """Refuse an output that is an input file, or one output for two inputs."""
    by_real = {_real(j.src): j for j in jobs}
    by_inode = {}
    for j in jobs:
        st = j.src.stat()
        by_inode[(st.st_dev, st.st_ino)] = j
    writers: dict[Path, Job] = {}
    for j in jobs:
        real = _real(j.dst)
        victim = by_real.get(real)
        if victim is None and j.dst.exists():
            st = j.dst.stat()
            victim = by_inode.get((st.st_dev, st.st_ino))
        if victim is not None:
            whose = "its own input" if victim is j else f"the input {victim.src}"
            raise BatchPlanError(
                f"the output for {j.src} would be {j.dst}, which is {whose}: refusing to "
                "overwrite inputs. Choose another -o folder, or set --suffix or --ext."
            )
        other = writers.get(real)
        if other is not None:
            raise BatchPlanError(
                f"{other.src} and {j.src} would both be written to {j.dst}: rename one, or "
                "set --suffix/--ext so their outputs differ."
            )
        writers[real] = j

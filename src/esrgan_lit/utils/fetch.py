"""Checksummed, resumable HTTP(S) downloads: the machinery dataset archives and the official
checkpoints (``esrgan_lit.weights.hub``) share.

Plain standard library (+ ``rich`` for the progress bar): no Lightning, Hydra or OmegaConf, so the
weights layer can fetch a checkpoint with only PyTorch installed.
"""

from __future__ import annotations

import hashlib
import http.client
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

CHUNK = 1 << 20
USER_AGENT = "esrgan-lit-downloader"


class DownloadError(RuntimeError):
    """A file could not be obtained; the message says where to put it by hand."""


class ChecksumError(DownloadError):
    """The downloaded bytes are not the published file."""


def hash_file(path: Path, algo: str) -> str:
    """Hex digest of ``path`` with ``hashlib`` algorithm ``algo``, read in chunks."""
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def progress_bar(enabled: bool) -> Any:
    """A rich download bar (disabled: a no-op context)."""
    # rich is imported here: only a download needs it, and most imports of this module never do
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
    )


def download_once(
    url: str, part: Path, *, size: int | None, label: str, timeout: float, progress: bool
) -> None:
    """Fetch ``url`` into ``part``, continuing an existing partial file with a Range request.

    ``size`` (bytes, or None) is the expected total; ``label`` names the file on the bar.
    """
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have > size:
        part.unlink()
        have = 0
    if size is not None and have == size:
        return
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # nothing left to send: the part may be complete
            return
        raise
    with resp:
        if have and resp.status == 206:
            content_range = resp.headers.get("Content-Range", "")
            if not content_range.startswith(f"bytes {have}-"):
                raise DownloadError(f"{url}: server answered Range {have}- with {content_range!r}")
            mode, done = "ab", have
        else:  # 200: the server ignores Range, start over
            mode, done = "wb", 0
        length = resp.headers.get("Content-Length")
        expected_end = done + int(length) if length is not None else size
        with open(part, mode) as f, progress_bar(progress) as bar:
            task = bar.add_task(label, total=expected_end, completed=done)
            while chunk := resp.read(CHUNK):
                f.write(chunk)
                done += len(chunk)
                bar.update(task, completed=done)
    if expected_end is not None and done < expected_end:
        raise DownloadError(
            f"{url}: connection closed after {done} of {expected_end} bytes; "
            f"the partial file {part} is kept and the next run resumes it"
        )


def download_resuming(
    url: str,
    part: Path,
    *,
    size: int | None,
    label: str,
    retries: int,
    timeout: float,
    progress: bool,
    errors: list[str],
    prefix: str = "",
) -> bool:
    """Up to ``retries + 1`` tries of :func:`download_once`, each resuming what arrived before.

    True when a try completed (the caller then verifies ``part``); False when ``url`` gave up or
    nothing arrived at all (the address is unreachable). Each failure is appended to ``errors``
    as ``prefix + reason``.
    """
    for _attempt in range(retries + 1):
        try:
            download_once(url, part, size=size, label=label, timeout=timeout, progress=progress)
            return True
        except (OSError, http.client.HTTPException, DownloadError) as err:
            errors.append(f"{prefix}{getattr(err, 'reason', None) or err}")
            if not (part.exists() and part.stat().st_size > 0):
                return False  # nothing arrived: the address is unreachable
    return False

"""Read back what an offline W&B run wrote: the records of its ``run-<id>.wandb`` file.

The file is a LevelDB-style log (``:W&B`` header, 32 KiB blocks, 7-byte chunk headers) of
``wandb_internal_pb2.Record`` protobufs; wandb 0.2x+ no longer ships a reader for it.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from pathlib import Path

from google.protobuf.message import DecodeError
from wandb.proto import wandb_internal_pb2 as pb

_BLOCK, _HEADER = 32768, 7
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def _chunks(data: bytes) -> Iterator[bytes]:
    if data[:4] != b":W&B":
        raise ValueError("not a W&B run file (no :W&B header)")
    pos, buf = _HEADER, b""
    while pos + _HEADER <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _HEADER:  # block trailer padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + _HEADER])
        if pos + _HEADER + length > len(data):  # the writer is still on this chunk
            return
        chunk = data[pos + _HEADER : pos + _HEADER + length]
        pos += _HEADER + length
        if kind == _FULL:
            yield chunk
        elif kind == _FIRST:
            buf = chunk
        elif kind == _MIDDLE:
            buf += chunk
        elif kind == _LAST:
            yield buf + chunk
            buf = b""


def _parse(run_file: Path) -> list[pb.Record]:
    out = []
    for raw in _chunks(Path(run_file).read_bytes()):
        rec = pb.Record()
        rec.ParseFromString(raw)
        out.append(rec)
    return out


def records(run_file: Path, timeout: float = 30.0) -> list[pb.Record]:
    """All records, once the ``exit`` record is on disk: ``wandb.finish()`` returns before the
    wandb-core writer has flushed the file's last blocks."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            recs = _parse(run_file)
        except DecodeError:  # read while wandb-core was writing: a torn record, read again
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
            continue
        if any(r.HasField("exit") for r in recs) or time.monotonic() > deadline:
            return recs
        time.sleep(0.2)


def artifacts(run_file: Path) -> list[pb.ArtifactRecord]:
    return [r.artifact for r in records(run_file) if r.HasField("artifact")]


def run_files(root: Path) -> list[Path]:
    return sorted(Path(root).rglob("offline-run-*/run-*.wandb"))

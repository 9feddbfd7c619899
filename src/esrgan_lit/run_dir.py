"""One run per run directory: a lock while it trains, no fresh run over an old run's checkpoints,
and ``ckpt_path``/``resume`` checked with our own safe reader before Lightning sees the file.

Two runs writing one folder end with one run's generator beside the other's ``last.ckpt``; a fresh
run into a finished run's folder makes Lightning version its ``last.ckpt`` as ``last-v1.ckpt`` and a
later ``resume=latest`` restores the *old* run. Both are refused here, before any work.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

LOCK_NAME = ".run.lock"
_RANK_VARS = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")


class RunDirError(RuntimeError):
    """The run directory is in use or holds another run; the message says what to do instead."""


class TrainingCheckpointError(ValueError):
    """``ckpt_path`` is not a Lightning training checkpoint this project can resume."""


def is_rank_zero() -> bool:
    """Launchers that re-run the script per process (torchrun, SLURM, Lightning's subprocess
    launcher) set these; only the first process owns the run directory."""
    return all(os.environ.get(v, "0") in ("", "0") for v in _RANK_VARS)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class RunLock:
    """``<run dir>/.run.lock`` holding {pid, host, started}; created with O_EXCL, so exactly one
    of two runs started together gets it. A lock whose process is gone (same host) is stale and
    taken over; one from another host cannot be checked and is reported."""

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self.held = False

    def _create(self) -> bool:
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        }
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            json.dump(info, f)
        return True

    def holder(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.path.read_text()))
        except (OSError, ValueError, TypeError):
            return {}

    def acquire(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            if self._create():
                self.held = True
                return self
            info = self.holder()
            same_host = info.get("host") == socket.gethostname()
            pid = info.get("pid")
            stale = not info or (
                same_host and isinstance(pid, int) and (pid == os.getpid() or not _pid_alive(pid))
            )
            if not stale:
                raise RunDirError(
                    f"{self.path.parent} is in use by another run (pid {pid} on "
                    f"{info.get('host')}, started {info.get('started')}): choose another "
                    f"directory (hydra.run.dir=DIR). If that run is gone, delete {self.path}."
                )
            self.path.unlink(missing_ok=True)  # the holder died: take the lock over
        raise RunDirError(f"{self.path}: could not take the run lock (another run races for it)")

    def release(self) -> None:
        if self.held and self.holder().get("pid") == os.getpid():
            self.path.unlink(missing_ok=True)
        self.held = False


def checkpoints_in(run_dir: str | os.PathLike[str]) -> list[Path]:
    folder = Path(run_dir) / "checkpoints"
    return sorted(folder.glob("*.ckpt")) if folder.is_dir() else []


def refuse_fresh_run_over_checkpoints(run_dir: str | os.PathLike[str]) -> None:
    """A fresh run must not share a folder with an earlier run's checkpoints."""
    found = checkpoints_in(run_dir)
    if found:
        names = ", ".join(p.name for p in found[:3]) + (" ..." if len(found) > 3 else "")
        raise RunDirError(
            f"{run_dir} already holds checkpoints of an earlier run ({names}). Continue that run "
            "with resume=latest (or ckpt_path=FILE), or start this one in another directory "
            "(hydra.run.dir=DIR); overwrite=true deletes the old checkpoints first."
        )


def latest_checkpoint(run_dir: str | os.PathLike[str]) -> Path | None:
    """``checkpoints/last.ckpt`` of this run, refusing when versioned copies make it ambiguous."""
    folder = Path(run_dir) / "checkpoints"
    versions = sorted(folder.glob("last-v*.ckpt")) if folder.is_dir() else []
    if versions:
        raise RunDirError(
            f"resume=latest: {folder} holds {', '.join(p.name for p in versions)} beside "
            "last.ckpt, so more than one run wrote it and 'latest' is ambiguous. Pass the file "
            "to continue with ckpt_path=FILE."
        )
    last = folder / "last.ckpt"
    return last if last.is_file() else None


def _looks_like_weights(obj: Any) -> bool:
    import torch

    if not isinstance(obj, Mapping):
        return False
    for key in ("params_ema", "params", "state_dict", "model", "generator"):
        if isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    return bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def check_training_checkpoint(path: str | os.PathLike[str]) -> int:
    """Read ``path`` with the project's safe reader (never runs pickled code) and make sure it
    is a Lightning training checkpoint; returns its ``global_step``."""
    from esrgan_lit.weights.io import read_checkpoint

    obj, _ = read_checkpoint(path)  # CheckpointError / UnsafeCheckpointError name the file
    if (
        isinstance(obj, Mapping)
        and "state_dict" in obj
        and ("loops" in obj or "global_step" in obj)
    ):
        return int(obj.get("global_step", 0))
    if _looks_like_weights(obj):
        raise TrainingCheckpointError(
            f"ckpt_path={path}: this file holds generator weights only, not a training "
            "checkpoint (ckpt_path and resume restore the whole training state: step, "
            "optimisers, EMA). To start training from these weights, use "
            f"model.pretrained_generator={path} instead."
        )
    keys = sorted(map(str, obj))[:8] if isinstance(obj, Mapping) else type(obj).__name__
    raise TrainingCheckpointError(
        f"ckpt_path={path}: not a training checkpoint of this project (found {keys}); "
        "pass a checkpoints/*.ckpt file written by esrgan-train."
    )

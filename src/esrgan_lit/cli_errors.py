"""One clear line, not a stack trace, for user errors in the Hydra entry points.

A user error is one the project raises on purpose to say what is wrong with an input: its own
error classes, configuration errors, and ``ValueError``/``KeyError``/``OSError`` raised by a check
in ``esrgan_lit`` code, plus disk-full and permission errors from anywhere. Everything else is a
bug and keeps its stack; ``HYDRA_FULL_ERROR=1`` shows the stack for user errors too.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from omegaconf.errors import MissingMandatoryValue

_PACKAGE = str(Path(__file__).resolve().parent)
# errno values that describe the user's disk or paths, never a bug in the code
_ENV_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}
_USER_CLASSES = (
    "esrgan_lit.weights.errors.CheckpointError",
    "esrgan_lit.config.MissingConfigValueError",
    "esrgan_lit.run_dir.RunDirError",
    "esrgan_lit.run_dir.TrainingCheckpointError",
    "esrgan_lit.data.io.ImageReadError",
    "esrgan_lit.data.download.DownloadError",
    "esrgan_lit.data.errors.DataNotFoundError",
    "esrgan_lit.metrics.errors.MetricUnavailableError",
    "esrgan_lit.losses.vgg.PerceptualWeightsUnavailableError",
    "esrgan_lit.lit.base.NonFiniteStepsError",
    "omegaconf.errors.OmegaConfBaseException",
)


def _is_instance(exc: BaseException, qualname: str) -> bool:
    module, _, name = qualname.rpartition(".")
    cls = getattr(sys.modules.get(module), name, None)  # only classes already imported matter
    return isinstance(cls, type) and isinstance(exc, cls)


def _raised_in_package(exc: BaseException) -> bool:
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last = tb
        tb = tb.tb_next
    return last is not None and last.tb_frame.f_code.co_filename.startswith(_PACKAGE)


def is_user_error(exc: BaseException) -> bool:
    if any(_is_instance(exc, q) for q in _USER_CLASSES):
        return True
    if isinstance(exc, OSError) and exc.errno in _ENV_ERRNOS:
        return True
    return isinstance(exc, ValueError | KeyError | OSError) and _raised_in_package(exc)


def user_error_in(exc: BaseException) -> BaseException | None:
    """``exc`` or the cause it wraps (Hydra's InstantiationException) when that is a user error."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if is_user_error(cur):
            return cur
        cur = cur.__cause__  # explicit `raise ... from` only: a bug while handling is a bug
    return None


def message(exc: BaseException) -> str:
    key = getattr(exc, "full_key", None)
    if isinstance(exc, MissingMandatoryValue) and key:
        return f"{key} is required: pass {key}=VALUE on the command line"
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    return text.strip() or type(exc).__name__


@contextlib.contextmanager
def user_errors(prog: str) -> Iterator[None]:
    """Turn a user error raised in the block into ``error: ...`` on stderr and exit status 2."""
    try:
        yield
    except Exception as exc:
        found = user_error_in(exc)
        if found is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"{prog}: error: {message(found)}", file=sys.stderr)
        print("(set HYDRA_FULL_ERROR=1 for the stack trace)", file=sys.stderr)
        raise SystemExit(2) from None

"""Console hygiene for our entry points: drop third-party advertising, keep every real message.

Lightning (>= 2.5) logs "💡 Tip: ... try installing litlogger / litmodels" at INFO on every
``Trainer`` it builds. Those lines are adverts, not diagnostics, and they bury our own output in
``make demo``, the notebooks and the CLI. A :class:`logging.Filter` on Lightning's rank-zero
logger drops exactly those records; warnings and all other info lines still get through.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from typing import Any

# The loggers Lightning's rank_zero_info/warn write to (fabric and pytorch each set their own).
LIGHTNING_RANK_ZERO_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
)
ADVERT_PREFIXES = ("💡 Tip:",)
# Lightning's own use of a torch API that torch deprecated: printed on every fit, nothing a user
# of ours can act on (Lightning changes the call, not them).
LIGHTNING_INTERNAL_WARNINGS = (r"`isinstance\(treespec, LeafSpec\)` is deprecated",)


class DropAdverts(logging.Filter):
    """Rejects records whose message starts with one of ``ADVERT_PREFIXES``."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a malformed record is not ours to judge: let logging report it
            return True
        return not text.lstrip().startswith(ADVERT_PREFIXES)


_FILTER = DropAdverts()


def quiet_third_party() -> None:
    """Install the advert filter once (idempotent: a filter object is only added once) and
    ignore Lightning-internal deprecation warnings."""
    for name in LIGHTNING_RANK_ZERO_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    for pattern in LIGHTNING_INTERNAL_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)


def drop_wandb_anonymous(loggers: list[Any]) -> None:
    """Lightning's ``WandbLogger`` always hands ``anonymous=None`` to ``wandb.init``, and wandb
    (>= 0.19) warns "The anonymous setting has no effect" for any value but unset. Leaving the
    key out is what wandb asks for; ``None`` never meant anything."""
    for lg in loggers:
        init = getattr(lg, "_wandb_init", None)
        if isinstance(init, dict) and "anonymous" in init and init["anonymous"] is None:
            del init["anonymous"]


@contextlib.contextmanager
def progress_bar(enabled: bool = True) -> Iterator[Any]:
    """A rich bar counting items (done/total, elapsed, remaining), or ``None`` when disabled."""
    if not enabled:
        yield None
        return
    # rich is imported here: quiet_third_party runs on every import of our entry points
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns) as progress:
        yield progress

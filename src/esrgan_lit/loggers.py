"""Logger adjustments for resumed runs.

Lightning's CSV writer deletes ``metrics.csv`` when it finds one, so ``resume=latest`` used to
leave only the steps after the resume. A resumed run appends to the file instead: one
``csv/metrics.csv`` holds every row the run ever logged (rows logged between the last checkpoint
and a crash appear twice, with the same ``step``; the later ones are the resumed run's).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.utilities import rank_zero_only


class AppendingExperimentWriter(ExperimentWriter):
    """Keeps an existing ``metrics.csv`` (and its columns) and appends new rows to it."""

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as f:
                self.metrics_keys = list(next(csv.reader(f), []))


def keep_csv_history(loggers: Iterable[Any]) -> None:
    """Make every CSV logger append to its run's ``metrics.csv`` (call before anything is logged)."""
    if rank_zero_only.rank != 0:
        return
    for lg in loggers:
        if isinstance(lg, CSVLogger) and getattr(lg, "_experiment", None) is None:
            lg._fs.makedirs(lg.root_dir, exist_ok=True)
            lg._experiment = AppendingExperimentWriter(log_dir=lg.log_dir)

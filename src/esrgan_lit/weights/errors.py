"""Errors raised while reading or writing generator checkpoints."""

from __future__ import annotations


class CheckpointError(ValueError):
    """A checkpoint cannot be used; the message names the file, the key and what was expected."""


class UnsafeCheckpointError(CheckpointError):
    """The file's pickle references code outside the tensor allow-list; nothing was executed."""

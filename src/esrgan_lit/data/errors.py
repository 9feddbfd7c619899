"""The one "dataset not found" error and the one text that says how to get the data.

Raised where a configured dataset path is checked (``data.sources``, ``data.lmdb_io``) and by the
data module, which appends :data:`HOW_TO_GET_DATA` naming the config field to fix. Entry points
print it as a user error (``esrgan_lit.cli_errors``); nothing guesses from message text.
"""

from __future__ import annotations

HOW_TO_GET_DATA = (
    "To get the data: set data.download=true to fetch it from the official sites, point "
    "data.{field} at your own copy (or paths.data_dir=/path, ESRGAN_LIT_DATA_DIR=/path for every "
    "set), or use the built-in photos with data=sample."
)


class DataNotFoundError(FileNotFoundError):
    """A configured dataset path is missing or holds no images."""


def how_to_get_data(field: str) -> str:
    """:data:`HOW_TO_GET_DATA` for the config ``field`` (e.g. ``train_sets.div2k.hr``)."""
    return HOW_TO_GET_DATA.format(field=field)

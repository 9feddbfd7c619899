"""The one "dataset not found" error.

Raised where a configured dataset path is checked (``data.sources``, ``data.lmdb_io``) and by the
data module, which appends the one help text (:func:`esrgan_lit.data.hints.missing_data_hint`,
naming an override that works when pasted). Entry points print it as a user error
(``esrgan_lit.cli_errors``); nothing guesses from message text.
"""

from __future__ import annotations


class DataNotFoundError(FileNotFoundError):
    """A configured dataset path is missing or holds no images."""

"""One progress-bar style: rich, as in evaluation (``evaluate``/``tradeoff``) and downloads."""

from __future__ import annotations

import importlib.util
import sys

from lightning.pytorch.callbacks import RichProgressBar


def _jupyter_without_widgets() -> bool:
    """Rich redraws in a notebook only through ipywidgets; without them it warns on each draw."""
    ipython = sys.modules.get("IPython")  # a notebook kernel has imported it; we never do
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    in_notebook = shell is not None and type(shell).__name__ == "ZMQInteractiveShell"
    return in_notebook and importlib.util.find_spec("ipywidgets") is None


def progress_bar(refresh_rate: int = 10, leave: bool = False) -> RichProgressBar:
    """Lightning's ``RichProgressBar``. Where it cannot redraw in place (a log file, a captured
    test, a notebook without ipywidgets) rich prints the final state once instead of every step."""
    console_kwargs = {"force_jupyter": False} if _jupyter_without_widgets() else {}
    return RichProgressBar(refresh_rate=refresh_rate, leave=leave, console_kwargs=console_kwargs)

"""Recognise a TorchScript archive (``esrgan-export --format torchscript``) given where generator
weights are expected, so the message says what it is and what to pass instead."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path


def is_torchscript(path: str | os.PathLike[str]) -> bool:
    """A zip whose members include ``*/constants.pkl`` and ``*/code/``: TorchScript, not weights."""
    try:
        if not Path(path).is_file() or not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (OSError, zipfile.BadZipFile):
        return False
    return any(n.endswith("/constants.pkl") for n in names) and any("/code/" in n for n in names)


def torchscript_hint(path: str | os.PathLike[str]) -> str | None:
    """The message for a TorchScript file passed as a model, or None when it is not one."""
    if not is_torchscript(path):
        return None
    return (
        f"{path} is a TorchScript export (esrgan-export --format torchscript), a compiled program "
        "for deployment, not generator weights: pass the checkpoint it was exported from (e.g. "
        "the run's generator.safetensors, or a .pth/.ckpt), or run the export itself with "
        "torch.jit.load."
    )

"""The built-in sample split (``data=sample``): natural photos bundled with scikit-image.

No download: only photos shipped inside the scikit-image wheel are used (several others in
``skimage.data`` are fetched from the network on first use and are avoided). The split is fixed
by name, so it is the same everywhere. The photos are written once as PNG folders
``ROOT/train`` and ``ROOT/val``; the build happens in a temporary folder renamed into place, so an
interrupted or concurrent build never leaves a half-written split, and a finished one is reused.

    python -m esrgan_lit.data.sample [ROOT]
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

# (name, skimage.data loader). All RGB photos; sizes (HxW) in the comments.
TRAIN_PHOTOS = (
    "astronaut",  # 512x512
    "chelsea",  # 300x451
    "hubble_deep_field",  # 872x1000
    "immunohistochemistry",  # 512x512
    "motorcycle",  # 500x741 (left view of stereo_motorcycle)
)
VAL_PHOTOS = (
    "coffee",  # 400x600
    "rocket",  # 427x640
)
MARKER = ".complete.json"
VERSION = 1


def _loaders() -> dict[str, Callable[[], np.ndarray]]:
    try:
        import skimage.data as skd
    except ImportError as err:
        raise ImportError(
            "data=sample needs scikit-image (it ships the sample photos): "
            "pip install 'esrgan-lit[sample]'"
        ) from err
    return {
        "astronaut": skd.astronaut,
        "chelsea": skd.chelsea,
        "hubble_deep_field": skd.hubble_deep_field,
        "immunohistochemistry": skd.immunohistochemistry,
        "motorcycle": lambda: skd.stereo_motorcycle()[0],
        "coffee": skd.coffee,
        "rocket": skd.rocket,
    }


def _manifest() -> dict[str, object]:
    return {"version": VERSION, "train": list(TRAIN_PHOTOS), "val": list(VAL_PHOTOS)}


def is_built(root: str | os.PathLike[str]) -> bool:
    marker = Path(root) / MARKER
    try:
        return json.loads(marker.read_text()) == _manifest()
    except (OSError, ValueError):
        return False


def _write_split(dest: Path) -> None:
    loaders = _loaders()
    for split, names in (("train", TRAIN_PHOTOS), ("val", VAL_PHOTOS)):
        (dest / split).mkdir(parents=True)
        for name in names:
            img = np.asarray(loaders[name]())
            if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
                raise RuntimeError(f"sample photo {name!r}: expected RGB uint8, got {img.shape}")
            Image.fromarray(img).save(dest / split / f"{name}.png", compress_level=1)
    (dest / MARKER).write_text(json.dumps(_manifest()))


def build_sample(root: str | os.PathLike[str]) -> Path:
    """Make sure ``root/train`` and ``root/val`` hold the sample split; return ``root``."""
    root = Path(os.path.expanduser(str(root)))
    if is_built(root):
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".tmp", dir=root.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; the split is shared data
    try:
        _write_split(tmp)
        if root.exists() and not is_built(root):
            log.warning("replacing incomplete or outdated sample split at %s", root)
            shutil.rmtree(root, ignore_errors=True)
        try:
            os.replace(tmp, root)
        except OSError:
            if not is_built(root):  # someone else won the race only if their split is complete
                raise
        log.info("built the sample split in %s", root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = build_sample(
        args[0] if args else os.path.join(os.environ.get("ESRGAN_LIT_DATA_DIR", "data"), "sample")
    )
    print(root)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

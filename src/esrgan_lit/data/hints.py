"""What to type when a configured data set is not on disk.

Every hint names an override that works when pasted after ``python -m esrgan_lit.train``: the
key it sets exists in the composed config (``root`` for benchmark-style specs, ``hr``/``lr``
for folder specs), ``data.download=true`` is offered only for paths inside the download folder
(where the archives land), and a missing LR folder is answered with ``lr=null`` (LR made from
the HR images) rather than with a download that would not create it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def _inside(path: str, root: str | None) -> bool:
    if not root:
        return False
    try:
        Path(os.path.abspath(os.path.expanduser(path))).relative_to(
            os.path.abspath(os.path.expanduser(root))
        )
    except ValueError:
        return False
    return True


def missing_data_hint(
    field: str,
    name: str,
    spec: Any,
    *,
    lr_missing: bool,
    path: str,
    data_dir: str | None,
    downloads: Any = None,
) -> str:
    """One sentence of fixes for ``data.<field>.<name>`` whose HR (or LR) folder is absent."""
    key = f"data.{field}.{name}"
    fixes: list[str] = []
    if lr_missing:
        fixes.append(
            f"make the LR images from the HR ones with MATLAB bicubic ({key}.lr=null), "
            f"or point {key}.lr=PATH at your LR folder"
        )
    else:
        has_root = isinstance(spec, dict) and spec.get("root") and not spec.get("hr")
        fixes.append(f"point {key}.{'root' if has_root else 'hr'}=PATH at your copy")
    if downloads and _inside(path, data_dir):
        fixes.append("fetch it from the official sites with data.download=true")
    if field == "val_sets":
        fixes.append(f"leave the set out with '~{key}'")
    else:
        fixes.append("use the built-in photos with data=sample")
    return "To fix: " + "; or ".join(fixes) + "."

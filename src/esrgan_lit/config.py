"""Where the Hydra configs live, for a source checkout and for a non-editable install alike."""

from __future__ import annotations

from pathlib import Path


def config_dir() -> Path:
    """Absolute path of the ``conf/`` tree.

    A wheel carries the configs inside the package (``esrgan_lit/conf``); a source checkout keeps
    them at the repository root. Entry points pass this to ``hydra.main`` so the configs resolve
    from any working directory.
    """
    here = Path(__file__).resolve().parent
    for candidate in (here / "conf", here.parents[1] / "conf"):
        if (candidate / "train.yaml").is_file() or (candidate / "evaluate.yaml").is_file():
            return candidate
    raise FileNotFoundError(
        f"esrgan-lit configs not found: looked in {here / 'conf'} and {here.parents[1] / 'conf'}"
    )

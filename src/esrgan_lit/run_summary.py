"""The last lines a command prints: where its files went and, for training, the final scores.

A newcomer should not have to know the run-directory layout to find ``generator.safetensors``;
the summary also gives the one command that uses it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

PREFIX = "[esrgan-lit]"


def _rank_zero() -> bool:
    return os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) in ("0", "")


def _scores(metrics: dict[str, Any]) -> list[str]:
    lines = []
    for name, values in metrics.items():
        if not isinstance(values, dict):
            continue
        parts = []
        for key, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                unit = " dB" if key.startswith("psnr") else ""
                parts.append(f"{key} {value:.4g}{unit}")
        if parts:
            lines.append(f"  {name}: {', '.join(parts)}")
    return lines


def train_summary(output_dir: str | os.PathLike[str]) -> str:
    """Where the generator and metrics of a finished run are, the final scores, and the command
    that upscales a photo with it."""
    out = Path(output_dir)
    gen, metrics_file = out / "generator.safetensors", out / "metrics.json"
    lines = [f"{PREFIX} run directory: {out}"]
    if gen.is_file():
        lines.append(f"  generator: {gen}")
        lines.append(f"  upscale a photo: esrgan-upscale PHOTO.jpg -o upscaled/ --model {gen}")
    else:
        lines.append(
            "  generator: not written (training did not finish, or the export callback is off)"
        )
    if metrics_file.is_file():
        lines.append(f"  metrics:   {metrics_file}")
        try:
            metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            metrics = {}
        lines += _scores(metrics) if isinstance(metrics, dict) else []
    else:
        lines.append(
            "  metrics:   none (no validation set ran; add one with "
            "'+data.val_sets.NAME={hr: PATH}')"
        )
    return "\n".join(lines)


def print_train_summary(cfg: Any) -> None:
    """Print :func:`train_summary` for ``cfg.paths.output_dir`` (rank zero only)."""
    if _rank_zero():
        print(train_summary(cfg.paths.output_dir), flush=True)


def files_summary(output_dir: str | os.PathLike[str], names: Iterable[str] | None = None) -> str:
    """The files a command wrote into ``output_dir`` (``names``, else every file there), one
    per line with its size, then each sub-folder with its file count; Hydra's own ``.hydra``
    folder and log files are left out."""
    out = Path(output_dir)
    if names is None:
        paths = sorted(p for p in out.iterdir() if p.is_file() and p.suffix != ".log")
        folders = sorted(p for p in out.iterdir() if p.is_dir() and p.name != ".hydra")
    else:
        paths, folders = [out / n for n in names if (out / n).is_file()], []
    lines = [f"{PREFIX} wrote into {out}:"]
    lines += [f"  {p}  ({p.stat().st_size:,} bytes)" for p in paths]
    for d in folders:
        count = sum(1 for f in d.rglob("*") if f.is_file())
        lines.append(f"  {d}/  ({count} files)")
    return "\n".join(lines)


def print_files_summary(output_dir: str | os.PathLike[str]) -> None:
    """Print :func:`files_summary` (rank zero only)."""
    if _rank_zero():
        print(files_summary(output_dir), flush=True)

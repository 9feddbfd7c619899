"""Tables and files from evaluation results: JSON, paper-style markdown, per-image CSV."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from esrgan_lit.evaluation.runner import MethodResult
from esrgan_lit.evaluation.suite import METRIC_KEYS
from esrgan_lit.utils.atomic import atomic_write_path

LABELS = {
    "psnr_y": ("PSNR-Y (dB) ↑", "{:.2f}"),
    "ssim_y": ("SSIM-Y ↑", "{:.4f}"),
    "rmse": ("RMSE ↓", "{:.2f}"),
    "niqe": ("NIQE ↓", "{:.3f}"),
    "lpips": ("LPIPS ↓", "{:.4f}"),
    "ma": ("Ma ↑", "{:.2f}"),
    "pi": ("PI ↓", "{:.3f}"),
}


def write_text(path: Path, text: str) -> None:
    with atomic_write_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(_finite(obj), indent=2) + "\n")


def _finite(obj: Any) -> Any:
    """NaN/inf are not JSON: report them as null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def fmt(key: str, value: float | None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return LABELS[key][1].format(value) if key in LABELS else f"{value:.4g}"


def notes_lines(results: Iterable[MethodResult]) -> list[str]:
    """One line per distinct (metric, reason) of null values, naming where it happened."""
    seen: dict[tuple[str, str], list[str]] = {}
    for res in results:
        for set_name, notes in res.notes.items():
            for key, reason in notes.items():
                if reason.startswith("not requested"):
                    continue
                seen.setdefault((key, reason), []).append(f"{res.method}/{set_name}")
    return [f"{key}: null — {reason} ({', '.join(where)})" for (key, reason), where in seen.items()]


def markdown_table(
    results: Sequence[MethodResult], keys: Sequence[str], *, title: str, scale: int
) -> str:
    """Paper layout: a row per (set, metric), a column per method."""
    set_names = list(dict.fromkeys(name for res in results for name in res.sets))
    head = "| Set | Metric | " + " | ".join(res.method for res in results) + " |"
    lines = [f"# {title} (x{scale})", "", head, "|" + "---|" * (len(results) + 2)]
    for name in set_names:
        n = next(res.sets[name]["num_images"] for res in results if name in res.sets)
        for i, key in enumerate(keys):
            label = f"{name} ({n})" if i == 0 else ""
            cells = [fmt(key, res.sets.get(name, {}).get(key)) for res in results]
            lines.append(f"| {label} | {LABELS[key][0]} | " + " | ".join(cells) + " |")
    notes = notes_lines(results)
    if notes:
        lines += ["", "Notes:", *[f"- {line}" for line in notes]]
    return "\n".join(lines) + "\n"


def per_image_csv(rows: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> str:
    return rows_csv(rows, ["method", "set", "image", *keys])


def rows_csv(rows: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> str:
    """CSV text with the given columns; ``None`` becomes an empty cell."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in fields})
    return buf.getvalue()


def write_evaluation(
    out_dir: Path,
    main: MethodResult,
    *,
    baseline: MethodResult | None,
    keys: Sequence[str],
    scale: int,
    skipped_sets: Mapping[str, str] | None = None,
    extra: Sequence[MethodResult] = (),
) -> dict[str, Path]:
    """``metrics.json`` (main method only, exact per-set keys), ``notes.json`` (why values are
    null: method -> set -> metric -> reason; ``_skipped_sets``), ``metrics.md``
    (baseline row first), ``per_image.csv`` (every method), ``bicubic.json`` when a baseline ran.
    ``extra`` results (the self-ensemble "+" row) follow the main one in the table and CSV and
    get their own ``metrics_tta.json``."""
    results = [baseline, main] if baseline is not None else [main]
    results += list(extra)
    paths = {
        "metrics": out_dir / "metrics.json",
        "notes": out_dir / "notes.json",
        "markdown": out_dir / "metrics.md",
        "per_image": out_dir / "per_image.csv",
    }
    write_json(paths["metrics"], main.sets)
    notes: dict[str, Any] = {res.method: res.notes for res in results}
    if skipped_sets:
        notes["_skipped_sets"] = dict(skipped_sets)
    write_json(paths["notes"], notes)
    table_keys = [k for k in METRIC_KEYS if k in keys]
    write_text(
        paths["markdown"], markdown_table(results, table_keys, title="Evaluation", scale=scale)
    )
    rows = [row for res in results for row in res.per_image]
    write_text(paths["per_image"], per_image_csv(rows, table_keys))
    for res in extra:
        key = "tta" if len(extra) == 1 else f"tta_{res.method}"
        paths[key] = out_dir / (
            "metrics_tta.json" if len(extra) == 1 else f"metrics_{res.method}.json"
        )
        write_json(paths[key], res.sets)
    if baseline is not None and baseline is not main:
        paths["bicubic"] = out_dir / "bicubic.json"
        write_json(paths["bicubic"], baseline.sets)
    return paths

"""Set5 PSNR-Y against wall time from a training run's CSV log (issue 15's GPU run).

    python benchmarks/gpu/psnr_curve.py RUN_DIR OUT.json   (also writes OUT.md)

Reads RUN_DIR/csv_part1/metrics.csv (the first run's log, saved by run_issue15.sh: the CSV
logger of a resumed run starts its file afresh) and RUN_DIR/csv/metrics.csv: the rows with
``time/elapsed_s`` (benchmarks/gpu/issue15_wallclock.py) and every ``val/Set5/...psnr...`` column.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path


def curve(files: list[Path]) -> list[dict[str, float]]:
    rows: list[dict[str, str]] = []
    for metrics_csv in files:
        with metrics_csv.open(newline="") as f:
            rows += list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{files}: no rows")
    cols = sorted({c for r in rows for c in r if c.startswith("val/Set5/") and "psnr" in c.lower()})
    if not cols:
        raise ValueError(f"{files}: no val/Set5/*psnr* column in {sorted(rows[0])}")
    by_step: dict[int, dict[str, float]] = {}
    for r in rows:
        step = int(float(r.get("step") or -1))
        for k in ["time/elapsed_s", *cols]:
            if r.get(k):
                by_step.setdefault(step, {"step": step})[k] = float(r[k])
    return [v for _, v in sorted(by_step.items()) if "time/elapsed_s" in v]


def main(argv: list[str]) -> None:
    run_dir, out = Path(argv[0]), Path(argv[1])
    files = [run_dir / d / "metrics.csv" for d in ("csv_part1", "csv")]
    points = curve([f for f in files if f.is_file()])
    out.write_text(json.dumps(points, indent=1) + "\n")
    cols = [k for k in points[0] if k not in ("step", "time/elapsed_s")] if points else []
    lines = ["| step | wall s | " + " | ".join(cols) + " |", "|---:|---:|" + "---:|" * len(cols)]
    for p in points:
        vals = " | ".join(f"{p.get(c, float('nan')):.3f}" for c in cols)
        lines.append(f"| {p['step']} | {p['time/elapsed_s']:.0f} | {vals} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:])

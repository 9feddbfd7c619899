"""Perception-distortion trade-off: choosing the perceptual axis, the best alpha, the plot.

PIRM-SR 2018 ranks methods by Perceptual Index inside three RMSE regions (<= 11.5, <= 12.5,
<= 16); lower PI is better. Without the Ma forests PI is null and NIQE (then LPIPS) stands in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from esrgan_lit.utils.atomic import atomic_write_path

PIRM_REGIONS: tuple[tuple[str, float], ...] = (
    ("Region 1", 11.5),
    ("Region 2", 12.5),
    ("Region 3", 16.0),
)
PERCEPTUAL_PREFERENCE: tuple[str, ...] = ("pi", "niqe", "lpips")
DISTORTION_KEYS: tuple[str, ...] = ("psnr_y", "rmse")
NO_PERCEPTUAL_TITLE = "No perceptual score (PI, NIQE, LPIPS) finite for every α: distortion only"


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def choose_perceptual(rows: Sequence[Mapping[str, Any]], preferred: str = "auto") -> str | None:
    """The first of PI, NIQE, LPIPS finite in every row (or ``preferred`` if it is)."""
    order = PERCEPTUAL_PREFERENCE if preferred == "auto" else (preferred,)
    for key in order:
        if rows and all(_finite(row.get(key)) for row in rows):
            return key
    return None


def pirm_region(rmse: float | None) -> str | None:
    if rmse is None:
        return None
    for name, bound in PIRM_REGIONS:
        if rmse <= bound:
            return name
    return None


def best_under_budget(
    rows: Sequence[Mapping[str, Any]], score_key: str | None, budget: float | None
) -> dict[str, Any] | None:
    """Lowest perceptual score among rows with RMSE <= budget (all rows if no budget)."""
    if score_key is None:
        return None
    ok = [
        r
        for r in rows
        if r.get(score_key) is not None
        and r.get("rmse") is not None
        and (budget is None or r["rmse"] <= budget)
    ]
    if not ok:
        return None
    best = min(ok, key=lambda r: (r[score_key], r["rmse"]))
    return {"alpha": best["alpha"], score_key: best[score_key], "rmse": best["rmse"]}


def plot_tradeoff(
    path: Path,
    rows_by_set: Mapping[str, Sequence[Mapping[str, Any]]],
    score_key: str,
    *,
    budget: float | None = None,
    best: Mapping[str, Mapping[str, Any] | None] | None = None,
    references: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
) -> Path:
    """PNG: perceptual score (y) vs RMSE (x), one line per set, points labelled with alpha.

    ``references`` maps a label (e.g. "Bicubic") to per-set rows drawn as single markers.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    xs: list[float] = []
    for set_name, rows in rows_by_set.items():
        pts = [(r["rmse"], r[score_key], r["alpha"]) for r in rows if r.get(score_key) is not None]
        if not pts:
            continue
        (line,) = ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=set_name)
        for x, y, alpha in pts:
            ax.annotate(
                f"α={alpha:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8
            )
            xs.append(x)
        chosen = (best or {}).get(set_name)
        if chosen is not None:
            ax.plot(chosen["rmse"], chosen[score_key], "*", ms=16, color=line.get_color(), zorder=5)
    for label, per_set in (references or {}).items():
        for set_name, row in per_set.items():
            if row.get(score_key) is not None and row.get("rmse") is not None:
                ax.plot(row["rmse"], row[score_key], "kx", ms=8)
                ax.annotate(
                    f"{label} ({set_name})",
                    (row["rmse"], row[score_key]),
                    fontsize=8,
                    textcoords="offset points",
                    xytext=(4, -10),
                )
                xs.append(row["rmse"])
    lo = 0.0
    shades = ("#d8f0d8", "#e8f4e0", "#f4f4e0")
    for (name, bound), shade in zip(PIRM_REGIONS, shades):
        ax.axvspan(lo, bound, color=shade, alpha=0.6, zorder=0)
        ax.axvline(bound, color="grey", lw=0.8, ls=":")
        ax.text(
            bound,
            0.02,
            f"{name}: RMSE≤{bound:g} ",
            rotation=90,
            va="bottom",
            ha="right",
            fontsize=7,
            color="dimgrey",
            transform=ax.get_xaxis_transform(),
        )
        lo = bound
    if budget is not None:
        ax.axvline(budget, color="red", lw=1.0, ls="--", label=f"RMSE budget {budget:g}")
        xs.append(budget)
    if xs:
        ax.set_xlim(
            min(min(xs), PIRM_REGIONS[0][1]) * 0.95, max(max(xs), PIRM_REGIONS[-1][1]) * 1.05
        )
    ax.set_xlabel("RMSE (Y, 0-255) ↓")
    ax.set_ylabel(f"{score_key.upper()} ↓")
    ax.set_title("Perception-distortion trade-off (network interpolation)")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    with atomic_write_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def plot_distortion(
    path: Path,
    rows_by_set: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    budget: float | None = None,
) -> tuple[Path, list[str]]:
    """PNG for when no perceptual axis exists: PSNR-Y and RMSE (one panel each) against alpha.

    The title says that no perceptual score was available, so the figure is never mistaken for
    the perception-distortion plot. Returns the path and the metric keys drawn (``psnr_y`` and
    ``rmse`` where measured; an empty panel says so when neither was).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    all_rows = [r for rows in rows_by_set.values() for r in rows]
    keys = [k for k in DISTORTION_KEYS if any(_finite(r.get(k)) for r in all_rows)]
    fig, axes = plt.subplots(1, max(len(keys), 1), figsize=(5 * max(len(keys), 1), 4), dpi=120)
    axes = list(axes) if len(keys) > 1 else [axes]
    for ax, key in zip(axes, keys):
        for set_name, rows in rows_by_set.items():
            pts = [(r["alpha"], r[key]) for r in rows if _finite(r.get(key))]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=set_name)
        if key == "rmse" and budget is not None:
            ax.axhline(budget, color="red", lw=1.0, ls="--", label=f"RMSE budget {budget:g}")
        ax.set_xlabel("α (0 = PSNR model, 1 = GAN model)")
        ax.set_ylabel("PSNR-Y (dB) ↑" if key == "psnr_y" else "RMSE (Y, 0-255) ↓")
        ax.legend(loc="best", fontsize=8)
    if not keys:
        axes[0].text(0.5, 0.5, "neither PSNR-Y nor RMSE was measured", ha="center", va="center")
        axes[0].set_axis_off()
    fig.suptitle(NO_PERCEPTUAL_TITLE, fontsize=10)
    fig.tight_layout()
    with atomic_write_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path, keys

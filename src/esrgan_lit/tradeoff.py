"""Perception-distortion trade-off by network interpolation (ESRGAN Sec. 3.4, PIRM-SR 2018).

``python -m esrgan_lit.tradeoff psnr=A gan=B 'alphas=[0,0.2,0.4,0.6,0.8,1]' 'test_dirs=[...]'``
scores ``(1 - alpha) * A + alpha * B`` for every alpha with the evaluation code of
``esrgan_lit.evaluate`` and writes ``tradeoff.{md,json,csv}``, ``tradeoff.png`` (perceptual score
vs RMSE, PIRM regions; PSNR-Y and RMSE vs alpha when no perceptual score is finite for every
alpha) and ``per_image.csv``; it names the best alpha under ``rmse_budget``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from esrgan_lit.config import config_dir
from esrgan_lit.evaluation.cli_config import (
    device_of,
    eval_sets,
    inference_options,
    metric_suite,
    output_dir,
    progress_bar,
)
from esrgan_lit.evaluation.report import (
    LABELS,
    fmt,
    notes_lines,
    per_image_csv,
    rows_csv,
    write_json,
    write_text,
)
from esrgan_lit.evaluation.runner import BICUBIC, MethodResult, evaluate_method
from esrgan_lit.evaluation.suite import METRIC_KEYS
from esrgan_lit.evaluation.tradeoff_report import (
    best_under_budget,
    choose_perceptual,
    pirm_region,
    plot_distortion,
    plot_tradeoff,
)
from esrgan_lit.run_summary import print_files_summary

_SHORT = {"psnr_y": "PSNR-Y", "rmse": "RMSE"}
_NO_AXIS = "none finite for every alpha (tradeoff.png plots PSNR-Y and RMSE against alpha)"


def _alphas(values: Any) -> list[float]:
    alphas = [float(a) for a in values or []]
    if not alphas:
        raise ValueError("alphas is empty; e.g. 'alphas=[0,0.2,0.4,0.6,0.8,1]'")
    bad = [a for a in alphas if not math.isfinite(a) or not 0.0 <= a <= 1.0]
    if bad:
        raise ValueError(f"alphas must lie in [0, 1]; got {bad}")
    return alphas


def _checkpoint(value: Any, field: str) -> Path:
    if value is None or str(value) in ("", "???"):
        raise ValueError(f"{field}= is required: a generator checkpoint path")
    path = Path(str(value)).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{field}={value}: no such checkpoint file")
    return path


def _markdown(
    rows: list[dict[str, Any]], score_key: str | None, best: dict, cfg: DictConfig
) -> str:
    keys = [k for k in METRIC_KEYS if k in cfg.metrics]
    head = "| Set | α | " + " | ".join(LABELS[k][0] for k in keys) + " | PIRM region |"
    lines = [
        f"# Perception-distortion trade-off (x{int(cfg.scale)})",
        "",
        f"Perceptual axis: {score_key or _NO_AXIS}; RMSE budget: {cfg.get('rmse_budget')}",
        "",
        head,
        "|" + "---|" * (len(keys) + 3),
    ]
    for r in rows:
        alpha = "bicubic" if r["alpha"] is None else f"{r['alpha']:g}"
        cells = " | ".join(fmt(k, r.get(k)) for k in keys)
        lines.append(f"| {r['set']} | {alpha} | {cells} | {pirm_region(r.get('rmse')) or '-'} |")
    lines.append("")
    for set_name, choice in best.items():
        if choice is None:
            lines.append(f"- {set_name}: no alpha within the RMSE budget")
        else:
            lines.append(
                f"- {set_name}: best alpha = {choice['alpha']:g} ({score_key} "
                f"{fmt(score_key, choice[score_key])}, RMSE {choice['rmse']:.2f})"
            )
    return "\n".join(lines) + "\n"


def _log_wandb(cfg: DictConfig, out: Path, plot: Path | None, rows: list, best: dict) -> None:
    """Optional: the plot, the table and the best alphas to W&B (``WANDB_MODE=offline`` works)."""
    try:
        import wandb
    except ImportError:
        print("[esrgan-lit] wandb=true but the wandb package is not installed; skipped")
        return
    mode = cfg.get("wandb_mode") or os.environ.get("WANDB_MODE") or "offline"
    run = wandb.init(
        project=str(cfg.get("wandb_project") or "esrgan-lit"),
        job_type="tradeoff",
        dir=str(out),
        mode=mode,
        config={"psnr": str(cfg.psnr), "gan": str(cfg.gan), "alphas": list(cfg.alphas)},
    )
    try:
        cols = ["set", "alpha", *[k for k in METRIC_KEYS if k in cfg.metrics]]
        table = wandb.Table(columns=cols, data=[[r.get(c) for c in cols] for r in rows])
        payload: dict[str, Any] = {"tradeoff/table": table}
        if plot is not None:
            payload["tradeoff/plot"] = wandb.Image(str(plot))
        run.log(payload)
        for set_name, choice in best.items():
            if choice is not None:
                run.summary[f"best_alpha/{set_name}"] = choice["alpha"]
    finally:
        run.finish()


def tradeoff(cfg: DictConfig) -> dict[str, Any]:
    """Run the sweep described by ``cfg``; returns the ``tradeoff.json`` content."""
    from esrgan_lit.weights import interpolate

    alphas = _alphas(cfg.alphas)
    psnr_path, gan_path = _checkpoint(cfg.get("psnr"), "psnr"), _checkpoint(cfg.get("gan"), "gan")
    budget = None if cfg.get("rmse_budget") is None else float(cfg.rmse_budget)
    device = device_of(cfg)
    out = output_dir(cfg)
    sets, skipped = eval_sets(cfg)
    # Blend from the files (not loaded modules) so that any mismatch names them, not <RRDBNet>.
    interpolate(psnr_path, gan_path, 0.0)  # validate both before any evaluation work
    suite = metric_suite(cfg, device)
    scale = int(cfg.scale)
    results: list[MethodResult] = []
    rows: list[dict[str, Any]] = []
    bicubic: MethodResult | None = None
    with progress_bar(bool(cfg.get("progress", True))) as progress:
        for alpha in alphas:
            model = interpolate(psnr_path, gan_path, alpha)
            res = evaluate_method(
                model,
                sets,
                suite,
                method=f"alpha={alpha:g}",
                scale=scale,
                device=device,
                progress=progress,
                inference=inference_options(cfg),
            )
            results.append(res)
            rows += [{"set": s, "alpha": alpha, **v} for s, v in res.sets.items()]
        if cfg.get("bicubic_row", False):
            bicubic = evaluate_method(
                BICUBIC,
                sets,
                suite,
                method="Bicubic",
                scale=scale,
                device=device,
                progress=progress,
            )
    score_key = choose_perceptual(rows, str(cfg.get("perceptual_metric") or "auto"))
    by_set = {s.name: [r for r in rows if r["set"] == s.name] for s in sets}
    best = {name: best_under_budget(rs, score_key, budget) for name, rs in by_set.items()}
    notes = notes_lines(results + ([bicubic] if bicubic else []))
    plot_path = out / "tradeoff.png"
    if score_key is None:
        _, drawn = plot_distortion(plot_path, by_set, budget=budget)
        notes.append(
            "plot: no perceptual score (PI, NIQE, LPIPS) finite for every alpha; tradeoff.png "
            f"shows {' and '.join(_SHORT[k] for k in drawn) or 'no metric'} against alpha"
        )
    else:
        refs = {"Bicubic": bicubic.sets} if bicubic else None
        plot_path = plot_tradeoff(
            out / "tradeoff.png", by_set, score_key, budget=budget, best=best, references=refs
        )
    bic_rows = [
        {"set": s, "alpha": None, **v} for s, v in (bicubic.sets if bicubic else {}).items()
    ]
    for r in rows + bic_rows:
        r["pirm_region"] = pirm_region(r.get("rmse"))
    summary = {
        "psnr": str(psnr_path),
        "gan": str(gan_path),
        "alphas": alphas,
        "perceptual_metric": score_key,
        "rmse_budget": budget,
        "best": best,
        "rows": rows,
        "bicubic": bic_rows,
        "notes": notes,
        "skipped_sets": skipped,
    }
    write_json(out / "tradeoff.json", summary)
    keys = [
        "set",
        "alpha",
        *[k for k in METRIC_KEYS if k in suite.keys],
        "num_images",
        "pirm_region",
    ]
    write_text(out / "tradeoff.csv", rows_csv(rows + bic_rows, keys))
    write_text(out / "tradeoff.md", _markdown(rows + bic_rows, score_key, best, cfg))
    per_image = [row for res in results + ([bicubic] if bicubic else []) for row in res.per_image]
    write_text(
        out / "per_image.csv", per_image_csv(per_image, [k for k in METRIC_KEYS if k in suite.keys])
    )
    print((out / "tradeoff.md").read_text(encoding="utf-8"))
    for line in notes:
        print(f"[esrgan-lit] {line}")
    if cfg.get("wandb"):
        _log_wandb(cfg, out, plot_path, rows, best)
    return summary


@hydra.main(config_path=str(config_dir()), config_name="tradeoff", version_base="1.3")
def main(cfg: DictConfig) -> None:
    tradeoff(cfg)
    print_files_summary(output_dir(cfg))


if __name__ == "__main__":
    main()

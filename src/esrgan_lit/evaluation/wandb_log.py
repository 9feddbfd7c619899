"""``evaluate wandb=true``: the paper-style table, per-image scores and a few LR | bicubic | SR |
HR comparisons as one W&B run (``WANDB_MODE=offline`` works; the files on disk stay the record).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from esrgan_lit.evaluation.report import LABELS
from esrgan_lit.evaluation.runner import MethodResult, upscale
from esrgan_lit.evaluation.sets import EvalSet
from esrgan_lit.weights.wandb_ref import artifact_name, is_wandb_ref


def table_rows(results: Sequence[MethodResult], keys: Sequence[str]) -> tuple[list, list]:
    """(columns, rows): one row per method and set, as in ``metrics.md``."""
    columns = ["method", "set", *keys, "num_images"]
    rows = [
        [res.method, set_name, *[row.get(k) for k in keys], row.get("num_images")]
        for res in results
        for set_name, row in res.sets.items()
    ]
    return columns, rows


def _caption(scores: dict[str, Any], keys: Sequence[str]) -> str:
    parts = [
        f"{LABELS[k][0].split(' ')[0]} {LABELS[k][1].format(scores[k])}"
        for k in keys
        if k in LABELS and isinstance(scores.get(k), float)
    ]
    return "LR | bicubic | SR | HR — " + ", ".join(parts)


def comparisons(
    generator: Any,
    sets: Sequence[EvalSet],
    result: MethodResult,
    *,
    scale: int,
    device: torch.device,
    num_images: int,
    keys: Sequence[str],
    crop: int = 256,
) -> list[tuple[str, torch.Tensor, str]]:
    """(``set/image``, (3, s, 4s) panel, caption) for the first ``num_images`` images."""
    from esrgan_lit.callbacks.image_logger import make_panel

    scores = {(r["set"], r["image"]): r for r in result.per_image}
    samples = ((s.name, x) for s in sets for x in s.samples())
    out = []
    for set_name, sample in itertools.islice(samples, max(0, num_images)):
        lq, gt = sample["lq"].to(device), sample["gt"].to(device)
        sr = upscale(generator, lq, scale, grey=bool(sample["grey"])).clamp(0, 1)
        panel = make_panel(lq.float().cpu(), sr.cpu(), gt.float().cpu(), crop)
        key = f"{set_name}/{sample['name']}"
        out.append((key, panel, _caption(scores.get((set_name, sample["name"]), {}), keys)))
    return out


def log_evaluation(
    cfg: DictConfig,
    out: Path,
    results: Sequence[MethodResult],
    *,
    generator: Any,
    sets: Sequence[EvalSet],
    keys: Sequence[str],
    device: torch.device,
) -> None:
    """One W&B run (job type ``evaluate``): ``evaluation/table``, ``evaluation/per_image``, the
    comparison images, and the first method's values in the summary (``<set>/<metric>``)."""
    try:
        import wandb
    except ImportError:
        print("[esrgan-lit] wandb=true but the wandb package is not installed; skipped")
        return
    main = results[0]
    mode = cfg.get("wandb_mode") or os.environ.get("WANDB_MODE") or "offline"
    run = wandb.init(
        project=str(cfg.get("wandb_project") or "esrgan-lit"),
        job_type="evaluate",
        dir=str(out),
        mode=mode,
        name=main.method,
        config={
            "generator": str(cfg.generator),
            "scale": int(cfg.scale),
            "metrics": list(keys),
            "sets": [s.name for s in sets],
        },
    )
    try:
        if is_wandb_ref(str(cfg.generator)) and mode != "offline":
            run.use_artifact(artifact_name(str(cfg.generator)))  # lineage: evaluated model
        columns, rows = table_rows(results, keys)
        per_cols = ["method", "set", "image", *keys]
        per_rows = [[r.get(c) for c in per_cols] for res in results for r in res.per_image]
        payload: dict[str, Any] = {
            "evaluation/table": wandb.Table(columns=columns, data=rows),
            "evaluation/per_image": wandb.Table(columns=per_cols, data=per_rows),
        }
        num = int(cfg.get("wandb_images", 4) or 0)
        if num > 0:
            payload["evaluation/comparisons"] = [
                wandb.Image(panel.permute(1, 2, 0).numpy(), caption=f"{key}: {caption}")
                for key, panel, caption in comparisons(
                    generator,
                    sets,
                    main,
                    scale=int(cfg.scale),
                    device=device,
                    num_images=num,
                    keys=keys,
                )
            ]
        run.log(payload)
        for set_name, row in main.sets.items():
            run.summary.update(
                {f"{set_name}/{k}": row[k] for k in keys if isinstance(row.get(k), float)}
            )
    finally:
        run.finish()

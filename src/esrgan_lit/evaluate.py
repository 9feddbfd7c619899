"""Evaluation CLI: ``python -m esrgan_lit.evaluate generator=PATH|bicubic 'test_dirs=[DIR]'``.

Scores a generator on the papers' protocol (HR mod-cropped, LR by MATLAB bicubic rounded to
uint8, Y channel, crop border = scale) and writes ``metrics.json``, ``metrics.md`` (with a
bicubic row), ``per_image.csv`` and ``notes.json`` (why a value is null) into the run directory.
``tta=true`` adds the self-ensemble (8 flips/rotations averaged) as a "NAME+" row and
``metrics_tta.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from esrgan_lit.cli_errors import user_errors
from esrgan_lit.config import config_dir
from esrgan_lit.evaluation.cli_config import (
    device_of,
    eval_sets,
    inference_options,
    metric_suite,
    output_dir,
    progress_bar,
)
from esrgan_lit.evaluation.report import write_evaluation
from esrgan_lit.evaluation.runner import BICUBIC, evaluate_method


def load_method(generator: str, device: Any) -> tuple[Any, str]:
    """``bicubic`` or a checkpoint path -> (generator, label for the tables)."""
    if str(generator) == BICUBIC:
        return BICUBIC, "Bicubic"
    from esrgan_lit import hub
    from esrgan_lit.weights import load_generator
    from esrgan_lit.weights.wandb_ref import artifact_name, resolve_wandb_ref

    if (artifact := resolve_wandb_ref(str(generator))) is not None:  # wandb:E/P/NAME:ALIAS
        label = artifact_name(str(generator)).rsplit("/", 1)[-1].replace(":", "@")
        return load_generator(artifact, device=str(device)), label
    if hub.is_name(str(generator)):  # an official model by name: fetched once, verified
        return load_generator(str(generator), device=str(device)), hub.get(str(generator)).name
    path = Path(str(generator)).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"generator={generator}: no such checkpoint file (or use bicubic)")
    from esrgan_lit.utils.torchscript import torchscript_hint
    from esrgan_lit.weights.errors import CheckpointError

    hint = torchscript_hint(path)
    if hint:
        raise CheckpointError(f"generator={hint}")
    return load_generator(path, device=str(device)), checkpoint_label(path)


# File stems every run writes: a table of several runs would show one name for all of them.
GENERIC_STEMS = frozenset({"generator", "last", "model", "best", "ema", "net_g"})


def checkpoint_label(path: Path) -> str:
    """The table label of a checkpoint: its file stem, or for the generic names a run writes
    (``generator.safetensors``, ``checkpoints/last.ckpt``) the run directory's name, so
    ``outputs/demo/psnr/generator.safetensors`` is "psnr", not "generator"."""
    if path.stem not in GENERIC_STEMS:
        return path.stem
    run = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    return run.resolve().name or path.stem


def evaluate(cfg: DictConfig) -> dict[str, dict[str, Any]]:
    """Run the evaluation described by ``cfg``; returns the ``metrics.json`` content."""
    device = device_of(cfg)
    out = output_dir(cfg)
    sets, skipped = eval_sets(cfg)
    generator, label = load_method(cfg.generator, device)
    label = str(cfg.get("name") or label)
    suite = metric_suite(cfg, device)
    scale = int(cfg.scale)
    images = out / "images" if cfg.get("save_images") else None
    with progress_bar(bool(cfg.get("progress", True))) as progress:
        main = evaluate_method(
            generator,
            sets,
            suite,
            method=label,
            scale=scale,
            device=device,
            image_dir=images / label if images else None,
            progress=progress,
            inference=inference_options(cfg),
        )
        extra = []
        if cfg.get("tta") and generator != BICUBIC:  # the self-ensemble as its own "+" row
            extra.append(
                evaluate_method(
                    generator,
                    sets,
                    suite,
                    method=f"{label}+",
                    scale=scale,
                    device=device,
                    image_dir=images / f"{label}+" if images else None,
                    progress=progress,
                    inference={**inference_options(cfg), "tta": True},
                )
            )
        baseline = None
        if cfg.get("bicubic_row", True):
            if generator == BICUBIC:
                baseline = main
            else:
                baseline = evaluate_method(
                    BICUBIC,
                    sets,
                    suite,
                    method="Bicubic",
                    scale=scale,
                    device=device,
                    image_dir=images / "Bicubic" if images else None,
                    progress=progress,
                )
    paths = write_evaluation(
        out,
        main,
        baseline=None if baseline is main else baseline,
        keys=suite.keys,
        scale=scale,
        skipped_sets=skipped,
        extra=extra,
    )
    print(paths["markdown"].read_text(encoding="utf-8"))
    print(f"[esrgan-lit] wrote {', '.join(str(p) for p in paths.values())}")
    if cfg.get("wandb"):
        from esrgan_lit.evaluation.wandb_log import log_evaluation

        methods = [main] if baseline is None or baseline is main else [main, baseline]
        log_evaluation(
            cfg, out, methods, generator=generator, sets=sets, keys=suite.keys, device=device
        )
    return main.sets


@hydra.main(config_path=str(config_dir()), config_name="evaluate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    with user_errors("esrgan-evaluate"):
        evaluate(cfg)


if __name__ == "__main__":
    main()

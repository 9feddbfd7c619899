"""Config plumbing shared by the ``evaluate`` and ``tradeoff`` entry points."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from esrgan_lit.evaluation.runner import resolve_device
from esrgan_lit.evaluation.sets import EvalSet, datamodule_sets, folder_sets, present_sets
from esrgan_lit.evaluation.suite import MetricSuite
from esrgan_lit.utils.console import progress_bar  # noqa: F401  (evaluate and tradeoff use it)


def _config_sets(
    data: DictConfig, skipped: dict[str, str], skip_bad_files: bool = False
) -> list[EvalSet]:
    """The test sets (else validation sets) of a data config; absent folders are skipped."""
    import hydra

    field = "test_sets" if data.get("test_sets") is not None else "val_sets"
    _download(data)
    specs = OmegaConf.to_container(data.get(field) or {}, resolve=True)
    present, missing = present_sets(specs)  # type: ignore[arg-type]
    for name, reason in missing.items():
        print(f"[esrgan-lit] data.{field}.{name} skipped: {reason}")
        skipped[name] = reason
    if not present:
        raise FileNotFoundError(
            f"none of the sets in data.{field} is on disk ({'; '.join(missing.values())}); "
            "point paths.data_dir=DIR at the folder holding benchmark/Set5 ..., fetch them with "
            "data.download=true, or give 'test_dirs=[DIR]' (folders of HR images)"
        )
    data = data.copy()
    with open_dict(data):
        data[field] = present
        data.train_sets = None
        if skip_bad_files:
            data.skip_bad_files = True
    return datamodule_sets(hydra.utils.instantiate(data, _convert_="partial"))


def _download(data: DictConfig) -> None:
    """``data.download=true``: fetch the config's archives into ``data.data_dir`` first, as
    training does in ``prepare_data`` (the evaluation never calls the data module's hooks)."""
    if not data.get("download"):
        return
    from esrgan_lit.data.download import fetch_all

    if not data.get("downloads"):
        raise ValueError("data.download=true but data.downloads lists no archives")
    fetch_all(
        data.downloads,
        str(data.get("data_dir") or "data"),
        allow_unverified=bool(data.get("allow_unverified", False)),
    )


def eval_sets(cfg: DictConfig) -> tuple[list[EvalSet], dict[str, str]]:
    """``test_dirs`` folders, then the test sets of ``data=...`` (e.g. ``data=benchmarks``);
    also the configured sets left out because their folder is absent (name -> reason)."""
    from esrgan_lit.data.io import ImageReadError

    skipped: dict[str, str] = {}
    scale = int(cfg.scale)
    workers = int(cfg.get("num_workers") or 0)
    skip = bool(cfg.get("skip_bad_files", False))
    dirs = [str(d) for d in cfg.get("test_dirs") or []]
    try:
        sets = folder_sets(dirs, scale, num_workers=workers, skip_bad_files=skip)
        if cfg.get("data"):
            sets += _config_sets(cfg.data, skipped, skip)
    except ImageReadError as err:  # the data layer's hint names the training key
        msg = str(err).replace("data.skip_bad_files=true", "skip_bad_files=true")
        raise type(err)(msg) from None
    if not sets:
        raise ValueError(
            "nothing to evaluate: give 'test_dirs=[DIR1,DIR2]' (folders of HR images) or data=benchmarks"
        )
    names = [s.name for s in sets]
    if len(set(names)) != len(names):
        raise ValueError(f"set names must be unique, got {names}")
    return sets, skipped


def metric_suite(cfg: DictConfig, device: torch.device) -> MetricSuite:
    raw = cfg.get("metric_args")
    args = OmegaConf.to_container(raw, resolve=True) if raw is not None else {}
    crop = cfg.get("crop_border")
    suite = MetricSuite(
        list(cfg.metrics),
        crop_border=int(cfg.scale if crop is None else crop),
        metric_args=args,  # type: ignore[arg-type]
        device=device,
    )
    for key, reason in suite.unavailable.items():
        print(f"[esrgan-lit] {key} unavailable -> null: {reason}")
    return suite


def inference_options(cfg: DictConfig) -> dict[str, Any]:
    """``tile`` / ``tile_overlap`` / ``precision`` for the generator forward pass (no TTA:
    ``evaluate`` adds the self-ensemble as its own "+" row)."""
    return {
        "tile": int(cfg.get("tile") or 0),
        "tile_overlap": int(cfg.get("tile_overlap") or 32),
        "precision": str(cfg.get("precision") or "fp32"),
    }


def device_of(cfg: DictConfig) -> torch.device:
    return resolve_device(str(cfg.get("device") or "auto"))


def output_dir(cfg: DictConfig) -> Path:
    """``output_dir`` when set, else the Hydra run directory (``hydra.run.dir=OUT``)."""
    if cfg.get("output_dir"):
        out = Path(str(cfg.output_dir))
    else:
        from hydra.core.hydra_config import HydraConfig

        if not HydraConfig.initialized():
            raise ValueError("output_dir is not set and there is no Hydra run directory")
        out = Path(HydraConfig.get().runtime.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    return out

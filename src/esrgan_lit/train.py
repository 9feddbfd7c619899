"""Training entry point: ``python -m esrgan_lit.train experiment=psnr_pretrain`` (``esrgan-train``).

``train(cfg)`` is a plain function (tests call it with a composed config); ``main`` is the thin
Hydra wrapper. A run directory ends up holding ``checkpoints/last.ckpt``,
``generator.safetensors`` (EMA weights when the EMA callback is on) and ``metrics.json``.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.loggers import WandbLogger
from omegaconf import DictConfig, OmegaConf, open_dict

from esrgan_lit.callbacks.export import ExportOutputs
from esrgan_lit.cli_errors import user_errors
from esrgan_lit.config import check_required, config_dir
from esrgan_lit.data.errors import DataNotFoundError as DataNotFoundError  # its old home
from esrgan_lit.lit.compat import fits_in_worker_processes
from esrgan_lit.lit.ddp import register_strategies
from esrgan_lit.loggers import keep_csv_history
from esrgan_lit.run_dir import (
    RunLock,
    check_training_checkpoint,
    checkpoints_in,
    is_rank_zero,
    latest_checkpoint,
    refuse_fresh_run_over_checkpoints,
)
from esrgan_lit.run_summary import print_train_summary
from esrgan_lit.utils.console import drop_wandb_anonymous, quiet_third_party

log = logging.getLogger(__name__)


def resolve_ckpt_path(cfg: DictConfig) -> str | None:
    """``ckpt_path`` as given, or ``<run dir>/checkpoints/last.ckpt`` for ``resume=latest``."""
    ckpt = cfg.get("ckpt_path")
    resume = cfg.get("resume")
    if ckpt is None and resume is not None:
        if str(resume) != "latest":
            raise ValueError(f"resume={resume!r}: the only shortcut is resume=latest")
        last = latest_checkpoint(cfg.paths.output_dir)
        if last is not None:
            ckpt = str(last)
        else:
            log.warning("resume=latest: no last.ckpt in %s yet, starting from scratch",
                        Path(cfg.paths.output_dir) / "checkpoints")  # fmt: skip
    if ckpt is not None and not Path(ckpt).is_file():
        raise FileNotFoundError(f"ckpt_path={ckpt!r}: no such checkpoint file")
    if ckpt is not None:
        check_training_checkpoint(ckpt)  # our safe reader first: Lightning's advice is unsafe
    return None if ckpt is None else str(ckpt)


def _continue_run_dir(cfg: DictConfig, ckpt: str | None) -> None:
    """Resuming ``DIR/checkpoints/x.ckpt`` keeps writing into ``DIR`` (outputs, logs, W&B)."""
    if ckpt is None:
        return
    ckpt_p = Path(ckpt).resolve()
    if ckpt_p.parent.name != "checkpoints":
        return
    run_dir = ckpt_p.parent.parent
    if Path(cfg.paths.output_dir).resolve() != run_dir:
        log.info("resuming: continuing run directory %s", run_dir)
        with open_dict(cfg):
            cfg.paths.output_dir = str(run_dir)


def _multirun_group() -> tuple[str | None, str | None]:
    """(sweep dir name, job name) when running inside a Hydra multirun, else (None, None)."""
    try:
        hc = HydraConfig.get()
    except Exception:
        return None, None
    if hc.mode != RunMode.MULTIRUN:
        return None, None
    return Path(hc.sweep.dir).name, f"{hc.job.num}:{hc.job.override_dirname}"


def _prepare_wandb(cfg: DictConfig) -> None:
    """Keep one W&B run per run dir (resume continues it) and group multirun jobs by sweep."""
    wb = (cfg.get("logger") or {}).get("wandb")
    if wb is None:
        return
    id_file = Path(cfg.paths.output_dir) / "wandb_run_id.txt"
    with open_dict(cfg):
        if wb.get("id") is None:
            if os.environ.get("WANDB_RUN_ID"):  # a W&B sweep agent names the run it started
                wb.id = os.environ["WANDB_RUN_ID"]
            elif id_file.is_file():
                wb.id = id_file.read_text().strip()
            else:
                wb.id = secrets.token_hex(4)
                id_file.parent.mkdir(parents=True, exist_ok=True)
                id_file.write_text(wb.id + "\n")
        wb.resume = "allow"
        if os.environ.get("WANDB_MODE") == "offline":
            wb.offline = True
        group, job = _multirun_group()
        if group is not None:
            wb.group = wb.get("group") or group
            wb.name = wb.get("name") or job


def instantiate_group(cfg: DictConfig | None) -> list[Any]:
    """Instantiate every ``_target_`` entry of a group such as ``callbacks`` or ``logger``."""
    objs: list[Any] = []
    if not cfg:
        return objs
    for name, conf in cfg.items():
        if isinstance(conf, DictConfig) and "_target_" in conf:
            log.info("instantiating %s <%s>", name, conf._target_)
            objs.append(hydra.utils.instantiate(conf, _convert_="all"))
    return objs


def loggable_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved run config without Hydra's own section (for logger hyperparameters)."""
    return {
        str(k): OmegaConf.to_container(cfg[k], resolve=True)
        if OmegaConf.is_config(cfg[k])
        else cfg[k]
        for k in cfg
        if k != "hydra"
    }


def _restore_worker_callbacks(trainer: L.Trainer, callbacks: list[Any]) -> None:
    """fork/spawn launchers fit in child processes: this process's callbacks (the generator EMA
    above all) never saw training. Reload their state from rank 0's last checkpoint so a final
    validation here scores the trained EMA weights, not the initial ones."""
    if not fits_in_worker_processes(trainer):
        return
    cb = trainer.checkpoint_callback  # its last_model_path was set in the workers only
    ckpt = Path(cb.dirpath) / f"{cb.CHECKPOINT_NAME_LAST}{cb.FILE_EXTENSION}" if cb else None
    if ckpt is None or not ckpt.is_file():
        log.warning("no last.ckpt from the worker processes: callback state (EMA) may be stale")
        return
    states = torch.load(ckpt, map_location="cpu", weights_only=True).get("callbacks", {})
    for callback in callbacks:
        if callback.state_key in states:
            callback.load_state_dict(states[callback.state_key])


def metric_value(metrics: dict[str, float], name: str | None) -> float | None:
    """``val/<Set>/psnr_y`` as logged, or a bare ``psnr_y`` averaged over the validation sets."""
    if not name:
        return None
    if name in metrics:
        return float(metrics[name])
    values = [v for k, v in metrics.items() if k.startswith("val/") and k.endswith("/" + name)]
    if not values:
        raise KeyError(f"optimized_metric {name!r} was not logged; have {sorted(metrics)}")
    return float(sum(values) / len(values))


def train(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Fit (and validate the final generator); returns ``(metrics, objects)``.

    The run directory is locked while the run lives (a second run into it is refused); a fresh
    run is refused where an earlier run left checkpoints (see :mod:`esrgan_lit.run_dir`).
    """
    check_required(cfg, "model")
    quiet_third_party()  # no Lightning adverts between our messages
    ckpt_path = resolve_ckpt_path(cfg)
    _continue_run_dir(cfg, ckpt_path)
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    lock = RunLock(out).acquire() if is_rank_zero() else None
    try:
        if ckpt_path is None:
            _fresh_run_dir(cfg, out)
        return _train(cfg, ckpt_path)
    finally:
        if lock is not None:
            lock.release()


def _fresh_run_dir(cfg: DictConfig, out: Path) -> None:
    """A fresh run never shares its folder with an earlier run's checkpoints (overwrite=true
    deletes them first)."""
    if cfg.get("overwrite", False) and is_rank_zero():
        for old in checkpoints_in(out):
            log.warning("overwrite=true: deleting %s of an earlier run", old)
            old.unlink()
    refuse_fresh_run_over_checkpoints(out)


def _train(cfg: DictConfig, ckpt_path: str | None) -> tuple[dict[str, float], dict[str, Any]]:
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)

    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    model = hydra.utils.instantiate(cfg.model, _convert_="all")
    callbacks = instantiate_group(cfg.get("callbacks"))
    register_strategies()  # trainer.strategy=ddp_gan names our GAN DDP strategy
    _prepare_wandb(cfg)
    loggers = instantiate_group(cfg.get("logger"))
    drop_wandb_anonymous(loggers)  # no "anonymous setting has no effect" warning
    trainer: L.Trainer = hydra.utils.instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, _convert_="all"
    )
    objects = {
        "cfg": cfg,
        "datamodule": datamodule,
        "model": model,
        "callbacks": callbacks,
        "logger": loggers,
        "trainer": trainer,
    }
    if ckpt_path is not None:
        keep_csv_history(loggers)  # a resumed run appends to its metrics.csv
    for lg in loggers:
        lg.log_hyperparams(loggable_config(cfg))

    try:
        if cfg.get("train", True):
            trainer.fit(model=model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
            _restore_worker_callbacks(trainer, callbacks)
        export = next((c for c in callbacks if isinstance(c, ExportOutputs)), None)
        stale = export is not None and export.last_val_step != trainer.global_step
        if cfg.get("final_validate", True) and stale:
            trainer.validate(model=model, datamodule=datamodule, verbose=False)
        if cfg.get("test"):
            trainer.test(model=model, datamodule=datamodule, verbose=False)
    finally:
        _finish_wandb(loggers)

    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    return metrics, objects


def _finish_wandb(loggers: list[Any]) -> None:
    if any(isinstance(lg, WandbLogger) for lg in loggers):
        import wandb  # optional dependency (extra `wandb`): only when a W&B logger runs

        wandb.finish()


@hydra.main(config_path=str(config_dir()), config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns the optimised metric for sweepers (optuna)."""
    with user_errors("esrgan-train"):
        metrics, _ = train(cfg)
        print_train_summary(cfg)
        return metric_value(metrics, cfg.get("optimized_metric"))


if __name__ == "__main__":
    main()

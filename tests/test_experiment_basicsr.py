"""experiment=esrgan_basicsr against BasicSR's options/train/ESRGAN/train_ESRGAN_x4.yml.

The values in BASICSR were read from that file (XPixelGroup/BasicSR); the experiment must match
them and state only its differences from experiment=esrgan.
"""

from __future__ import annotations

from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from esrgan_lit.config import config_dir

# BasicSR key -> (our config path, BasicSR's value)
BASICSR: dict[str, tuple[str, Any]] = {
    "datasets.train.gt_size": ("data.gt_size", 128),
    "datasets.train.use_flip": ("data.use_hflip", True),
    "datasets.train.use_rot": ("data.use_rot", True),
    "datasets.train.batch_size_per_gpu": ("data.batch_size", 16),
    "network_g.num_feat": ("model.generator.num_feat", 64),
    "network_g.num_block": ("model.generator.num_block", 23),
    "network_d.num_feat": ("model.discriminator.num_feat", 64),
    "train.ema_decay": ("callbacks.ema.decay", 0.999),
    "train.optim_g.lr": ("model.optimizer_g.lr", 1e-4),
    "train.optim_g.betas": ("model.optimizer_g.betas", [0.9, 0.99]),
    "train.optim_g.weight_decay": ("model.optimizer_g.weight_decay", 0.0),
    "train.optim_d.lr": ("model.optimizer_d.lr", 1e-4),
    "train.optim_d.betas": ("model.optimizer_d.betas", [0.9, 0.99]),
    "train.optim_d.weight_decay": ("model.optimizer_d.weight_decay", 0.0),
    "train.scheduler.milestones": ("model.scheduler_g.milestones", [50000, 100000, 200000, 300000]),
    "train.scheduler.gamma": ("model.scheduler_g.gamma", 0.5),
    "train.scheduler.milestones (D)": (
        "model.scheduler_d.milestones",
        [50000, 100000, 200000, 300000],
    ),
    "train.scheduler.gamma (D)": ("model.scheduler_d.gamma", 0.5),
    "train.total_iter": ("trainer.max_steps", 400000),
    "train.pixel_opt.type": ("model.pixel_loss.criterion", "l1"),
    "train.pixel_opt.loss_weight": ("model.pixel_weight", 1e-2),
    "train.perceptual_opt.layer_weights": ("model.perceptual_loss.layer_weights", {"conv5_4": 1.0}),
    "train.perceptual_opt (before relu)": ("model.perceptual_loss.before_relu", True),
    "train.perceptual_opt.use_input_norm": ("model.perceptual_loss.use_input_norm", True),
    "train.perceptual_opt.criterion": ("model.perceptual_loss.criterion", "l1"),
    "train.perceptual_opt.perceptual_weight": ("model.perceptual_weight", 1.0),
    "train.gan_opt (ESRGANModel: relativistic average)": ("model.gan_loss.gan_type", "ragan"),
    "train.gan_opt.loss_weight": ("model.gan_weight", 5e-3),
    "train.net_d_init_iters": ("model.d_warmup_iters", 0),
    "val.val_freq": ("trainer.val_check_interval", 5000),
    "logger.save_checkpoint_freq": ("callbacks.model_checkpoint.every_n_train_steps", 5000),
    "manual_seed": ("seed", 0),
}


def _compose(experiment: str) -> dict[str, Any]:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", [f"experiment={experiment}", "model.pretrained_generator=x.pth"])
    return OmegaConf.to_container(cfg, resolve=False)  # type: ignore[return-value]


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def _get(cfg: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        cfg = cfg[part]
    return cfg


def test_every_value_matches_basicsr() -> None:
    cfg = _compose("esrgan_basicsr")
    wrong = {
        key: (ours, _get(cfg, ours), theirs)
        for key, (ours, theirs) in BASICSR.items()
        if _get(cfg, ours) != theirs
    }
    assert not wrong, wrong
    # BasicSR trains on DIV2K (DIV2K_train_HR_sub + LR_bicubic/X4_sub), not DF2K
    assert set(cfg["data"]["train_sets"]) == {"div2k"}
    assert cfg["data"]["train_sets"]["div2k"]["lr"]  # pre-made bicubic LR, as PairedImageDataset
    # BasicSR's model_ema is a fixed decay (no warm-up); its shadow starts from the PSNR model
    assert cfg["callbacks"]["ema"]["warmup"] is False


def test_only_the_differences_from_experiment_esrgan() -> None:
    paper, basicsr = _flat(_compose("esrgan")), _flat(_compose("esrgan_basicsr"))
    changed = {k for k in paper.keys() | basicsr.keys() if paper.get(k) != basicsr.get(k)}
    assert changed == {
        "task_name",
        "tags",
        "seed",
        "model.optimizer_g.betas",
        "model.optimizer_d.betas",
        "callbacks.ema.warmup",
    }

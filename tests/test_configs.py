"""Every experiment composes and trains for a few steps; every config group composes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import open_dict

from _extras import skip_without_plugins
from esrgan_lit.config import config_dir
from esrgan_lit.train import train

CONF = config_dir()
EXPERIMENTS = sorted(
    str(p.relative_to(CONF / "experiment").with_suffix(""))
    for p in CONF.glob("experiment/**/*.yaml")
)
PAPER_ABLATION = ["srgan_baseline", "no_bn", "before_activation", "ragan", "rrdb"]


def _compose(overrides: list[str], out: Path | None = None, name: str = "train"):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(name, overrides=overrides, return_hydra_config=True)
    if out is not None:
        with open_dict(cfg):
            cfg.paths.output_dir = str(out)
            cfg.hydra.runtime.output_dir = str(out)
        HydraConfig().set_config(cfg)
    return cfg


def test_experiment_list_is_complete():
    expected = {"psnr_pretrain", "esrgan", "esrgan_basicsr", "demo"}
    expected |= {f"ablation/{a}" for a in PAPER_ABLATION}
    assert expected <= set(EXPERIMENTS)


def test_paper_hyperparameters():
    psnr = _compose(["experiment=psnr_pretrain"])
    assert psnr.data._target_ == "esrgan_lit.data.SRDataModule" and "div2k" in psnr.data.train_sets
    assert psnr.model.optimizer.lr == 2e-4 and list(psnr.model.optimizer.betas) == [0.9, 0.999]
    assert psnr.model.scheduler.step_size == 200_000 and psnr.model.scheduler.gamma == 0.5
    gan = _compose(["experiment=esrgan", "model.pretrained_generator=x.pth"])
    m = gan.model
    assert (m.optimizer_g.lr, m.optimizer_d.lr) == (1e-4, 1e-4)
    assert list(m.scheduler_g.milestones) == [50_000, 100_000, 200_000, 300_000]
    assert gan.trainer.max_steps == 400_000
    assert (m.perceptual_weight, m.gan_weight, m.pixel_weight) == (1.0, 5e-3, 1e-2)
    assert m.gan_loss.gan_type == "ragan" and m.perceptual_loss.before_relu is True
    assert (m.generator.num_feat, m.generator.num_block, m.generator.num_grow_ch) == (64, 23, 32)
    assert gan.callbacks.ema.decay == 0.999
    assert gan.trainer.use_distributed_sampler is False


def test_ablation_columns_differ_as_in_the_paper():
    cols = {
        a: _compose([f"experiment=ablation/{a}"]).model for a in PAPER_ABLATION
    }  # fmt: skip
    assert cols["srgan_baseline"].generator.batch_norm is True
    assert cols["no_bn"].generator.batch_norm is False
    assert [cols[a].perceptual_loss.before_relu for a in PAPER_ABLATION] == [
        False, False, True, True, True,
    ]  # fmt: skip
    assert [cols[a].gan_loss.gan_type for a in PAPER_ABLATION] == [
        "vanilla", "vanilla", "vanilla", "ragan", "ragan",
    ]  # fmt: skip
    assert cols["rrdb"].generator._target_.endswith("RRDBNet")


@pytest.mark.parametrize(
    "overrides",
    [
        ["trainer=gpu"],
        ["trainer=ddp", "trainer.num_nodes=2"],
        ["trainer=ddp_cpu"],
        ["logger=tensorboard"],
        ["logger=wandb"],
        ["logger=many_loggers"],
        ["logger=none"],
        ["hparams_search=optuna"],
        ["hydra/launcher=slurm"],
        ["debug=fdr"],
        ["debug=limit"],
        ["debug=overfit"],
        ["model/discriminator=unet", "model=esrgan"],
        ["model/generator=srresnet"],
    ],
)
def test_groups_compose(overrides):
    skip_without_plugins(overrides)
    cfg = _compose(["experiment=psnr_pretrain", *overrides])
    assert cfg.trainer._target_.endswith("Trainer")


def test_ddp_configs_use_the_gan_strategy():
    for t in ("ddp", "ddp_cpu"):
        cfg = _compose([f"trainer={t}"])
        assert cfg.trainer.strategy._target_ == "esrgan_lit.lit.ddp.GANDDPStrategy"


def _tiny(experiment: str) -> list[str]:
    cfg = _compose([f"experiment={experiment}", "model.pretrained_generator=null"])
    o = [
        f"experiment={experiment}",
        "data=sample",
        "trainer=cpu",
        "trainer.max_steps=2",
        "logger=none",
        "data.batch_size=2",
        "data.gt_size=32",
        "model.generator.num_feat=8",
        "model.generator.num_block=1",
        "model.pretrained_generator=null",
        "callbacks.model_summary=null",
        "callbacks.progress_bar=null",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
    ]
    if "num_grow_ch" in cfg.model.generator:
        o.append("model.generator.num_grow_ch=4")
    if "discriminator" in cfg.model:
        o.append("model.discriminator.num_feat=4")
    if cfg.model.get("perceptual_loss") is not None:
        # the real VGG19 weights cannot be downloaded here: random weights exercise the code;
        # a shallow layer keeps the network small (before/after-ReLU choice still applies)
        o.append("model.perceptual_loss.pretrained=false")
        o.append("~model.perceptual_loss.layer_weights")
        o.append("+model.perceptual_loss.layer_weights={conv2_2: 1.0}")
    return o


@pytest.mark.parametrize("experiment", EXPERIMENTS)
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_every_experiment_trains_a_few_steps(experiment, tmp_path, tmp_path_factory):
    data_dir = tmp_path_factory.getbasetemp() / "configs_data"
    cfg = _compose([*_tiny(experiment), f"paths.data_dir={data_dir}"], out=tmp_path)
    metrics, objs = train(cfg)
    assert objs["trainer"].global_step == 2
    assert (tmp_path / "generator.safetensors").is_file()
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert torch.isfinite(torch.tensor(metrics["val/sample/psnr_y"]))


def test_interpolate_config_composes():
    cfg = _compose(["psnr=a.pth", "gan=b.pth", "output=c.safetensors"], name="interpolate")
    assert cfg.alpha == 0.8


def test_optimizer_factories_are_partial():
    cfg = _compose(["experiment=esrgan", "model.pretrained_generator=null"])
    opt = instantiate(cfg.model.optimizer_g, _convert_="all")
    params = [torch.nn.Parameter(torch.zeros(1))]
    assert isinstance(opt(params=params), torch.optim.Adam)


@pytest.mark.parametrize("experiment", ["esrgan", "esrgan_basicsr"])
def test_gan_experiments_require_the_psnr_model(experiment, tmp_path):
    """A bare ``???`` would be lost in the merge over model/esrgan.yaml's null: the GAN stage
    would silently start from random weights."""
    from esrgan_lit.config import MissingConfigValueError

    cfg = _compose([f"experiment={experiment}", "data=sample"], out=tmp_path)
    with pytest.raises(MissingConfigValueError, match=r"model\.pretrained_generator=PATH"):
        train(cfg)
    assert not (tmp_path / "checkpoints").exists()
    given = _compose([f"experiment={experiment}", "model.pretrained_generator=psnr.safetensors"])
    assert given.model.pretrained_generator == "psnr.safetensors"
    scratch = _compose([f"experiment={experiment}", "model.pretrained_generator=null"])
    assert scratch.model.pretrained_generator is None


def test_slurm_launcher_follows_the_trainer():
    cfg = _compose(
        ["hydra/launcher=slurm", "trainer=ddp", "trainer.num_nodes=3", "trainer.devices=4"]
    )
    launcher = cfg.hydra.launcher
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (3, 4, 4)

"""data/degradation=realesrgan and experiment=realesrnet|realesrgan end to end on the sample
photos (tiny nets, a few steps): the hook, the USM target, exact resume with the pool."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from safetensors.torch import load_file

from esrgan_lit.config import config_dir
from esrgan_lit.data.degrade import TrainDegrader, build_degrader
from esrgan_lit.degradations import RealESRGANDegradation
from esrgan_lit.train import train
from train_helpers import compose_cfg as compose_tiny

pytest.importorskip("skimage")

TINY = [  # on top of train_helpers.TINY
    "data.degradation.pool_size=4",
    "data.degradation.crop_pad_size=48",  # the experiments' 400 px crops, shrunk
    "logger=none",
    "callbacks.model_checkpoint.every_n_train_steps=1000",
]
GAN = [
    "experiment=realesrgan",
    "model.discriminator.num_feat=4",
    "model.perceptual_loss.pretrained=false",  # the multi-layer VGG path, without a download
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("data"))


def compose_cfg(out: Path, overrides: list[str], data_dir: str):
    return compose_tiny(out, [*overrides, *TINY], data_dir, tiny_wins=True)


def run(out: Path, overrides: list[str], data_dir: str):
    return train(compose_cfg(out, overrides, data_dir))


def test_default_is_bicubic_and_unknown_keys_fail():
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=["data=sample"])
        assert dict(cfg.data.degradation) == {"kind": "bicubic"}
        real = compose("train", overrides=["data=div2k", "data/degradation=realesrgan"])
    assert real.data.degradation.kind == "realesrgan"
    assert real.data.degradation.options.kernel_prob == [0.45, 0.25, 0.12, 0.03, 0.12, 0.03]
    assert build_degrader({"kind": "bicubic"}, 4, 0) is None
    with pytest.raises(ValueError, match="kind must be one of"):
        build_degrader({"kind": "bilinear"}, 4, 0)
    with pytest.raises(ValueError, match="unknown key"):
        build_degrader({"kind": "realesrgan", "pool": 3}, 4, 0)
    with pytest.raises(ValueError, match="unknown degradation option"):
        build_degrader({"kind": "realesrgan", "options": {"sigma": 1}}, 4, 0)


def test_degrader_batch_and_state_round_trip():
    gt = torch.randint(0, 256, (2, 3, 32, 32)).float() / 255  # 8-bit GT, as the loader gives
    batch = {"lq": torch.zeros(2, 3, 8, 8), "gt": gt}
    a = TrainDegrader(4, seed=3, pool_size=4)
    out = a(batch)
    assert out["lq"].shape == (2, 3, 8, 8) and out["gt_usm"].shape == (2, 3, 32, 32)
    assert not torch.equal(out["gt_usm"], out["gt"])
    state = a.state_dict()
    b = TrainDegrader(4, seed=99, pool_size=4)
    b.load_state_dict(state)
    for _ in range(3):  # through the full pool: shuffling continues identically
        x, y = a(batch), b(batch)
        assert torch.equal(x["lq"], y["lq"]) and torch.equal(x["gt"], y["gt"])


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_realesrnet_then_realesrgan_on_sample(tmp_path, data_dir):
    metrics, objs = run(
        tmp_path / "net", ["experiment=realesrnet", "trainer.max_steps=3"], data_dir
    )
    assert objs["trainer"].global_step == 3
    dm = objs["datamodule"]
    state = dm.state_dict()["degradation"]
    assert state["device"] == "cpu" and state["pool"]["ptr"] == 4
    assert "val/sample/psnr_y" in metrics  # validation stays on the (bicubic) sets
    gen = tmp_path / "net" / "generator.safetensors"
    assert gen.is_file()
    # stage 2 from the stage-1 weights: U-Net SN discriminator, vanilla GAN, 5 VGG layers
    metrics, objs = run(
        tmp_path / "gan",
        [*GAN, f"model.pretrained_generator={gen}", "trainer.max_steps=2"],
        data_dir,
    )
    model = objs["model"]
    assert type(model.discriminator).__name__ == "UNetDiscriminatorSN"
    assert model.gan_loss.gan_type == "vanilla" and model.gan_weight == 0.1
    assert set(model.perceptual_loss.layer_weights) == {
        "conv1_2",
        "conv2_2",
        "conv3_4",
        "conv4_4",
        "conv5_4",
    }
    assert objs["trainer"].global_step == 2
    assert torch.isfinite(torch.tensor(list(metrics.values()))).all()


def test_lit_modules_use_gt_usm_for_pixel_terms():
    """PSNR and GAN generator steps compare with batch["gt_usm"] when present."""
    from esrgan_lit.lit.psnr import PSNRModule

    seen = []

    class Spy(torch.nn.Module):
        def forward(self, sr, gt):
            seen.append(gt)
            return (sr - gt).abs().mean()

    gen = torch.nn.Sequential(torch.nn.Upsample(scale_factor=4), torch.nn.Conv2d(3, 3, 1))
    mod = PSNRModule(
        gen, optimizer=lambda params: torch.optim.SGD(params, lr=0.1), pixel_loss=Spy()
    )
    mod.optimizers = lambda: torch.optim.SGD(gen.parameters(), lr=0.1)  # type: ignore[method-assign]
    mod.lr_schedulers = lambda: None  # type: ignore[method-assign]
    mod.log = mod.log_lr = mod.finish_iteration = lambda *a, **k: None  # type: ignore[method-assign]
    mod.manual_backward = lambda loss: loss.backward()  # type: ignore[method-assign]
    usm = torch.rand(1, 3, 16, 16)
    mod.training_step(
        {"lq": torch.rand(1, 3, 4, 4), "gt": torch.zeros(1, 3, 16, 16), "gt_usm": usm}, 0
    )
    assert torch.equal(seen[-1], usm)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_resume_with_degradation_and_pool_is_exact(tmp_path, data_dir):
    """4 straight steps == 2 + resume + 2, with the pool full at the checkpoint."""
    base = ["experiment=realesrnet", "final_validate=false"]
    run(tmp_path / "straight", [*base, "trainer.max_steps=5"], data_dir)
    run(tmp_path / "resumed", [*base, "trainer.max_steps=3"], data_dir)
    ckpt = tmp_path / "resumed" / "checkpoints" / "last.ckpt"
    saved = torch.load(ckpt, weights_only=True)
    dm_state = next(v for k, v in saved.items() if k.endswith("SRDataModule"))
    assert dm_state["degradation"]["pool"]["ptr"] == 4  # full: resuming must restore it
    _, objs = run(
        tmp_path / "resumed", [*base, "trainer.max_steps=5", f"ckpt_path={ckpt}"], data_dir
    )
    assert objs["trainer"].global_step == 5
    a = load_file(tmp_path / "straight" / "generator.safetensors")
    b = load_file(tmp_path / "resumed" / "generator.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_degraded_set_is_fixed_and_evaluable(tmp_path):
    """make_degraded_set writes HR + LR_bicubic/X4 (the benchmark layout), same bytes per seed."""
    from PIL import Image

    from esrgan_lit.data.degraded import make_degraded_set
    from esrgan_lit.evaluation.sets import folder_sets

    src = tmp_path / "hr"
    src.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 256, (70, 66, 3), dtype=np.uint8)).save(src / f"{name}.png")
    assert make_degraded_set(src, tmp_path / "d1", seed=5) == ["a", "b"]
    make_degraded_set(src, tmp_path / "d2", seed=5)
    make_degraded_set(src, tmp_path / "d3", seed=6)
    lr = lambda d, n: np.array(Image.open(tmp_path / d / "LR_bicubic" / "X4" / f"{n}.png"))  # noqa: E731
    assert lr("d1", "a").shape == (17, 16, 3)
    assert np.array_equal(lr("d1", "a"), lr("d2", "a")) and not np.array_equal(
        lr("d1", "a"), lr("d3", "a")
    )
    (s,) = folder_sets([tmp_path / "d1"], 4)
    sample = next(iter(s.samples()))
    assert sample["gt"].shape[-2:] == (68, 64)
    assert np.array_equal(
        (sample["lq"].permute(1, 2, 0).numpy() * 255).round(), lr("d1", sample["name"])
    )


def test_degraded_set_cli_refuses_a_missing_folder_and_warns_nothing(tmp_path, capsys):
    """Exit 2 naming the folder (no traceback); a good run raises no UserWarning of ours."""
    import warnings

    from PIL import Image

    from esrgan_lit.data.degraded import main

    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path / "nope"), str(tmp_path / "out")])
    assert exc.value.code == 2 and "nope" in capsys.readouterr().err
    src = tmp_path / "hr"
    src.mkdir()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(src / "a.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. torch's "non-writable NumPy array" warning
        main([str(src), str(tmp_path / "out")])
    assert (tmp_path / "out" / "LR_bicubic" / "X4" / "a.png").is_file()


def test_realesrgan_requires_the_realesrnet_model(tmp_path, data_dir):
    from esrgan_lit.config import MissingConfigValueError

    cfg = compose_cfg(tmp_path, ["experiment=realesrgan"], data_dir)
    with pytest.raises(MissingConfigValueError, match=r"model\.pretrained_generator=PATH"):
        train(cfg)


def test_hook_degrades_training_batches_only():
    from types import SimpleNamespace

    from esrgan_lit.data import SRDataModule

    dm = SRDataModule(scale=4, gt_size=32, degradation={"kind": "realesrgan", "pool_size": 0})
    batch = {"lq": torch.zeros(2, 3, 8, 8), "gt": torch.rand(2, 3, 32, 32)}
    assert dm.on_after_batch_transfer(batch, 0) is batch  # no trainer: untouched
    dm.trainer = SimpleNamespace(
        training=False, global_rank=0, world_size=1
    )  # validation / test / predict
    assert dm.on_after_batch_transfer(batch, 0) is batch
    dm.trainer = SimpleNamespace(training=True, global_rank=0, world_size=1)
    out = dm.on_after_batch_transfer(batch, 0)
    assert not torch.equal(out["lq"], batch["lq"]) and "gt_usm" in out
    assert "degradation" in dm.state_dict()
    plain = SRDataModule(scale=4, gt_size=32)
    plain.trainer = SimpleNamespace(training=True, global_rank=0, world_size=1)
    assert (
        plain.on_after_batch_transfer(batch, 0) is batch and "degradation" not in plain.state_dict()
    )


def test_loader_skips_bicubic_lr_when_a_degrader_replaces_it(tmp_path, monkeypatch):
    """With data.degradation the loader's LR is thrown away: no MATLAB bicubic per patch."""
    from esrgan_lit.data import datasets
    from esrgan_lit.data.datamodule import SRDataModule

    hr = tmp_path / "hr"
    hr.mkdir()
    rng = np.random.default_rng(0)
    from PIL import Image

    Image.fromarray(rng.integers(0, 256, (64, 64, 3), np.uint8)).save(hr / "a.png")

    def dm(kind):
        m = SRDataModule(
            train_sets={"mine": {"hr": str(hr)}}, gt_size=32, batch_size=1, num_workers=0,
            degradation={"kind": kind},
        )  # fmt: skip
        m.setup("fit")
        return m.train_set

    calls = []
    real = datasets.bicubic_lr_window
    monkeypatch.setattr(datasets, "bicubic_lr_window", lambda *a: calls.append(1) or real(*a))
    assert dm("bicubic")[0]["lq"].shape == (3, 8, 8) and calls
    calls.clear()
    item = dm("realesrgan")[0]
    assert item["lq"].shape == (3, 8, 8) and item["gt"].shape == (3, 32, 32) and not calls


def test_crop_pad_size_degrades_a_bigger_crop_and_cuts_the_pair(tmp_path):
    """Real-ESRGAN's 400 -> 256: the loader crops crop_pad_size (reflect-padding a smaller image),
    the degrader cuts one aligned gt_size window out of the degraded batch."""
    from PIL import Image

    from esrgan_lit.data.datamodule import SRDataModule

    hr = tmp_path / "hr"
    hr.mkdir()
    img = np.random.default_rng(0).integers(0, 256, (40, 56, 3), np.uint8)  # 40 < crop 48
    Image.fromarray(img).save(hr / "a.png")
    deg = {"kind": "realesrgan", "crop_pad_size": 48, "usm_gt": False}
    dm = SRDataModule(
        train_sets={"mine": {"hr": str(hr)}}, gt_size=32, batch_size=1, num_workers=0,
        use_hflip=False, use_rot=False, degradation=deg,
    )  # fmt: skip
    dm.setup("fit")
    item = dm.train_set[0]
    assert item["gt"].shape == (3, 48, 48) and item["lq"].shape == (3, 12, 12)
    crop = (item["gt"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    padded = np.pad(img, ((0, 8), (0, 0), (0, 0)), mode="reflect")  # BORDER_REFLECT_101
    assert any(np.array_equal(crop, padded[:, x : x + 48]) for x in range(0, 9, 4))
    assert np.array_equal(padded[40:], img[38:30:-1])  # reflect-101: the edge row not repeated

    gt = torch.rand(2, 3, 48, 48)
    a = build_degrader(deg, 4, seed=1, gt_size=32)
    out = a({"lq": torch.zeros(2, 3, 12, 12), "gt": gt})
    assert out["gt"].shape == (2, 3, 32, 32) and out["lq"].shape == (2, 3, 8, 8)
    hits = [
        (t, x)
        for t in range(0, 17, 4)
        for x in range(0, 17, 4)
        if torch.equal(gt[..., t : t + 32, x : x + 32], out["gt"])
    ]
    assert len(hits) == 1  # an LR-aligned window of the degraded crop's GT
    b = build_degrader(deg, 4, seed=1, gt_size=32)
    again = b({"lq": torch.zeros(2, 3, 12, 12), "gt": gt})
    assert torch.equal(again["lq"], out["lq"]) and torch.equal(again["gt"], out["gt"])
    full = RealESRGANDegradation(4)(gt, torch.Generator().manual_seed(1000))
    t, x = hits[0]
    assert torch.equal(out["lq"], full[..., t // 4 : t // 4 + 8, x // 4 : x // 4 + 8])


@pytest.mark.parametrize(
    ("crop", "message"),
    [(46, "multiple of scale 4"), (28, "smaller than data.gt_size=32"), (True, "multiple")],
)
def test_crop_pad_size_is_checked(crop, message):
    from esrgan_lit.data.datamodule import SRDataModule

    with pytest.raises(ValueError, match=message):
        SRDataModule(gt_size=32, degradation={"kind": "realesrgan", "crop_pad_size": crop})


def test_experiments_crop_400_like_real_esrgan():
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        plain = compose("train", overrides=["data=div2k", "data/degradation=realesrgan"])
        exps = [
            compose("train", overrides=[f"experiment={e}"]) for e in ("realesrnet", "realesrgan")
        ]
    assert plain.data.degradation.crop_pad_size is None
    assert [(c.data.degradation.crop_pad_size, c.data.gt_size) for c in exps] == [(400, 256)] * 2

"""Every fix an error message suggests works when pasted (issue 18, item 3), and training on your
own folder needs no Set5/Set14 (item 4).

Each test provokes a message, pulls the suggested override out of its text, composes the config
again with it (PATH replaced by a real folder) and checks that the run gets past the error.
"""

from __future__ import annotations

import logging
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from PIL import Image

from esrgan_lit.config import config_dir
from esrgan_lit.data.sources import DataNotFoundError
from train_helpers import compose_run

OVERRIDE = re.compile(r"'?(~?[a-z_]+(?:\.[A-Za-z0-9_]+)+=?[^\s;,')]*)'?")


def images(root: Path, n: int = 2, size: int = 48) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), np.uint8)).save(root / f"{i}.png")
    return root


def cfg_of(name: str, data_dir: Path, *overrides: str):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose(name, overrides=[f"paths.data_dir={data_dir}", *overrides])


def datamodule(data_dir: Path, *overrides: str):
    cfg = cfg_of("train", data_dir, "data.num_workers=0", "data.gt_size=32", *overrides)
    return instantiate(cfg.data, _convert_="all")


def suggested(msg: str, key: str) -> str:
    """The override in ``msg`` that sets ``key`` (fails the test if the message has none)."""
    found = [o for o in OVERRIDE.findall(msg) if o.lstrip("~").split("=")[0] == key]
    assert found, f"no {key}=... in: {msg}"
    return found[0]


def test_missing_validation_set_hints_work(tmp_path):
    """A required validation set that is absent: the message names `root` (the key the config
    has), not `.hr` (which Hydra refuses: not in struct), and '~data.val_sets.NAME' drops it."""
    data = tmp_path / "data"
    base = ["data.val_sets.Set5.optional=false", "~data.val_sets.Set14"]
    with pytest.raises(DataNotFoundError) as info:
        datamodule(data, *base).setup("validate")
    msg = str(info.value)
    assert "data.val_sets.Set5.hr" not in msg and "data.download=true" in msg
    fix = suggested(msg, "data.val_sets.Set5.root").replace("PATH", str(images(tmp_path / "s5")))
    dm = datamodule(data, *base, fix)
    dm.setup("validate")
    assert dm.val_set_names == ["Set5"] and len(dm.val_sets[0]) == 2
    drop = suggested(msg, "data.val_sets.Set5")
    assert drop.startswith("~")
    dm = datamodule(data, *base, drop)
    dm.setup("validate")
    assert dm.val_set_names == []


def test_missing_lr_folder_suggests_lr_null(tmp_path):
    """A custom set whose LR folder is absent is told lr=null (LR made from HR), and no download
    (its path lies outside data_dir, where no archive would land)."""
    hr = images(tmp_path / "mine" / "hr")
    ov = ["data=folder", f"data.train_sets.folder.hr={hr}", f"data.train_sets.folder.lr={hr}_lr"]
    with pytest.raises(DataNotFoundError) as info:
        datamodule(tmp_path / "data", *ov).setup("fit")
    msg = str(info.value)
    assert "data.download=true" not in msg
    fix = suggested(msg, "data.train_sets.folder.lr")
    assert fix.endswith("=null")
    dm = datamodule(tmp_path / "data", *ov, fix)
    dm.setup("fit")
    assert dm.train_set is not None and len(dm.train_set) == 2


def test_missing_training_data_hints_work(tmp_path, monkeypatch):
    """DIV2K absent from data_dir: data.download=true really downloads (into data_dir), and
    data.train_sets.div2k.hr=PATH (with lr=null) trains on the given folder."""
    data = tmp_path / "data"
    with pytest.raises(DataNotFoundError) as info:
        datamodule(data).setup("fit")
    msg = str(info.value)
    assert "data.train_sets.div2k.hr=PATH" in msg and "data=sample" in msg
    fetched = []
    monkeypatch.setattr(
        "esrgan_lit.data.download.fetch_all", lambda specs, root, **kw: fetched.append(root)
    )
    datamodule(data, suggested(msg, "data.download")).prepare_data()
    assert fetched == [str(data)]
    fix = suggested(msg, "data.train_sets.div2k.hr").replace("PATH", str(images(tmp_path / "hr")))
    dm = datamodule(data, fix, "data.train_sets.div2k.lr=null")
    dm.setup("fit")
    assert len(dm.train_set) == 2


def test_evaluate_download_true_downloads(tmp_path, monkeypatch):
    """`evaluate data=benchmarks data.download=true` fetches the benchmarks (it never did), and
    the no-sets message's paths.data_dir=DIR works."""
    from esrgan_lit.evaluate import evaluate

    empty = tmp_path / "empty"
    ev = ["data=benchmarks", "metrics=[psnr_y]", "progress=false", "device=cpu"]
    ev += [f"output_dir={tmp_path / 'out'}", "data.val_num_workers=0"]
    with pytest.raises(FileNotFoundError) as info:
        evaluate(cfg_of("evaluate", empty, *ev))
    msg = str(info.value)
    assert "data.download=true" in msg
    calls = []

    def fake_fetch(specs, root, **kw):  # what the real one leaves: benchmark/Set5/HR
        calls.append((list(specs), root))
        images(Path(root) / "benchmark" / "Set5" / "HR")

    monkeypatch.setattr("esrgan_lit.data.download.fetch_all", fake_fetch)
    metrics = evaluate(cfg_of("evaluate", empty, *ev, suggested(msg, "data.download")))
    assert calls == [(["benchmarks"], str(empty))] and list(metrics) == ["Set5"]
    fix = suggested(msg, "paths.data_dir").replace("DIR", str(empty))
    monkeypatch.setattr("esrgan_lit.data.download.fetch_all", lambda *a, **k: None)
    assert list(evaluate(cfg_of("evaluate", tmp_path / "elsewhere", *ev, fix))) == ["Set5"]


@pytest.mark.parametrize(
    "override",
    [
        "data.skip_bad_files=true",  # sources.py, pairs.py
        "data.allow_unverified=true",  # download.py
        "data.enlarge_ratio=2",  # samplers.py
        "data.samples_per_epoch=64",
        "trainer.use_distributed_sampler=false",  # datamodule.py (DDP)
        "overwrite=true",  # run_dir.py
        "resume=latest",
        "ckpt_path=FILE",
        "model.pretrained_generator=FILE",  # run_dir.py: weights-only file given as ckpt_path
        "hydra.run.dir=DIR",
        "data=sample",
        "trainer=ddp_cpu",  # lit/base.py
        "model.generator.num_feat=64",  # lit/base.py: wrong-size pretrained generator
        "model.generator.num_block=23",
        "model.generator.num_grow_ch=32",
        "model=esrgan model.perceptual_loss.download=false",  # docs/install.md (VGG19 offline)
        "model=esrgan model.perceptual_loss.pretrained_path=FILE",  # losses/vgg.py
        "model=esrgan model.perceptual_loss=null",  # demo.py
        "'+data.val_sets.NAME={hr: PATH}'",  # run_summary.py, docs (as pasted into a shell)
    ],
)
def test_other_suggested_overrides_compose(tmp_path, override):
    """The keys other messages name exist in the training config, so pasting them composes."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        compose("train", overrides=shlex.split(override), return_hydra_config=True)


def test_own_folder_trains_without_benchmarks(tmp_path, caplog):
    """The default data config pointed at your own HR folder (no LR, no Set5/Set14 anywhere):
    setup succeeds with ONE warning naming the skipped default validation sets."""
    hr = images(tmp_path / "mine", n=3)
    ov = [f"data.train_sets.div2k.hr={hr}", "data.train_sets.div2k.lr=null"]
    dm = datamodule(tmp_path / "data", *ov)
    with caplog.at_level(logging.WARNING, logger="esrgan_lit.data.datamodule"):
        dm.setup("fit")
        loaders = dm.val_dataloader()
        dm.setup("validate")
    warned = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(warned) == 1 and "Set5" in warned[0] and "Set14" in warned[0], warned
    assert loaders == [] and dm.val_set_names == [] and len(dm.train_set) == 3
    # a set you add yourself is not optional: a typo fails instead of silently validating nothing
    with pytest.raises(DataNotFoundError, match="myval"):
        datamodule(tmp_path / "data", *ov, f"+data.val_sets.myval.hr={tmp_path}/typo").setup("fit")


def test_wrong_size_pretrained_generator_names_the_overrides(tmp_path):
    """A checkpoint of other sizes: a few lines with the sizes and the overrides to paste (not
    ~700 mismatched keys); pasting them loads it."""
    from esrgan_lit.archs import RRDBNet
    from esrgan_lit.weights import save_generator

    ckpt = save_generator(
        RRDBNet(num_feat=8, num_block=1, num_grow_ch=4), tmp_path / "g.safetensors"
    )
    base = ["model=psnr", f"model.pretrained_generator={ckpt}"]
    with pytest.raises(Exception) as info:  # Hydra wraps it in an InstantiationException
        instantiate(cfg_of("train", tmp_path, *base).model, _convert_="all")
    msg = str(info.value.__cause__ or info.value)
    assert len(msg.splitlines()) <= 3 and len(msg) < 600, msg
    fixes = msg.split("set: ")[1].split()
    assert sorted(fixes) == sorted(
        [
            "model.generator.num_feat=8",
            "model.generator.num_block=1",
            "model.generator.num_grow_ch=4",
        ]
    )
    model = instantiate(cfg_of("train", tmp_path, *base, *fixes).model, _convert_="all")
    assert model.generator.num_feat == 8


@pytest.mark.parametrize(
    "override",
    [
        "skip_bad_files=true",  # evaluation/cli_config.py
        "'test_dirs=[DIR1,DIR2]'",  # as the message writes it, shell-quoted
        "data=benchmarks",
        "generator=bicubic",  # evaluate.py
        "+metric_args.niqe.crop_border=0",  # evaluate.yaml
        "metric_args.ma.model_path=PATH",  # metrics/ma.py (model_path=)
        "metric_args.lpips.backbone_path=PATH",
        "data=benchmarks paths.data_dir=DIR data.download=true",
    ],
)
def test_evaluate_suggested_overrides_compose(override):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        compose("evaluate", overrides=shlex.split(override), return_hydra_config=True)


def test_train_on_own_folder_without_benchmarks_end_to_end(tmp_path, caplog):
    """`train experiment=psnr_pretrain` on your own HR folder with no Set5/Set14 anywhere: the
    run finishes and exports its generator (it used to stop in setup on the missing Set5)."""

    from esrgan_lit.train import train

    hr = images(tmp_path / "mine", n=3)
    out = tmp_path / "run"
    cfg = compose_run(out, [
        "experiment=psnr_pretrain", f"paths.data_dir={tmp_path / 'data'}",
        f"data.train_sets.div2k.hr={hr}", "data.train_sets.div2k.lr=null", "trainer=cpu",
        "logger=none", "model.generator.num_feat=8", "model.generator.num_block=1",
        "model.generator.num_grow_ch=4", "data.batch_size=2", "data.gt_size=32",
        "data.num_workers=0", "data.persistent_workers=false", "trainer.max_steps=2",
        "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
        "callbacks.progress_bar=null", "callbacks.model_summary=null",
    ])  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="esrgan_lit.data.datamodule"):
        _, objs = train(cfg)
    assert objs["trainer"].global_step == 2 and (out / "generator.safetensors").is_file()
    warned = [r for r in caplog.records if "optional validation data not found" in r.getMessage()]
    assert len(warned) == 1


def test_skipped_optional_sets_leave_names_and_loaders_aligned(tmp_path):
    """Set5/Set14 absent, a set of your own present: names and loaders agree (the metrics
    callback labels loader i with name i)."""
    hr, val = images(tmp_path / "mine", n=3), images(tmp_path / "val", n=1)
    dm = datamodule(
        tmp_path / "data",
        f"data.train_sets.div2k.hr={hr}",
        "data.train_sets.div2k.lr=null",
        f"+data.val_sets.mine.hr={val}",
    )
    dm.setup("fit")
    assert dm.val_set_names == ["mine"] and len(dm.val_dataloader()) == 1
    assert dm.test_set_names == ["mine"] and len(dm.test_dataloader()) == 1

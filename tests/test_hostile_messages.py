"""Values checked up front with the key named (issue 17.11) and messages that no longer mislead
(issue 17.14): evaluation advice for evaluation folders, no "0x0 training crop", a
``skip_bad_files`` hint that works in ``evaluate``, ``export`` into a folder, and the project's
own TorchScript export given where weights belong.

Hostile inputs tried here: 14 (seven bad data values, a bad value through the training config,
an empty evaluation folder, a 2x2 image, an export into a folder, and a TorchScript file given to
upscale, export and evaluate).
"""

from __future__ import annotations

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf
from PIL import Image

from esrgan_lit.archs import RRDBNet
from esrgan_lit.config import config_dir
from esrgan_lit.data import SRDataModule
from esrgan_lit.data.io import ImageReadError
from esrgan_lit.data.sources import DataNotFoundError
from esrgan_lit.evaluation.cli_config import eval_sets
from esrgan_lit.export import export_torchscript
from esrgan_lit.export import main as export_main
from esrgan_lit.upscale import main as upscale_main
from esrgan_lit.weights import save_generator
from esrgan_lit.weights.errors import CheckpointError

RNG = np.random.default_rng(5)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("gt_size", 0),
        ("gt_size", -8),
        ("batch_size", "abc"),
        ("batch_size", 0),
        ("num_workers", -1),
        ("enlarge_ratio", 1.5),
        ("val_batch_size", True),
    ],
)
def test_bad_data_values_are_refused_at_construction_naming_the_key(key, value):
    with pytest.raises(ValueError, match=rf"data\.{key}={value!r}: must be a whole number"):
        SRDataModule(**{key: value})


def test_bad_data_value_through_the_training_config_names_the_key(tmp_path):
    from esrgan_lit.cli_errors import message, user_error_in
    from esrgan_lit.train import train

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=["experiment=psnr_pretrain", "data=sample", "logger=none",
                       "data.batch_size=abc", f"paths.output_dir={tmp_path}"],
        )  # fmt: skip
    with pytest.raises(Exception) as info:
        train(cfg)
    found = user_error_in(info.value)  # what the entry point prints, without the stack
    assert found is not None and "data.batch_size='abc'" in message(found)


def _eval_cfg(folder, **extra):
    return OmegaConf.create({"scale": 4, "test_dirs": [str(folder)], **extra})


def test_empty_evaluation_folder_gets_evaluation_advice(tmp_path):
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "readme.txt").write_text("no images here")
    with pytest.raises(DataNotFoundError) as info:
        eval_sets(_eval_cfg(tmp_path / "set"))
    msg = str(info.value)
    assert "test_dirs" in msg and "holds no images" in msg
    assert "data.download" not in msg and "data=sample" not in msg


def test_tiny_and_bad_images_in_evaluation(tmp_path):
    folder = tmp_path / "set"
    folder.mkdir()
    Image.fromarray(RNG.integers(0, 256, (2, 2, 3), dtype=np.uint8)).save(folder / "tiny.png")
    Image.fromarray(RNG.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(folder / "ok.png")
    with pytest.raises(ImageReadError) as info:
        eval_sets(_eval_cfg(folder))
    msg = str(info.value)
    assert "tiny.png" in msg and "0x0 training crop" not in msg and "scale (4)" in msg
    assert "data.skip_bad_files" not in msg and "skip_bad_files=true" in msg
    # ... and the suggested fix works when pasted (evaluate accepts skip_bad_files)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("evaluate", overrides=[f"test_dirs=[{folder}]", "skip_bad_files=true"])
    sets, _ = eval_sets(cfg)
    assert [len(s) for s in sets] == [1]


@pytest.fixture
def exported(tmp_path):
    gen = tmp_path / "g.safetensors"
    model = RRDBNet(scale=2, num_feat=8, num_block=1, num_grow_ch=4).eval()
    save_generator(model, gen)
    ts = tmp_path / "g_ts.pt"
    export_torchscript(model, ts)
    return gen, ts


def test_export_into_an_existing_folder_is_one_clear_line(tmp_path, exported, capsys):
    gen, _ = exported
    (tmp_path / "out").mkdir()
    assert export_main([str(tmp_path / "out"), "--model", str(gen), "--format", "torchscript"]) == 2
    err = capsys.readouterr().err
    assert "is a folder" in err and "Traceback" not in err
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_torchscript_export_given_as_a_model_is_named_as_such(tmp_path, exported, capsys):
    from esrgan_lit.evaluate import load_method

    _, ts = exported
    Image.fromarray(RNG.integers(0, 256, (6, 6, 3), dtype=np.uint8)).save(tmp_path / "i.png")
    assert (
        upscale_main([str(tmp_path / "i.png"), "-o", str(tmp_path / "o"), "--model", str(ts)]) == 2
    )
    assert export_main([str(tmp_path / "x.onnx"), "--model", str(ts), "--format", "onnx"]) == 2
    err = capsys.readouterr().err
    assert err.count("is a TorchScript export") == 2 and "corrupt" not in err
    with pytest.raises(CheckpointError, match="TorchScript export") as info:
        load_method(str(ts), "cpu")
    assert "corrupt" not in str(info.value)

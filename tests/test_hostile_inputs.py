"""Hostile inputs at the library level (issue 17 items 1, 2, 3, 5, 13): every reader refuses them
with an error naming the file or key, and nothing crashes the interpreter.

The files are made at test time by ``tests/hostile.py``. Decodes that once killed the process
(SIGSEGV in torchvision's libpng) run in a subprocess, so a regression fails one test instead of
taking the whole suite down.
"""

from __future__ import annotations

import math
import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from esrgan_lit.data.io import ImageReadError, probe_image
from esrgan_lit.data.io import read_image as data_read_image
from esrgan_lit.data.lmdb_io import encode_png
from esrgan_lit.inference.io import read_image
from esrgan_lit.utils.atomic import atomic_write_path
from esrgan_lit.weights import CheckpointError, interpolate, load_generator, save_generator
from hostile import (
    animated_gif,
    animated_png,
    animated_webp,
    bitflip_png,
    broken_weights,
    corrupt_idat_png,
    png_bomb_header,
    tiny_generator_state,
)

HERE = Path(__file__).resolve().parent
MAX_PIXELS_ENV = "ESRGAN_LIT_MAX_PIXELS"  # literal, so this module also imports on older code
CORRUPT_KINDS = [(8, 2), (8, 0), (16, 2), (16, 6), (16, 0), (16, 4)]  # (depth, colour type)


def _run_child(code: str, tmp_path: Path, timeout: int = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Item 2: corrupt PNG data never reaches a decoder that can crash the process


def test_corrupt_idat_is_a_clean_error_in_every_reader(tmp_path: Path) -> None:
    """6 crafted PNGs (valid CRCs, bad filter byte) x 5 readers, in a child process."""
    for depth, colour in CORRUPT_KINDS:
        corrupt_idat_png(tmp_path / f"bad_{depth}_{colour}.png", depth=depth, colour=colour)
    child = _run_child(
        """
        from pathlib import Path
        from esrgan_lit.data.io import read_image as data_read, probe_image
        from esrgan_lit.data.lmdb_io import decode_image_bytes
        from esrgan_lit.inference.io import read_image as infer_read
        from esrgan_lit.inference.png16 import read_png16
        readers = {
            "data": data_read, "probe": probe_image, "inference": infer_read,
            "lmdb": lambda p: decode_image_bytes(p.read_bytes(), name=str(p)),
            "png16": read_png16,
        }
        for path in sorted(Path(".").glob("bad_*.png")):
            for name, read in readers.items():
                try:
                    read(path)
                    print(name, path.name, "READ")
                except ValueError as err:
                    assert path.name in str(err), err
                    print(name, path.name, type(err).__name__, str(err).split(": ", 1)[1])
        """,
        tmp_path,
    )
    assert child.returncode == 0, f"reader crashed (rc {child.returncode}):\n{child.stderr[-2000:]}"
    lines = child.stdout.splitlines()
    assert len(lines) == 5 * len(CORRUPT_KINDS), child.stdout
    for line in lines:
        reader, name, verdict, *_ = line.split(" ")
        if reader == "png16" and not name.startswith("bad_16"):
            continue  # an 8-bit file is refused as "not 16-bit" by read_png16: also fine
        assert verdict == "ImageReadError", line
        assert "filter" in line or "corrupt" in line, line


def test_quick_check_catches_bad_filter_and_bitflip(tmp_path: Path) -> None:
    for depth, colour in CORRUPT_KINDS:
        path = corrupt_idat_png(tmp_path / f"bad_{depth}_{colour}.png", depth=depth, colour=colour)
        with pytest.raises(ImageReadError, match=rf"{path.name}: .*bad filter type 9 on row 3"):
            probe_image(path)  # listing-time check, no decode
    flip = bitflip_png(tmp_path / "flip.png")
    with pytest.raises(ImageReadError, match=r"flip\.png: corrupt PNG \(IDAT chunk CRC"):
        probe_image(flip)


def test_skip_bad_files_in_training_and_evaluation_survives_corrupt_png(tmp_path: Path) -> None:
    """data.skip_bad_files=true drops the crafted file at listing time (training and validation);
    without it the set is refused naming the file; the evaluation folder path says so too."""
    for i in range(3):
        rng = np.random.default_rng(i)
        img = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
        Image.fromarray(img).save(tmp_path / f"ok{i}.png")
    corrupt_idat_png(tmp_path / "bad.png", size=48)
    child = _run_child(
        f"""
        import logging
        from esrgan_lit.data import SRDataModule
        from esrgan_lit.data.io import ImageReadError
        from esrgan_lit.evaluation.sets import folder_sets
        root = {str(tmp_path)!r}
        dm = SRDataModule(scale=4, gt_size=32, batch_size=2, num_workers=0, skip_bad_files=True,
                          train_sets={{"t": {{"hr": root}}}}, val_sets={{"v": {{"hr": root}}}})
        dm.setup("fit")
        print("train", len(dm.train_set), [len(dm.train_set[i]["gt"]) for i in range(len(dm.train_set))])
        val = dm.val_dataloader()
        val = val if isinstance(val, list) else [val]
        print("val", sum(len(b["name"]) for b in val[0]))
        for kw in ({{}}, {{"check_files": "full"}}):
            try:
                SRDataModule(scale=4, gt_size=32, batch_size=2, num_workers=0,
                             train_sets={{"t": {{"hr": root}}}}, **kw).setup("fit")
                print("strict", "ACCEPTED")
            except ImageReadError as err:
                print("strict", "bad.png" in str(err), "skip_bad_files" in str(err))
        try:
            sets = folder_sets([root], 4)
            print("eval", "ACCEPTED", [len(list(s.samples())) for s in sets])
        except ImageReadError as err:
            print("eval", "bad.png" in str(err))
        """,
        tmp_path,
    )
    assert child.returncode == 0, f"crashed (rc {child.returncode}):\n{child.stderr[-3000:]}"
    assert child.stdout.splitlines() == [
        "train 3 [3, 3, 3]",
        "val 3",
        "strict True True",
        "strict True True",
        "eval True",
    ], child.stdout + child.stderr[-2000:]


# ---------------------------------------------------------------------------------------------
# Item 3: one pixel limit, from the header, before any decoding


@pytest.mark.parametrize(("depth", "colour"), [(16, 2), (16, 6), (8, 2), (16, 0)])
def test_png_bomb_header_refused_before_inflating(tmp_path: Path, depth: int, colour: int) -> None:
    bomb = png_bomb_header(tmp_path / "bomb.png", depth=depth, colour=colour)
    assert bomb.stat().st_size < 2_000_000  # the test file itself is small
    for read in (read_image, data_read_image, probe_image):
        start = time.perf_counter()
        with pytest.raises(ImageReadError) as info:
            read(bomb)
        assert time.perf_counter() - start < 1.0  # refused from the header, nothing inflated
        msg = str(info.value)
        assert "bomb.png" in msg and "16000x16000" in msg and "89,478,485" in msg, msg
        assert f"{MAX_PIXELS_ENV}=256000000" in msg, msg


def test_over_pillow_warning_threshold_refused_by_default(tmp_path: Path) -> None:
    # 10000x9000 = 90M pixels: over Pillow's warning threshold (89.5M), under its error (179M)
    bomb = png_bomb_header(tmp_path / "big.png", width=10000, height=9000, depth=8, colour=0)
    with pytest.raises(ImageReadError, match=rf"big\.png: image is 10000x9000.*{MAX_PIXELS_ENV}"):
        read_image(bomb)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".tif", ".bmp", "16.png", "16.tif"])
def test_pixel_limit_is_configurable_and_shared_by_every_format(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    path = tmp_path / f"img{suffix}"
    rgb = np.random.default_rng(0).integers(0, 256, (12, 10, 3), dtype=np.uint8)
    if suffix == "16.png":
        path.write_bytes(encode_png(rgb.astype(np.uint16) * 257))
    elif suffix == "16.tif":
        import tifffile

        tifffile.imwrite(path, rgb.astype(np.uint16) * 257, photometric="rgb")
    else:
        Image.fromarray(rgb).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # restored after
    monkeypatch.setenv(MAX_PIXELS_ENV, "100")
    with pytest.raises(ImageReadError, match=rf"img{suffix}: image is 10x12 = 120 pixels.*100"):
        read_image(path)
    with pytest.raises(ImageReadError, match=r"over the limit"):
        probe_image(path)
    monkeypatch.setenv(MAX_PIXELS_ENV, "none")  # what a user with trusted huge images does
    assert read_image(path).shape == (12, 10, 3)
    monkeypatch.setenv(MAX_PIXELS_ENV, "120")
    assert probe_image(path).width == 10


# ---------------------------------------------------------------------------------------------
# Item 5: multi-frame files are refused, not cut to their first frame


@pytest.mark.parametrize("make", [animated_gif, animated_webp, animated_png])
def test_animated_images_refused(tmp_path: Path, make) -> None:
    path = make(tmp_path / f"anim.{make.__name__.split('_')[1]}")
    for read in (read_image, data_read_image, probe_image):
        with pytest.raises(ImageReadError, match=rf"{path.name}: has 3 frames"):
            read(path)
    single = make(tmp_path / f"one.{make.__name__.split('_')[1]}", frames=1)
    assert read_image(single).shape[:2] == (8, 8)


# ---------------------------------------------------------------------------------------------
# Item 1: weights that would load silently but give garbage


@pytest.mark.parametrize("kind", ["nan", "inf", "-inf", "int64", "bool"])
@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_broken_weights_refused_naming_the_key(tmp_path: Path, kind: str, suffix: str) -> None:
    sd, key = broken_weights(kind)
    path = tmp_path / f"g{suffix}"
    if suffix == ".safetensors":
        save_file(sd, str(path))
    else:
        torch.save({"params_ema": sd}, path)
    what = "floating point" if kind in ("int64", "bool") else "non-finite"
    with pytest.raises(CheckpointError, match=rf"g{suffix}: key '{key}' .*{what}"):
        load_generator(path)
    good = tmp_path / f"ok{suffix}"
    save_generator(load_generator(tiny_generator_state()), good)
    with pytest.raises(CheckpointError, match=rf"key '{key}'"):
        interpolate(good, path, 0.5)
    if kind in ("int64", "bool"):  # the debugging flag admits NaN/Inf, never integers
        with pytest.raises(CheckpointError, match=key):
            load_generator(path, allow_nonfinite=True)
    else:
        model = load_generator(path, allow_nonfinite=True)
        assert not torch.isfinite(model.state_dict()[key]).all()


def test_export_verify_fails_on_nan_difference(tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("onnx")
    from esrgan_lit import export

    save_generator(load_generator(tiny_generator_state()), tmp_path / "g.safetensors")
    monkeypatch.setattr(export, "export_onnx", lambda model, out, **kw: Path(out).touch())
    monkeypatch.setattr(export, "verify_onnx", lambda model, path: float("nan"))
    argv = ["--model", str(tmp_path / "g.safetensors"), "--format", "onnx", "--verify"]
    assert export.main([*argv, str(tmp_path / "g.onnx")]) == 1
    monkeypatch.setattr(export, "verify_onnx", lambda model, path: 1e-6)
    assert export.main([*argv, str(tmp_path / "g2.onnx")]) == 0
    assert math.isfinite(1e-6)


# ---------------------------------------------------------------------------------------------
# Item 13: atomic writes end with the mode a plain write gives


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_writes_respect_umask(tmp_path: Path, umask: int) -> None:
    from esrgan_lit.inference.io import write_image

    old = os.umask(umask)
    try:
        with open(tmp_path / "plain.bin", "wb") as f:
            f.write(b"x")
        with atomic_write_path(tmp_path / "atomic.bin") as tmp:
            tmp.write_bytes(b"x")
        write_image(tmp_path / "out.png", np.zeros((4, 4, 3), np.uint8))
        save_generator(load_generator(tiny_generator_state()), tmp_path / "generator.safetensors")
    finally:
        os.umask(old)
    want = stat.S_IMODE((tmp_path / "plain.bin").stat().st_mode)
    assert want == 0o666 & ~umask
    for name in ("atomic.bin", "out.png", "generator.safetensors"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == want, name


def test_atomic_rewrite_keeps_existing_mode(tmp_path: Path) -> None:
    dst = tmp_path / "metrics.json"
    dst.write_text("{}")
    dst.chmod(0o640)
    with atomic_write_path(dst) as tmp:
        tmp.write_text('{"psnr": 1}')
    assert stat.S_IMODE(dst.stat().st_mode) == 0o640
    assert dst.read_text() == '{"psnr": 1}'


def test_set_max_pixels_reaches_the_readers(tmp_path: Path, monkeypatch) -> None:
    from esrgan_lit.imageio import max_pixels, set_max_pixels

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # restored after
    monkeypatch.delenv(MAX_PIXELS_ENV, raising=False)
    assert max_pixels() == 89_478_485  # Pillow's DecompressionBombWarning threshold
    Image.fromarray(np.zeros((12, 10), np.uint8)).save(tmp_path / "g.png")
    set_max_pixels(50)
    with pytest.raises(ImageReadError, match="over the limit of 50"):
        read_image(tmp_path / "g.png")
    set_max_pixels(None)
    assert max_pixels() is None and read_image(tmp_path / "g.png").shape == (12, 10, 1)
    monkeypatch.setenv(MAX_PIXELS_ENV, "lots")
    with pytest.raises(ValueError, match=f"{MAX_PIXELS_ENV}='lots'"):
        max_pixels()

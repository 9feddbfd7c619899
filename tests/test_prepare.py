"""Sub-image extraction (aligned HR/LR crops, resumable, atomic) and LMDB conversion/reading."""

from __future__ import annotations

import multiprocessing as mp
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from esrgan_lit.data import prepare
from esrgan_lit.data.lmdb_io import LmdbReader, encode_png, is_lmdb
from esrgan_lit.data.prepare import (
    convert_to_lmdb,
    extract_subimages,
    grid_positions,
    main,
    subimage_boxes,
)


def _save(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def _rgb(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _load(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


# ---------------------------------------------------------------------------------------------
# Grid


def test_grid_positions_follow_the_basicsr_rule() -> None:
    # 100 px, crop 48, step 24: 0, 24, 48 fit (48+48 = 96); 4 px left > thresh 0 -> edge crop 52
    assert grid_positions(100, 48, 24) == [0, 24, 48, 52]
    assert grid_positions(100, 48, 24, thresh=4) == [0, 24, 48]  # 4 px left is not > 4
    assert grid_positions(96, 48, 24) == [0, 24, 48]  # exact fit, no edge crop
    assert grid_positions(48, 48, 24) == [0]
    assert grid_positions(47, 48, 24) == []
    # DIV2K 0001 is 2040x1356: width 0..1560 by 240 fits exactly; height gets an edge crop at 876
    assert grid_positions(2040, 480, 240) == [0, 240, 480, 720, 960, 1200, 1440, 1560]
    assert grid_positions(1356, 480, 240) == [0, 240, 480, 720, 876]


def test_lr_boxes_are_hr_boxes_divided_by_scale() -> None:
    hr = subimage_boxes(1356, 2040, crop=480, step=240)
    lr = subimage_boxes(339, 510, crop=480, step=240, scale=4)
    assert len(hr) == len(lr) == 5 * 8
    assert [(t * 4, left * 4, s * 4) for t, left, s in lr] == hr
    with pytest.raises(ValueError, match="divisible"):
        subimage_boxes(100, 100, crop=50, step=24, scale=4)


# ---------------------------------------------------------------------------------------------
# Extraction


def test_hr_and_lr_crops_are_aligned(tmp_path: Path) -> None:
    hr = _rgb(100, 124, 0)
    _save(tmp_path / "hr/0001.png", hr)
    _save(tmp_path / "lr/0001x4.png", hr[::4, ::4])  # LR pixel (i, j) is HR pixel (4i, 4j)
    rep_hr = extract_subimages(tmp_path / "hr", tmp_path / "hr_sub", crop=48, step=24,
                               workers=1, progress=False)  # fmt: skip
    rep_lr = extract_subimages(tmp_path / "lr", tmp_path / "lr_sub", crop=48, step=24, scale=4,
                               workers=1, progress=False)  # fmt: skip
    assert rep_hr.written == rep_lr.written == 4 * 5 and not rep_hr.failures + rep_lr.failures
    names = sorted(p.name for p in (tmp_path / "hr_sub").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "lr_sub").iterdir())
    assert names[0] == "0001_s001.png" and names[-1] == "0001_s020.png"
    tops, lefts = [0, 24, 48, 52], [0, 24, 48, 72, 76]
    for k, (t, left) in enumerate([(t, c) for t in tops for c in lefts], start=1):
        hr_crop = _load(tmp_path / f"hr_sub/0001_s{k:03d}.png")
        lr_crop = _load(tmp_path / f"lr_sub/0001_s{k:03d}.png")
        np.testing.assert_array_equal(hr_crop, hr[t : t + 48, left : left + 48])
        assert lr_crop.shape == (12, 12, 3)
        np.testing.assert_array_equal(lr_crop, hr_crop[::4, ::4])


def test_mod_keeps_alignment_when_hr_is_not_a_multiple_of_scale(tmp_path: Path) -> None:
    hr = _rgb(102, 126, 1)  # 102 = 4*25 + 2: LR made from the mod-cropped HR
    _save(tmp_path / "hr/a.png", hr)
    _save(tmp_path / "lr/a.png", hr[:100:4, :124:4])
    kw = {"crop": 48, "step": 24, "workers": 1, "progress": False}
    extract_subimages(tmp_path / "hr", tmp_path / "hr_sub", mod=4, **kw)
    extract_subimages(tmp_path / "lr", tmp_path / "lr_sub", scale=4, **kw)
    hr_files = sorted((tmp_path / "hr_sub").iterdir())
    assert len(hr_files) == 20
    for f in hr_files:
        np.testing.assert_array_equal(_load(tmp_path / "lr_sub" / f.name), _load(f)[::4, ::4])


def test_second_run_skips_finished_files_and_cleans_temps(tmp_path: Path) -> None:
    _save(tmp_path / "hr/0001.png", _rgb(100, 124, 2))
    _save(tmp_path / "hr/0002.png", _rgb(64, 64, 3))
    kw = {"crop": 48, "step": 24, "workers": 1, "progress": False}
    first = extract_subimages(tmp_path / "hr", tmp_path / "sub", **kw)
    assert (first.written, first.skipped) == (24, 0)
    kept = tmp_path / "sub/0001_s002.png"
    mtime = kept.stat().st_mtime_ns
    (tmp_path / "sub/0001_s007.png").unlink()
    stale = tmp_path / "sub/.0001_s009.abc123.tmp.png"
    stale.write_bytes(b"half a png")
    second = extract_subimages(tmp_path / "hr", tmp_path / "sub", **kw)
    assert (second.written, second.skipped) == (1, 23)
    assert kept.stat().st_mtime_ns == mtime
    assert (tmp_path / "sub/0001_s007.png").is_file() and not stale.exists()


def test_a_crash_mid_image_leaves_no_partial_file(tmp_path: Path, monkeypatch) -> None:
    _save(tmp_path / "hr/0001.png", _rgb(100, 124, 4))
    real_save = Image.Image.save
    calls = {"n": 0}

    def flaky_save(self, fp, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            Path(fp).write_bytes(b"\x89PNG truncated")  # a partial write, then the "kill"
            raise KeyboardInterrupt
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", flaky_save)
    with pytest.raises(KeyboardInterrupt):
        extract_subimages(tmp_path / "hr", tmp_path / "sub", crop=48, step=24, workers=1,
                          progress=False)  # fmt: skip
    left = sorted(p.name for p in (tmp_path / "sub").iterdir())
    assert left == ["0001_s001.png", "0001_s002.png"]  # the interrupted crop is not there
    monkeypatch.setattr(Image.Image, "save", real_save)
    rep = extract_subimages(tmp_path / "hr", tmp_path / "sub", crop=48, step=24, workers=1,
                            progress=False)  # fmt: skip
    assert (rep.written, rep.skipped) == (18, 2)


def test_parallel_equals_serial_and_bad_files_are_reported(tmp_path: Path, capsys) -> None:
    for i in range(4):
        _save(tmp_path / f"hr/{i:04d}.png", _rgb(70, 90, 10 + i))
    (tmp_path / "hr/0009.png").write_bytes(b"not an image")
    _save(tmp_path / "hr/0010.png", _rgb(30, 90, 5))  # smaller than the crop
    kw = {"crop": 48, "step": 24, "progress": False}
    serial = extract_subimages(tmp_path / "hr", tmp_path / "s1", workers=1, **kw)
    parallel = extract_subimages(tmp_path / "hr", tmp_path / "s2", workers=2, **kw)
    assert serial.written == parallel.written == 4 * 2 * 3
    assert sorted(serial.failures) == sorted(parallel.failures)
    assert len(serial.failures) == 2
    assert any("0009.png" in f for f in serial.failures)
    assert any("0010.png" in f and "smaller" in f for f in serial.failures)
    for f in (tmp_path / "s1").iterdir():
        assert f.read_bytes() == (tmp_path / "s2" / f.name).read_bytes()
    code = main(["extract", "--input", str(tmp_path / "hr"), "--output", str(tmp_path / "s3"),
                 "--crop", "48", "--step", "24", "--workers", "1", "--no-progress"])  # fmt: skip
    assert code == 1 and "0009.png" in capsys.readouterr().err


def test_sixteen_bit_grey_is_kept(tmp_path: Path) -> None:
    g = np.random.default_rng(6).integers(0, 65536, (60, 60), dtype=np.uint16)
    Image.fromarray(g).save(tmp_path / "g.png")
    (tmp_path / "in").mkdir()
    (tmp_path / "g.png").rename(tmp_path / "in/g.png")
    extract_subimages(tmp_path / "in", tmp_path / "out", crop=48, step=24, workers=1,
                      progress=False)  # fmt: skip
    np.testing.assert_array_equal(_load(tmp_path / "out/g_s004.png"), g[12:60, 12:60])


def _decode_with_libpng(path: Path) -> np.ndarray:
    """Independent decoder (libpng via torchvision) that keeps 16-bit colour."""
    import torch
    from torchvision.io import ImageReadMode, decode_png

    data = torch.frombuffer(bytearray(path.read_bytes()), dtype=torch.uint8)
    return decode_png(data, ImageReadMode.UNCHANGED).permute(1, 2, 0).numpy().astype(np.uint16)


def test_sixteen_bit_colour_keeps_all_bits(tmp_path: Path) -> None:
    rgb16 = np.random.default_rng(12).integers(0, 65536, (60, 72, 3), dtype=np.uint16)
    src = tmp_path / "in/deep.png"
    src.parent.mkdir()
    src.write_bytes(encode_png(rgb16))
    np.testing.assert_array_equal(_decode_with_libpng(src), rgb16)  # the encoder itself
    rep = extract_subimages(tmp_path / "in", tmp_path / "out", crop=48, step=24, workers=1,
                            progress=False)  # fmt: skip
    assert rep.written == 2 * 2 and not rep.failures  # rows 0, 12; columns 0, 24
    np.testing.assert_array_equal(
        _decode_with_libpng(tmp_path / "out/deep_s004.png"), rgb16[12:60, 24:72]
    )


def test_empty_or_missing_input_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no images"):
        extract_subimages(tmp_path / "empty", tmp_path / "o", progress=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        extract_subimages(tmp_path / "nope", tmp_path / "o", progress=False)


# ---------------------------------------------------------------------------------------------
# LMDB


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    d = tmp_path / "imgs"
    _save(d / "0002.png", _rgb(20, 30, 7))
    _save(d / "0001.png", np.random.default_rng(8).integers(0, 256, (16, 24), dtype=np.uint8))
    g16 = np.random.default_rng(9).integers(0, 65536, (12, 10), dtype=np.uint16)
    Image.fromarray(g16).save(d / "0003.png")
    Image.fromarray(_rgb(18, 22, 10)).save(d / "0004.jpg", quality=90)
    tifffile.imwrite(d / "0005.tif", np.random.default_rng(13).integers(0, 65536, (9, 11, 3),
                                                                        dtype=np.uint16))  # fmt: skip
    (d / ".hidden.tmp.png").write_bytes(b"junk")  # ignored
    return d


def test_lmdb_png_round_trip_is_byte_exact(tmp_path: Path, image_folder: Path) -> None:
    pytest.importorskip("lmdb")  # the `lmdb` extra
    out = tmp_path / "x.lmdb"
    assert convert_to_lmdb(image_folder, out, workers=1, progress=False) == 5
    assert is_lmdb(out) and not is_lmdb(image_folder) and not is_lmdb(image_folder / "0001.png")
    reader = LmdbReader(out)
    assert reader.keys() == ["0001", "0002", "0003", "0004", "0005"]
    for key in ("0001", "0002", "0003"):
        src = image_folder / f"{key}.png"
        assert reader.read_bytes(key) == src.read_bytes()  # stored byte for byte
        arr = reader.read(key)
        ref = _load(src)
        np.testing.assert_array_equal(arr, ref.reshape(*ref.shape[:2], -1))
        assert arr.dtype == ref.dtype and arr.ndim == 3
    np.testing.assert_array_equal(reader.read("0004"), _load(image_folder / "0004.jpg"))
    deep = reader.read("0005")  # 16-bit colour TIFF, re-encoded as a 16-bit PNG
    assert deep.dtype == np.uint16
    np.testing.assert_array_equal(deep, tifffile.imread(image_folder / "0005.tif"))
    meta = (out / "meta_info.txt").read_text().splitlines()
    assert meta[1] == "0002.png (20,30,3) -1" and meta[3].startswith("0004.png (18,22,3) ")


def test_lmdb_raw_round_trip_and_worker_safety(tmp_path: Path, image_folder: Path) -> None:
    pytest.importorskip("lmdb")  # the `lmdb` extra
    out = tmp_path / "raw.lmdb"
    main(["lmdb", "--input", str(image_folder), "--output", str(out), "--format", "raw",
          "--workers", "2", "--no-progress"])  # fmt: skip
    reader = LmdbReader(out)
    g16 = reader.read("0003")
    assert g16.dtype == np.uint16 and g16.shape == (12, 10, 1)
    np.testing.assert_array_equal(g16[:, :, 0], _load(image_folder / "0003.png"))
    np.testing.assert_array_equal(reader.read("0002"), _load(image_folder / "0002.png"))
    np.testing.assert_array_equal(reader.read("0005"), tifffile.imread(image_folder / "0005.tif"))
    clone = pickle.loads(pickle.dumps(reader))  # what a DataLoader worker receives
    np.testing.assert_array_equal(clone.read("0002"), reader.read("0002"))
    reader.read("0001")  # the parent has the LMDB open when it forks the workers
    # One task per worker: a worker that ran a task has opened the LMDB itself, so a second
    # task there would see that handle, not one inherited across fork.
    with mp.get_context("fork").Pool(2, maxtasksperchild=1) as pool:
        child = pool.map(_read_in_child, [(reader, "0002"), (clone, "0004")], chunksize=1)
    np.testing.assert_array_equal(child[0], reader.read("0002"))
    np.testing.assert_array_equal(child[1], _load(image_folder / "0004.jpg"))
    with pytest.raises(KeyError, match="nope"):
        reader.read("nope")


def _read_in_child(args: tuple[LmdbReader, str]) -> np.ndarray:
    from esrgan_lit.data import lmdb_io

    assert not lmdb_io._ENVS, "a handle opened before fork reached the worker"
    reader, key = args
    return reader.read(key)


def test_lmdb_refuses_to_overwrite_and_reports_missing_extra(
    tmp_path: Path, image_folder: Path, monkeypatch
) -> None:
    pytest.importorskip("lmdb")  # the `lmdb` extra
    out = tmp_path / "x.lmdb"
    convert_to_lmdb(image_folder, out, workers=1, progress=False)
    with pytest.raises(FileExistsError, match="--overwrite"):
        convert_to_lmdb(image_folder, out, workers=1, progress=False)
    assert main(["lmdb", "--input", str(image_folder), "--output", str(out), "--no-progress"]) == 2
    assert LmdbReader(out).read("0002")[0, 0, 0] == _load(image_folder / "0002.png")[0, 0, 0]
    _save(image_folder / "0002.png", np.full((20, 30, 3), 7, np.uint8))  # the source changes
    convert_to_lmdb(image_folder, out, workers=1, progress=False, overwrite=True)
    assert (LmdbReader(out).read("0002") == 7).all()  # no stale handle on the old database
    LmdbReader(out).close()  # drop this process's open handle
    monkeypatch.setitem(sys.modules, "lmdb", None)
    reader = LmdbReader(out)  # listing keys needs only meta_info.txt
    with pytest.raises(ImportError, match=r"esrgan-lit\[lmdb\]"):
        reader.read("0001")
    with pytest.raises(ImportError, match=r"esrgan-lit\[lmdb\]"):
        convert_to_lmdb(image_folder, tmp_path / "y.lmdb", workers=1, progress=False)
    assert not (tmp_path / "y.lmdb").exists()


def test_lmdb_of_subimages_matches_the_folder(tmp_path: Path) -> None:
    pytest.importorskip("lmdb")  # the `lmdb` extra
    _save(tmp_path / "hr/0001.png", _rgb(72, 72, 11))
    extract_subimages(tmp_path / "hr", tmp_path / "sub", crop=48, step=24, workers=1,
                      progress=False)  # fmt: skip
    convert_to_lmdb(tmp_path / "sub", tmp_path / "sub.lmdb", workers=1, progress=False)
    reader = LmdbReader(tmp_path / "sub.lmdb")
    assert reader.keys() == [f"0001_s{i:03d}" for i in range(1, 5)]
    assert prepare.output_stem("0001x4", 4) == "0001" and prepare.output_stem("x4", 4) == "x4"

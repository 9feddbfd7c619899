"""Datasets, pairing, crops, augmentation and samplers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from esrgan_lit.data.datasets import EvalDataset, TrainDataset, eval_collate
from esrgan_lit.data.pairs import build_pairs
from esrgan_lit.data.samplers import ShardSampler, TrainSampler
from esrgan_lit.data.sources import open_source
from esrgan_lit.data.transforms import bicubic_lr, bicubic_lr_window, dihedral
from esrgan_lit.ops import imresize


def _save(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr).save(path)


def _rand(h: int, w: int, seed: int, c: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, c), dtype=np.uint8)


def _pairs(hr: Path, lr: Path | None, scale: int = 4, min_size: int = 0):
    return build_pairs(
        open_source(hr), open_source(lr) if lr else None, scale=scale, min_size=min_size
    )


@pytest.mark.parametrize(
    ("hr_name", "lr_name"),
    [
        ("0001.png", "0001x4.png"),  # DIV2K
        ("000001.png", "000001x4.png"),  # Flickr2K
        ("baby.png", "baby.png"),  # same stem
        ("0001_s001.png", "0001x4_s001.png"),  # sub-images (BasicSR-style LR names)
        ("0001_s001.png", "0001_s001.png"),  # sub-images (shared stems)
    ],
)
def test_pairing_conventions(tmp_path: Path, hr_name: str, lr_name: str) -> None:
    _save(tmp_path / "hr" / hr_name, _rand(16, 16, 0))
    _save(tmp_path / "hr" / ("z" + hr_name), _rand(16, 16, 1))
    _save(tmp_path / "lr" / lr_name, _rand(4, 4, 2))
    _save(tmp_path / "lr" / ("z" + lr_name), _rand(4, 4, 3))
    pairs = _pairs(tmp_path / "hr", tmp_path / "lr")
    assert [(p.hr_key, p.lr_key) for p in pairs] == [
        (Path(hr_name).stem, Path(lr_name).stem),
        ("z" + Path(hr_name).stem, "z" + Path(lr_name).stem),
    ]


def test_nested_categories_are_read_recursively(tmp_path: Path) -> None:
    for cat, n in (("animal", 2), ("sky", 1)):
        for i in range(n):
            _save(tmp_path / "OST" / cat / f"{cat}_{i:04d}.png", _rand(16, 16, i))
    (tmp_path / "OST" / ".hidden").mkdir()
    _save(tmp_path / "OST" / ".hidden" / "x.png", _rand(16, 16, 9))
    pairs = _pairs(tmp_path / "OST", None)
    assert [p.hr_key for p in pairs] == ["animal/animal_0000", "animal/animal_0001", "sky/sky_0000"]
    assert pairs[0].name == "animal_0000" and pairs[0].lr is None


def test_training_crop_is_aligned_under_every_augmentation(tmp_path: Path) -> None:
    # LR pixel (i, j) <-> HR block (4i..4i+3, 4j..4j+3): then gt[::4, ::4] must equal lq
    lr = _rand(20, 17, 5)
    hr = np.repeat(np.repeat(lr, 4, axis=0), 4, axis=1)
    hr = np.concatenate([hr, _rand(3, hr.shape[1], 6)], axis=0)  # 83 rows: mod-crop drops 3
    _save(tmp_path / "hr" / "a.png", hr)
    _save(tmp_path / "lr" / "ax4.png", lr)
    ds = TrainDataset(_pairs(tmp_path / "hr", tmp_path / "lr", min_size=32), scale=4, gt_size=32)
    seen = set()
    for seed in range(64):
        item = ds[(0, seed)]
        assert item["lq"].shape == (3, 8, 8) and item["gt"].shape == (3, 32, 32)
        assert item["gt"].dtype == torch.float32 and 0 <= item["gt"].min() <= item["gt"].max() <= 1
        torch.testing.assert_close(item["gt"][:, ::4, ::4], item["lq"], rtol=0, atol=0)
        seen.add(item["lq"].numpy().tobytes())
    assert len(seen) > 32  # crops and augmentations vary with the seed
    again = ds[(0, 7)]
    torch.testing.assert_close(again["gt"], ds[(0, 7)]["gt"], rtol=0, atol=0)


def test_rgb_permute_reorders_both_channels_alike(tmp_path: Path) -> None:
    lr = _rand(20, 17, 5)
    hr = np.repeat(np.repeat(lr, 4, axis=0), 4, axis=1)
    _save(tmp_path / "hr" / "a.png", hr)
    _save(tmp_path / "lr" / "ax4.png", lr)
    pairs = _pairs(tmp_path / "hr", tmp_path / "lr", min_size=32)
    plain = TrainDataset(pairs, scale=4, gt_size=32)
    perm = TrainDataset(pairs, scale=4, gt_size=32, rgb_permute=True)
    orders = set()
    for seed in range(48):
        a, b = plain[(0, seed)], perm[(0, seed)]
        torch.testing.assert_close(b["gt"][:, ::4, ::4], b["lq"], rtol=0, atol=0)  # still aligned
        # same crop and flip as without the option; only the channel order differs
        order = tuple(
            next(c for c in range(3) if torch.equal(b["gt"][i], a["gt"][c])) for i in range(3)
        )
        assert sorted(order) == [0, 1, 2]
        torch.testing.assert_close(b["lq"], a["lq"][list(order)], rtol=0, atol=0)
        orders.add(order)
    assert len(orders) == 6  # every channel order is drawn, the identity included


def test_dihedral_gives_eight_distinct_transforms() -> None:
    img = np.arange(12).reshape(2, 2, 3)
    outs = {dihedral(img, k).tobytes() + bytes(dihedral(img, k).shape) for k in range(8)}
    assert len(outs) == 8
    sq = np.arange(9).reshape(3, 3, 1)
    assert np.array_equal(dihedral(sq, 5)[:, :, 0], np.rot90(sq[:, :, 0], 1))  # hflip, transpose
    assert np.array_equal(dihedral(sq, 6)[:, :, 0], np.rot90(sq[:, :, 0], -1))  # vflip, transpose


def test_generated_lr_equals_full_image_bicubic(tmp_path: Path) -> None:
    hr = _rand(70, 61, 8)
    _save(tmp_path / "hr" / "a.png", hr)
    ds = TrainDataset(
        _pairs(tmp_path / "hr", None, min_size=24),
        scale=4,
        gt_size=24,
        use_hflip=False,
        use_rot=False,
    )
    full_lr = bicubic_lr(hr[:68, :60], 4)
    ref = torch.from_numpy(hr[:68, :60].transpose(2, 0, 1)).double()
    expect = torch.floor(imresize(ref, 0.25) + 0.5).clamp(0, 255).numpy().transpose(1, 2, 0)
    assert np.array_equal(full_lr, expect.astype(np.uint8))
    hits = 0
    for seed in range(12):
        item = ds[(0, seed)]
        gt = np.round(item["gt"].numpy().transpose(1, 2, 0) * 255).astype(np.uint8)
        # locate the HR crop, then its LR must be the full-image LR there (incl. borders)
        for top in range(0, 68 - 24 + 1, 4):
            for left in range(0, 60 - 24 + 1, 4):
                if np.array_equal(hr[top : top + 24, left : left + 24], gt):
                    lq = np.round(item["lq"].numpy().transpose(1, 2, 0) * 255).astype(np.uint8)
                    assert np.array_equal(
                        lq, full_lr[top // 4 : top // 4 + 6, left // 4 : left // 4 + 6]
                    )
                    hits += 1
    assert hits == 12
    # the window helper at every corner and edge
    for top, left in ((0, 0), (11, 9), (0, 9), (11, 0), (5, 4)):
        win = bicubic_lr_window(hr[:68, :60], 4, top, left, 6, 6)
        assert np.array_equal(win, full_lr[top : top + 6, left : left + 6])


def test_sixteen_bit_and_grey_training_images(tmp_path: Path) -> None:
    from test_data_io import write_png16

    arr16 = np.random.default_rng(4).integers(0, 65536, size=(32, 32, 3)).astype(np.uint16)
    (tmp_path / "hr").mkdir()
    write_png16(tmp_path / "hr" / "deep.png", arr16)
    _save(tmp_path / "hr" / "grey.png", _rand(32, 32, 5, c=1))
    ds = TrainDataset(
        _pairs(tmp_path / "hr", None, min_size=32),
        scale=4,
        gt_size=32,
        use_hflip=False,
        use_rot=False,
    )
    deep, grey = ds[(0, 0)], ds[(1, 0)]
    torch.testing.assert_close(
        deep["gt"], torch.from_numpy(arr16.transpose(2, 0, 1) / 65535.0).float()
    )
    assert grey["gt"].shape == (3, 32, 32)
    torch.testing.assert_close(grey["gt"][0], grey["gt"][2], rtol=0, atol=0)


def test_eval_dataset_mod_crops_and_generates_matlab_lr(tmp_path: Path) -> None:
    hr = _rand(103, 90, 6)
    _save(tmp_path / "hr" / "pic.png", hr)
    _save(tmp_path / "hr" / "mono.png", _rand(40, 44, 7, c=1))
    ds = EvalDataset(_pairs(tmp_path / "hr", None), scale=4, name="mine")
    mono, pic = ds[0], ds[1]
    assert pic["name"] == "pic" and pic["grey"] is False
    assert pic["gt"].shape == (3, 100, 88) and pic["lq"].shape == (3, 25, 22)
    lr = bicubic_lr(hr[:100, :88], 4)
    torch.testing.assert_close(pic["lq"], torch.from_numpy(lr.transpose(2, 0, 1) / 255.0).float())
    assert (
        mono["grey"] is True and mono["gt"].shape == (1, 40, 44) and mono["lq"].shape == (1, 10, 11)
    )
    batch = eval_collate([pic])
    assert (
        batch["name"] == ["pic"]
        and batch["grey"] == [False]
        and batch["lq"].shape == (1, 3, 25, 22)
    )
    # a given LR folder is read instead
    _save(tmp_path / "lr" / "picx4.png", _rand(25, 22, 8))
    _save(tmp_path / "lr" / "monox4.png", _rand(10, 11, 9, c=1))
    ds2 = EvalDataset(_pairs(tmp_path / "hr", tmp_path / "lr"), scale=4, name="mine")
    torch.testing.assert_close(
        ds2[1]["lq"], torch.from_numpy(_rand(25, 22, 8).transpose(2, 0, 1) / 255.0).float()
    )


def test_train_sampler_is_a_pure_function_of_seed_epoch_position() -> None:
    full = TrainSampler(10, batch_size=4, samples_per_epoch=30, seed=3)
    assert len(full) == 28  # 7 full batches
    full.set_epoch(2)
    stream = list(full)
    assert len(stream) == 28 and sorted({i for i, _ in stream}) == list(range(10))
    again = TrainSampler(10, batch_size=4, samples_per_epoch=30, seed=3)
    again.set_epoch(2)
    assert list(again) == stream
    again.set_epoch(1)
    assert list(again) != stream
    resumed = TrainSampler(10, batch_size=4, samples_per_epoch=30, seed=3)
    resumed.resume(epoch=2, batches_done=3)
    assert list(resumed) == stream[12:]  # skips exactly 3 batches, once
    assert list(resumed) == stream
    # DDP: two ranks share the epoch's positions without overlap, same seeds per position
    ranks = [
        TrainSampler(10, batch_size=4, samples_per_epoch=30, seed=3, rank=r, world_size=2)
        for r in range(2)
    ]
    for r in ranks:
        r.set_epoch(2)
    parts = [list(r) for r in ranks]
    assert len(parts[0]) == len(parts[1]) == 12
    order = full.order(2)
    for r, part in enumerate(parts):
        for i, (idx, _) in enumerate(part):
            pos = i * 2 + r
            assert idx == order[pos]
    assert not {s for _, s in parts[0]} & {s for _, s in parts[1]}


def test_shard_sampler_splits_without_padding() -> None:
    shards = [list(ShardSampler(5, rank=r, world_size=2)) for r in range(2)]
    assert shards == [[0, 2, 4], [1, 3]]
    assert sorted(shards[0] + shards[1]) == list(range(5))
    assert list(ShardSampler(5)) == list(range(5))


def test_lmdb_reads_like_the_folder(tmp_path: Path) -> None:
    lmdb_io = pytest.importorskip("esrgan_lit.data.lmdb_io")
    pytest.importorskip("lmdb")
    for i in range(3):
        hr = _rand(40, 36, i)
        _save(tmp_path / "hr" / f"{i:04d}.png", hr)
        _save(tmp_path / "lr" / f"{i:04d}x4.png", bicubic_lr(hr, 4))
    for side in ("hr", "lr"):
        files = lmdb_io.list_images(tmp_path / side)
        items = (lmdb_io.encode_for_lmdb(p, "raw", 1) for p in files)
        lmdb_io.write_lmdb(items, tmp_path / f"{side}.lmdb", map_size=1 << 24)
    folder = TrainDataset(
        _pairs(tmp_path / "hr", tmp_path / "lr", min_size=16), scale=4, gt_size=16
    )
    lmdb = TrainDataset(
        _pairs(tmp_path / "hr.lmdb", tmp_path / "lr.lmdb", min_size=16), scale=4, gt_size=16
    )
    assert [p.lr_key for p in lmdb.reader.pairs] == ["0000x4", "0001x4", "0002x4"]
    for item in [(0, 1), (1, 2), (2, 3)]:
        a, b = folder[item], lmdb[item]
        torch.testing.assert_close(a["lq"], b["lq"], rtol=0, atol=0)
        torch.testing.assert_close(a["gt"], b["gt"], rtol=0, atol=0)


def test_unchecked_listing_still_fails_clearly_at_read_time(tmp_path: Path) -> None:
    from esrgan_lit.data.io import ImageReadError

    _save(tmp_path / "hr" / "small.png", _rand(20, 20, 0))
    ds = TrainDataset(build_pairs(open_source(tmp_path / "hr"), None, scale=4), scale=4, gt_size=32)
    with pytest.raises(ImageReadError, match=r"small\.png: HR image is 20x20, smaller"):
        ds[0]

"""Bad input (issue 3, section 6): each problem fails in setup with the file named, or is skipped
with a warning under ``skip_bad_files: true``. Never a silently mismatched pair."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from esrgan_lit.data import SRDataModule
from esrgan_lit.data.io import ImageReadError
from esrgan_lit.data.sources import DataNotFoundError

SET5 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "benchmarks" / "Set5"


def _img(path: Path, h: int, w: int, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)


def _dm(hr: Path, lr: Path | None = None, **kw) -> SRDataModule:
    args = {"scale": 4, "gt_size": 32, "batch_size": 2, "num_workers": 0}
    args.update(kw)
    return SRDataModule(train_sets={"t": {"hr": str(hr), "lr": str(lr) if lr else None}}, **args)


@pytest.fixture
def good(tmp_path: Path) -> tuple[Path, Path]:
    """Three DIV2K-style pairs: hr/000{i}.png 48x40 and lr/000{i}x4.png 12x10."""
    for i in range(1, 4):
        _img(tmp_path / "hr" / f"000{i}.png", 48, 40, i)
        _img(tmp_path / "lr" / f"000{i}x4.png", 12, 10, i + 10)
    return tmp_path / "hr", tmp_path / "lr"


def _fails(dm: SRDataModule, exc: type[BaseException], *patterns: str) -> str:
    with pytest.raises(exc) as info:
        dm.setup("fit")
    msg = str(info.value)
    for pat in patterns:
        assert pat in msg, f"{pat!r} not in error message:\n{msg}"
    return msg


def _skips(dm: SRDataModule, caplog: pytest.LogCaptureFixture, name: str, expected: int) -> None:
    with caplog.at_level(logging.WARNING):
        dm.setup("fit")
    assert dm.train_set is not None and len(dm.train_set) == expected
    assert name in caplog.text
    batch = next(iter(dm.train_dataloader()))
    assert batch["gt"].shape == (2, 3, 32, 32)


def test_corrupt_image(good, caplog) -> None:
    hr, lr = good
    (hr / "0002.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    _fails(_dm(hr, lr), ImageReadError, "0002.png", "corrupt PNG")
    _skips(_dm(hr, lr, skip_bad_files=True), caplog, "0002.png", 2)


def test_truncated_image(good, caplog) -> None:
    hr, lr = good
    data = (lr / "0003x4.png").read_bytes()
    (lr / "0003x4.png").write_bytes(data[: len(data) // 2])
    _fails(_dm(hr, lr), ImageReadError, "0003x4.png", "truncated")
    _skips(_dm(hr, lr, skip_bad_files=True), caplog, "0003x4.png", 2)


def test_non_image_file(good, caplog) -> None:
    hr, lr = good
    (hr / "notes.txt").write_text("not an image")
    _fails(_dm(hr, lr), ImageReadError, "notes.txt", "not an image file")
    _skips(_dm(hr, lr, skip_bad_files=True), caplog, "notes.txt", 3)


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    _fails(_dm(tmp_path / "empty"), DataNotFoundError, "empty", "contains no images")


def test_wrong_path_says_how_to_get_data(tmp_path: Path) -> None:
    # a path inside data_dir, where data.download=true puts the archives (outside it, a download
    # would not help and is not offered: see tests/test_hints_work.py)
    dm = _dm(tmp_path / "DIV2K_train_HR", data_dir=str(tmp_path), downloads=["div2k"])
    msg = _fails(dm, DataNotFoundError, "DIV2K_train_HR", "does not exist")
    for hint in ("data.download=true", "data.train_sets.t.hr", "data=sample"):
        assert hint in msg


def test_hr_smaller_than_gt_size(good, caplog) -> None:
    hr, lr = good
    _img(hr / "0004.png", 28, 40, 4)
    _img(lr / "0004x4.png", 7, 10, 5)
    _fails(_dm(hr, lr), ImageReadError, "0004.png", "40x28", "smaller than the 32x32 training crop")
    _skips(_dm(hr, lr, skip_bad_files=True), caplog, "0004.png", 3)


def test_lr_not_exactly_hr_over_scale(good, caplog) -> None:
    hr, lr = good
    _img(lr / "0002x4.png", 12, 11, 2)  # HR 48x40 -> LR must be 12x10
    _fails(_dm(hr, lr), ImageReadError, "0002x4.png", "LR image is 11x12, expected 10x12")
    _skips(_dm(hr, lr, skip_bad_files=True), caplog, "0002x4.png", 2)


def test_hr_without_lr(good, caplog) -> None:
    hr, lr = good
    (lr / "0001x4.png").unlink()
    _fails(_dm(hr, lr), ImageReadError, "0001.png", "no LR image")
    _skips(_dm(hr, lr, skip_bad_files=True), caplog, "0001.png", 2)


def test_full_check_finds_corruption_inside(good) -> None:
    hr, lr = good
    data = bytearray((hr / "0001.png").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (hr / "0001.png").write_bytes(bytes(data))
    # the quick (default) check verifies chunk CRCs too (issue 17 item 2)
    _fails(_dm(hr, lr), ImageReadError, "0001.png", "CRC")
    _fails(_dm(hr, lr, check_files="full"), ImageReadError, "0001.png", "CRC")


def test_bad_file_in_a_validation_set(good) -> None:
    hr, _ = good
    (hr / "0003.png").write_bytes(b"nope")
    dm = SRDataModule(scale=4, val_sets={"mine": {"hr": str(hr)}}, num_workers=0)
    with pytest.raises(ImageReadError, match=r"0003\.png"):
        dm.setup("validate")


@pytest.mark.skipif(not SET5.is_dir(), reason="shared Set5 absent")
def test_set5_smaller_than_crop_and_without_lr(tmp_path: Path) -> None:
    """Real Set5: bird (288x288) is smaller than a 300 crop; an LR folder missing 'woman'."""
    with pytest.raises(ImageReadError, match=r"bird.png: HR image is 288x288"):
        SRDataModule(scale=4, gt_size=300, train_sets={"s": str(SET5)}, num_workers=0).setup("fit")
    lr = tmp_path / "lr"
    lr.mkdir()
    for p in sorted(SET5.glob("*.png")):
        if p.stem != "woman":
            w, h = Image.open(p).size
            Image.open(p).convert("RGB").resize((w // 4, h // 4)).save(lr / f"{p.stem}x4.png")
    dm = SRDataModule(scale=4, val_sets={"Set5": {"hr": str(SET5), "lr": str(lr)}}, num_workers=0)
    with pytest.raises(ImageReadError, match=r"woman.png: no LR image"):
        dm.setup("validate")
    shutil.copy(SET5 / "woman.png", lr / "womanx4.png")  # full size: not HR/4
    with pytest.raises(ImageReadError, match=r"womanx4.png: LR image is 228x344, expected 57x86"):
        SRDataModule(scale=4, val_sets={"Set5": {"hr": str(SET5), "lr": str(lr)}}).setup("validate")

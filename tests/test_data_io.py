"""Image decoding: every stored form becomes one convention, errors name the file."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from esrgan_lit.data.io import (
    ImageReadError,
    probe_image,
    read_image,
    to_float,
    to_rgb,
)


def write_png16(path: Path, arr: np.ndarray) -> None:
    """Minimal 16-bit PNG writer (Pillow cannot write 16-bit colour)."""
    h, w, c = arr.shape
    colour = {1: 0, 3: 2, 4: 6}[c]
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", w, h, 16, colour, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
    path.write_bytes(png + chunk(b"IEND", b""))


@pytest.fixture
def rgb() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(6, 5, 3), dtype=np.uint8)


def test_rgb_png_and_jpeg(tmp_path: Path, rgb: np.ndarray) -> None:
    Image.fromarray(rgb).save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    assert out.dtype == np.uint8 and np.array_equal(out, rgb)
    Image.fromarray(rgb).save(tmp_path / "a.jpg", quality=95)
    jpg = read_image(tmp_path / "a.jpg")
    assert jpg.shape == (6, 5, 3) and jpg.dtype == np.uint8


def test_grey_palette_rgba_la(tmp_path: Path, rgb: np.ndarray) -> None:
    grey = rgb[:, :, 0]
    Image.fromarray(grey).save(tmp_path / "g.png")
    g = read_image(tmp_path / "g.png")
    assert g.shape == (6, 5, 1) and np.array_equal(g[:, :, 0], grey)
    assert np.array_equal(to_rgb(g), np.repeat(g, 3, axis=2))

    pal = Image.fromarray(rgb).quantize(colors=8)
    pal.save(tmp_path / "p.png")
    p = read_image(tmp_path / "p.png")
    assert p.shape == (6, 5, 3)
    assert np.array_equal(p, np.asarray(pal.convert("RGB")))

    rgba = np.concatenate([rgb, np.full((6, 5, 1), 7, np.uint8)], axis=2)
    Image.fromarray(rgba).save(tmp_path / "a.png")
    assert np.array_equal(read_image(tmp_path / "a.png"), rgb)  # alpha dropped, colour kept

    Image.fromarray(rgba[:, :, :2].copy(), mode="LA").save(tmp_path / "la.png")
    la = read_image(tmp_path / "la.png")
    assert la.shape == (6, 5, 1) and np.array_equal(la[:, :, 0], rgb[:, :, 0])


def test_16bit_png_keeps_all_bits(tmp_path: Path) -> None:
    arr = np.random.default_rng(1).integers(0, 65536, size=(4, 3, 3)).astype(np.uint16)
    write_png16(tmp_path / "c16.png", arr)
    out = read_image(tmp_path / "c16.png")
    assert out.dtype == np.uint16 and np.array_equal(out, arr)
    f = to_float(out)
    np.testing.assert_allclose(f, arr / 65535.0, rtol=0, atol=1e-7)
    assert f.dtype == np.float32
    write_png16(tmp_path / "g16.png", arr[:, :, :1])
    g = read_image(tmp_path / "g16.png")
    assert g.dtype == np.uint16 and np.array_equal(g, arr[:, :, :1])
    info = probe_image(tmp_path / "c16.png")
    assert (info.height, info.width, info.channels, info.bit_depth) == (4, 3, 3, 16)


def test_16bit_tiff(tmp_path: Path) -> None:
    tifffile = pytest.importorskip("tifffile")
    arr = np.random.default_rng(2).integers(0, 65536, size=(5, 4, 3)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "c.tif", arr)
    out = read_image(tmp_path / "c.tif")
    assert out.dtype == np.uint16 and np.array_equal(out, arr)


def test_errors_name_the_file(tmp_path: Path, rgb: np.ndarray) -> None:
    missing = tmp_path / "nope.png"
    with pytest.raises(FileNotFoundError, match=r"nope\.png"):
        read_image(missing)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"this is not a png at all")
    with pytest.raises(ImageReadError, match=r"junk\.png"):
        read_image(junk)
    with pytest.raises(ImageReadError, match=r"junk\.png.*not an image"):
        probe_image(junk)
    text = tmp_path / "readme.jpg"
    text.write_text("hello")
    with pytest.raises(ImageReadError, match=r"readme\.jpg"):
        read_image(text)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"empty\.png: empty file"):
        probe_image(empty)


def test_truncated_and_corrupt_files_are_detected(tmp_path: Path, rgb: np.ndarray) -> None:
    big = np.random.default_rng(3).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    Image.fromarray(big).save(tmp_path / "ok.png")
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=r"cut.png: truncated PNG"):
        probe_image(tmp_path / "cut.png")
    with pytest.raises(ImageReadError, match=r"cut\.png"):
        read_image(tmp_path / "cut.png")
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    (tmp_path / "flip.png").write_bytes(bytes(flipped))
    for deep in (False, True):  # the quick check verifies chunk CRCs too (issue 17 item 2)
        with pytest.raises(ImageReadError, match=r"flip.png: corrupt PNG \(IDAT chunk CRC"):
            probe_image(tmp_path / "flip.png", deep=deep)
    Image.fromarray(big).save(tmp_path / "ok.jpg")
    jdata = (tmp_path / "ok.jpg").read_bytes()
    probe_image(tmp_path / "ok.jpg")
    (tmp_path / "cut.jpg").write_bytes(jdata[: len(jdata) * 2 // 3])
    with pytest.raises(ImageReadError, match=r"cut\.jpg: truncated JPEG"):
        probe_image(tmp_path / "cut.jpg")


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_data_reader_applies_exif_orientation_and_probe_agrees(tmp_path: Path, suffix: str) -> None:
    """One reader for data and inference (issue 13 item 6): the data pipeline sees the image
    upright, as a viewer and the upscaler do, and the listing-time probe reports that size."""
    from esrgan_lit.inference.io import read_image as inference_read

    a = np.zeros((20, 30, 3), np.uint8)
    a[:5] = 255  # a white band at the top
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(a).save(tmp_path / f"o{suffix}", exif=exif, quality=100)
    out = read_image(tmp_path / f"o{suffix}")
    assert out.shape == (30, 20, 3)
    assert out[:, -5:].mean() > 200 and out[:, :10].mean() < 50  # the band is now on the right
    np.testing.assert_array_equal(out, inference_read(tmp_path / f"o{suffix}"))
    info = probe_image(tmp_path / f"o{suffix}")
    assert (info.height, info.width) == (30, 20)

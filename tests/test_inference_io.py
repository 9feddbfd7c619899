"""Image I/O: 16-bit PNG codec, EXIF orientation, palette/grey/alpha, atomic writes, bad files."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from esrgan_lit.inference.io import _orient, read_image, to_uint8, write_image
from esrgan_lit.inference.png16 import read_png16, write_png16

RNG = np.random.default_rng(0)


def rand16(*shape: int) -> np.ndarray:
    return RNG.integers(0, 65536, size=shape, dtype=np.uint16)


@pytest.mark.parametrize("channels", [2, 3, 4])
def test_png16_round_trip_and_pillow_agrees_on_high_bytes(tmp_path, channels):
    a = rand16(7, 9, channels)
    write_png16(tmp_path / "a.png", a)
    np.testing.assert_array_equal(read_png16(tmp_path / "a.png"), a)
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), a)
    # Pillow (an independent decoder) reads 16-bit colour as the high bytes of each sample
    mode = {2: "LA", 3: "RGB", 4: "RGBA"}[channels]
    pil = np.asarray(Image.open(tmp_path / "a.png").convert(mode))
    np.testing.assert_array_equal(pil.reshape(a.shape), (a >> 8).astype(np.uint8))


def test_png16_grey_writer_read_by_pillow(tmp_path):
    a = rand16(5, 6, 1)
    write_png16(tmp_path / "g.png", a)
    im = Image.open(tmp_path / "g.png")
    assert im.mode == "I;16"
    np.testing.assert_array_equal(np.asarray(im), a[:, :, 0])


def _encode_filtered(a: np.ndarray, filters: list[int]) -> bytes:
    """Reference PNG encoder straight from the spec, one byte at a time (test oracle)."""
    h, w, c = a.shape
    bpp = 2 * c
    rows = [list(a[y].astype(">u2").tobytes()) for y in range(h)]
    raw = bytearray()
    for y, kind in enumerate(filters):
        cur, up = rows[y], rows[y - 1] if y else [0] * len(rows[y])
        raw.append(kind)
        for i, x in enumerate(cur):
            left = cur[i - bpp] if i >= bpp else 0
            ul = up[i - bpp] if i >= bpp else 0
            if kind == 0:
                pred = 0
            elif kind == 1:
                pred = left
            elif kind == 2:
                pred = up[i]
            elif kind == 3:
                pred = (left + up[i]) // 2
            else:
                p = left + up[i] - ul
                pa, pb, pc = abs(p - left), abs(p - up[i]), abs(p - ul)
                pred = left if pa <= pb and pa <= pc else (up[i] if pb <= pc else ul)
            raw.append((x - pred) % 256)

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, {3: 2, 4: 6}[c], 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def test_png16_reader_handles_every_filter(tmp_path):
    a = rand16(5, 4, 3)
    a[2:] = a[1]  # some smooth rows so Up/Average/Paeth take varied branches
    (tmp_path / "f.png").write_bytes(_encode_filtered(a, [1, 2, 3, 4, 0]))
    np.testing.assert_array_equal(read_png16(tmp_path / "f.png"), a)


def test_exif_orientation_is_applied(tmp_path):
    a = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 10
    for orientation, expected in [(3, a[::-1, ::-1]), (6, np.rot90(a, -1)), (8, np.rot90(a, 1))]:
        exif = Image.Exif()
        exif[0x0112] = orientation
        Image.fromarray(a).save(tmp_path / "o.png", exif=exif)
        np.testing.assert_array_equal(read_image(tmp_path / "o.png"), expected)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_array_orientation_matches_pillow(orientation):
    # our NumPy path (used for 16-bit files) against Pillow's exif_transpose as the oracle
    a = RNG.integers(0, 256, size=(3, 5, 3), dtype=np.uint8)
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = orientation
    im.info["exif"] = exif.tobytes()
    want = np.asarray(ImageOps.exif_transpose(im))
    np.testing.assert_array_equal(_orient(a, orientation), want)


def test_modes_palette_grey_alpha(tmp_path):
    rgb = RNG.integers(0, 256, size=(6, 5, 3), dtype=np.uint8)
    Image.fromarray(rgb).quantize(8).save(tmp_path / "p.png")
    assert read_image(tmp_path / "p.png").shape == (6, 5, 3)
    pal = Image.fromarray(rgb).quantize(8)
    pal.info["transparency"] = 0
    pal.save(tmp_path / "pt.png", transparency=0)
    assert read_image(tmp_path / "pt.png").shape == (6, 5, 4)
    Image.fromarray(rgb[:, :, 0]).save(tmp_path / "g.bmp")
    np.testing.assert_array_equal(read_image(tmp_path / "g.bmp"), rgb[:, :, :1])
    rgba = np.dstack([rgb, rgb[:, :, :1]])
    # exact: libwebp otherwise drops the colour of fully transparent pixels (alpha 0)
    Image.fromarray(rgba).save(tmp_path / "a.webp", lossless=True, exact=True)
    np.testing.assert_array_equal(read_image(tmp_path / "a.webp"), rgba)


def test_tiff16_round_trip(tmp_path):
    pytest.importorskip("tifffile")
    a = rand16(4, 6, 3)
    write_image(tmp_path / "a.tif", a)
    np.testing.assert_array_equal(read_image(tmp_path / "a.tif"), a)
    g = rand16(4, 6, 1)
    write_image(tmp_path / "g.tif", g)
    np.testing.assert_array_equal(read_image(tmp_path / "g.tif"), g)


def test_16bit_to_8bit_format_warns_and_rounds(tmp_path):
    a = np.array([[[0], [257 * 100], [65535], [128]]], np.uint16)
    np.testing.assert_array_equal(to_uint8(a)[0, :, 0], [0, 100, 255, 0])
    with pytest.warns(UserWarning, match="8 bits"):
        write_image(tmp_path / "a.jpg", a)


def test_write_is_atomic_on_failure(tmp_path, monkeypatch):
    def boom(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        write_image(tmp_path / "out.png", np.zeros((4, 4, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []  # neither the target nor a temporary file remains


def test_bad_inputs_name_the_file(tmp_path):
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match=r"junk\.png"):
        read_image(tmp_path / "junk.png")
    with pytest.raises(FileNotFoundError, match=r"missing\.png"):
        read_image(tmp_path / "missing.png")
    good = tmp_path / "t.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8) + 7).save(good)
    (tmp_path / "trunc.png").write_bytes(good.read_bytes()[:60])
    with pytest.raises(ValueError, match=r"trunc\.png"):
        read_image(tmp_path / "trunc.png")
    with pytest.raises(ValueError, match="alpha"):
        write_image(tmp_path / "x.jpg", np.zeros((2, 2, 4), np.uint8))


def _adam7_png(a: np.ndarray, colour: int, depth: int) -> bytes:
    """An interlaced (Adam7) PNG written by hand: Sub filter on every row of every pass."""
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
              (0, 1, 1, 2))  # fmt: skip
    bpp = a.shape[2] * depth // 8
    stream = []
    for x0, y0, dx, dy in passes:
        sub = a[y0::dy, x0::dx]
        if sub.size == 0:
            continue
        rows = np.ascontiguousarray(sub.astype(">u2" if depth == 16 else np.uint8))
        rows = rows.view(np.uint8).reshape(sub.shape[0], -1)
        filtered = rows.copy()
        filtered[:, bpp:] = rows[:, bpp:] - rows[:, :-bpp]
        stream.append(np.hstack([np.ones((rows.shape[0], 1), np.uint8), filtered]).tobytes())

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))

    ihdr = struct.pack(">IIBBBBB", a.shape[1], a.shape[0], depth, colour, 0, 0, 1)
    idat = zlib.compress(b"".join(stream))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize(("channels", "depth"), [(3, 16), (4, 16), (2, 16), (3, 8)])
def test_interlaced_png_all_bits(tmp_path, channels, depth):
    """Adam7 PNGs decode exactly, 16-bit colour included (the old 16-bit reader refused them)."""
    a = (
        rand16(13, 11, channels)
        if depth == 16
        else RNG.integers(0, 256, (13, 11, channels), np.uint8)
    )
    (tmp_path / "i.png").write_bytes(_adam7_png(a, {2: 4, 3: 2, 4: 6}[channels], depth))
    np.testing.assert_array_equal(read_image(tmp_path / "i.png"), a)

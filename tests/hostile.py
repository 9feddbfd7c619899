"""Makers of hostile input files, built at test time (never committed: some claim to be bombs).

Each function writes one file and returns its path. The images are small on disk; the bombs
only *declare* a huge size, so a reader that trusts the header before checking it would try to
allocate gigabytes, while a careful one refuses at once.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SAMPLES = {0: 1, 2: 3, 4: 2, 6: 4}


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bytes(width: int, height: int, depth: int, colour: int, raw: bytes) -> bytes:
    """A PNG with valid CRCs around whatever (filtered) ``raw`` data is given."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(raw))
        + _chunk(b"IEND", b"")
    )


def corrupt_idat_png(path: Path, *, depth: int = 8, colour: int = 2, size: int = 16) -> Path:
    """Valid chunks and CRCs, but row 3 has filter type 9 (libpng: "bad adaptive filter value").

    This is the file that made torchvision's decoder kill the process (SIGSEGV)."""
    row = size * _SAMPLES[colour] * depth // 8
    raw = b"".join(bytes([9 if y == 3 else 0]) + bytes(row) for y in range(size))
    path.write_bytes(png_bytes(size, size, depth, colour, raw))
    return path


def bitflip_png(path: Path, *, size: int = 32) -> Path:
    """A real photo-like PNG with one byte of its image data flipped (CRC left stale)."""
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def png_bomb_header(
    path: Path, *, width: int = 16000, height: int = 16000, depth: int = 16, colour: int = 2
) -> Path:
    """A small file whose header declares ``width x height`` (16-bit RGB: 1.5 GB of pixels).

    The data holds only a few rows; inflating "everything" is what a naive reader would try."""
    row = width * _SAMPLES[colour] * depth // 8
    raw = b"".join(b"\x00" + bytes(row) for _ in range(4))
    path.write_bytes(png_bytes(width, height, depth, colour, raw))
    return path


def animated_gif(path: Path, frames: int = 3, size: int = 8) -> Path:
    images = [Image.new("RGB", (size, size), (40 * i, 0, 0)) for i in range(frames)]
    images[0].save(path, save_all=True, append_images=images[1:], duration=50, loop=0)
    return path


def animated_webp(path: Path, frames: int = 3, size: int = 8) -> Path:
    images = [Image.new("RGB", (size, size), (0, 40 * i, 0)) for i in range(frames)]
    images[0].save(path, save_all=True, append_images=images[1:], duration=50, lossless=True)
    return path


def animated_png(path: Path, frames: int = 3, size: int = 8) -> Path:
    images = [Image.new("RGB", (size, size), (0, 0, 40 * i)) for i in range(frames)]
    images[0].save(path, save_all=True, append_images=images[1:], duration=50)
    return path


def tiny_generator_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A valid tiny RRDBNet state dict (x4, nf 8, nb 1, gc 8)."""
    from esrgan_lit.archs import RRDBNet

    torch.manual_seed(seed)
    return RRDBNet(scale=4, num_feat=8, num_block=1, num_grow_ch=8).state_dict()


def broken_weights(kind: str) -> tuple[dict[str, torch.Tensor], str]:
    """A tiny generator state dict damaged one way, and the key that was damaged.

    ``kind``: ``nan`` (one NaN in conv_last), ``inf`` / ``-inf`` (conv_first), ``int64``
    (conv_first stored as integers), ``bool`` (conv_last as booleans)."""
    sd = {k: v.clone() for k, v in tiny_generator_state().items()}
    if kind == "nan":
        key = "conv_last.weight"
        sd[key].view(-1)[5] = float("nan")
    elif kind in ("inf", "-inf"):
        key = "conv_first.weight"
        sd[key].view(-1)[0] = float(kind)
    elif kind == "int64":
        key = "conv_first.weight"
        sd[key] = (sd[key] * 100).to(torch.int64)
    elif kind == "bool":
        key = "conv_last.weight"
        sd[key] = sd[key] > 0
    else:
        raise ValueError(kind)
    return sd, key

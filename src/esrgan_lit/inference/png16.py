"""16-bit colour PNG reading and writing (Pillow reads 16-bit RGB/RGBA PNGs as 8-bit).

Only what Pillow lacks: non-interlaced 16-bit PNGs of colour type 2 (RGB), 4 (grey + alpha) and
6 (RGBA), plus writing any 16-bit array. Filters None/Sub/Up are vectorised; Average and Paeth are
inherently sequential along a row and run in a plain loop (slower, still correct).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}


def png_header(path: str | Path) -> tuple[int, int, int, int, int] | None:
    """(width, height, bit depth, colour type, interlace) of a PNG file, or None if not a PNG."""
    with open(path, "rb") as f:
        head = f.read(33)
    if len(head) < 33 or head[:8] != _SIGNATURE or head[12:16] != b"IHDR":
        return None
    w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", head[16:29])
    return w, h, depth, ctype, interlace


def read_png16(path: str | Path) -> np.ndarray:
    """Decode a 16-bit PNG to uint16 (H, W, C)."""
    data = Path(path).read_bytes()
    if data[:8] != _SIGNATURE:
        raise ValueError(f"{path}: not a PNG file")
    pos, idat, header = 8, [], None
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if len(body) < length:
            raise ValueError(f"{path}: truncated PNG (chunk {kind!r} cut short)")
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body[:13])
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if header is None:
        raise ValueError(f"{path}: PNG without IHDR")
    width, height, depth, ctype, _, _, interlace = header
    if depth != 16 or ctype not in _CHANNELS:
        raise ValueError(
            f"{path}: expected a 16-bit grey/RGB/RGBA PNG, got depth {depth} type {ctype}"
        )
    if interlace:
        raise ValueError(f"{path}: interlaced 16-bit PNGs are not supported; re-save without Adam7")
    bpp = 2 * _CHANNELS[ctype]
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error as e:
        raise ValueError(f"{path}: corrupt PNG image data ({e})") from e
    stride = width * bpp
    if len(raw) < height * (stride + 1):
        raise ValueError(f"{path}: truncated PNG image data")
    rows = np.frombuffer(raw, np.uint8, count=height * (stride + 1)).reshape(height, stride + 1)
    out = np.empty((height, stride), np.uint8)
    prev = np.zeros(stride, np.uint8)
    for y in range(height):
        out[y] = prev = _unfilter(int(rows[y, 0]), rows[y, 1:], prev, bpp, path)
    return out.view(">u2").astype(np.uint16).reshape(height, width, _CHANNELS[ctype])


def _unfilter(kind: int, line: np.ndarray, prev: np.ndarray, bpp: int, path: object) -> np.ndarray:
    if kind == 0:
        return line
    if kind == 1:
        return np.cumsum(line.reshape(-1, bpp), axis=0, dtype=np.uint8).reshape(-1)
    if kind == 2:
        return line + prev
    if kind not in (3, 4):
        raise ValueError(f"{path}: unknown PNG filter type {kind}")
    cur, up = line.tolist(), prev.tolist()
    for i in range(len(cur)):
        a = cur[i - bpp] if i >= bpp else 0
        b = up[i]
        if kind == 3:
            cur[i] = (cur[i] + ((a + b) >> 1)) & 0xFF
        else:
            c = up[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            cur[i] = (cur[i] + pred) & 0xFF
    return np.asarray(cur, np.uint8)


def write_png16(path: str | Path, image: np.ndarray, level: int = 6) -> None:
    """Encode uint16 (H, W) or (H, W, C), C in 1..4, as a 16-bit PNG (Up filter)."""
    if image.dtype != np.uint16:
        raise TypeError(f"write_png16 expects uint16, got {image.dtype}")
    if image.ndim == 2:
        image = image[:, :, None]
    height, width, channels = image.shape
    ctype = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    rows = np.ascontiguousarray(image.astype(">u2")).view(np.uint8).reshape(height, -1)
    filtered = np.empty((height, rows.shape[1] + 1), np.uint8)
    filtered[:, 0] = 2
    filtered[0, 0] = 0
    filtered[0, 1:] = rows[0]
    filtered[1:, 1:] = rows[1:] - rows[:-1]

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 16, ctype, 0, 0, 0)
    payload = zlib.compress(filtered.tobytes(), level)
    with open(path, "wb") as f:
        f.write(_SIGNATURE + chunk(b"IHDR", ihdr) + chunk(b"IDAT", payload) + chunk(b"IEND", b""))

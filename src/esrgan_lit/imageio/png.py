"""PNG structure checks, 16-bit colour decoding through Pillow, and a 16-bit PNG encoder.

Why this exists: libpng behind torchvision's decoder kills the interpreter (SIGSEGV) on a bad
filter byte, and Pillow reads 16-bit colour PNGs as 8 bits. So nothing here calls torchvision:

* :func:`scan_png` walks the chunks (CRCs), checks the declared size against the pixel limit
  *before* inflating anything, then inflates the image data with a bounded output and checks
  every row's filter byte: a corrupt or crafted file is a clean error, never a crash or a bomb.
* :func:`decode_png16` gets all 16 bits from Pillow's own (raising) decoder. PNG filters work
  byte-lane by byte-lane (each byte is predicted from bytes ``bpp`` away, never its neighbours
  in the same pixel), so swapping the two bytes of every sample in the filtered stream is again
  a valid stream: Pillow's 8-bit result of the original gives the high bytes, of the swapped one
  the low bytes.
* :func:`encode_png` writes what Pillow cannot: 16-bit colour (and anything else via Pillow).
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel as stored
# Adam7 passes: (x start, y start, x step, y step)
_ADAM7 = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)
_INFLATE_PIECE = 1 << 20


class PngError(ValueError):
    """A PNG that is corrupt, truncated or not supported (message without the file name)."""


@dataclass
class PngScan:
    """What :func:`scan_png` learned: header fields, the image data and a few ancillary chunks."""

    width: int
    height: int
    depth: int
    colour: int
    interlace: int
    idat: list[bytes] = field(default_factory=list)
    exif: bytes | None = None
    frames: int = 1  # from an APNG acTL chunk

    @property
    def is_deep_colour(self) -> bool:
        """16-bit with colour or alpha: the case Pillow would cut to 8 bits."""
        return self.depth == 16 and self.colour in (2, 4, 6)

    def rows(self) -> list[tuple[int, int]]:
        """(row count, bytes per row without the filter byte) of each pass, in stream order."""
        bits = _SAMPLES[self.colour] * self.depth
        dims = [(self.width, self.height)]
        if self.interlace:
            dims = [
                ((self.width - x0 + dx - 1) // dx, (self.height - y0 + dy - 1) // dy)
                for x0, y0, dx, dy in _ADAM7
            ]
        return [(h, (w * bits + 7) // 8) for w, h in dims if w > 0 and h > 0]


def png_header(head: bytes) -> tuple[int, int, int, int, int] | None:
    """(width, height, bit depth, colour type, interlace) from a PNG's first 29 bytes, or None."""
    if len(head) < 29 or not head.startswith(PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", head[16:29])
    return w, h, depth, ctype, interlace


def scan_png(
    data: bytes,
    *,
    check_size: Callable[[int, int], None] = lambda w, h: None,
    inflate: bool = True,
) -> PngScan:
    """Check a whole PNG without decoding it; raise :class:`PngError` saying what is wrong.

    ``check_size(width, height)`` runs right after the header is read (the pixel limit), so a
    bomb is refused before a byte of it is inflated. ``inflate`` also checks the image data:
    a valid zlib stream, long enough, a legal filter byte on every row.
    """
    head = png_header(data[:29])
    if head is None:
        raise PngError("corrupt PNG (no IHDR header)")
    width, height, depth, colour, interlace = head
    if colour not in _SAMPLES or depth not in (1, 2, 4, 8, 16) or width == 0 or height == 0:
        raise PngError(f"corrupt PNG header ({width}x{height}, colour type {colour})")
    if interlace not in (0, 1):
        raise PngError(f"corrupt PNG header (interlace method {interlace})")
    check_size(width, height)
    scan = PngScan(width, height, depth, colour, interlace)
    pos, end_seen = 8, False
    while pos < len(data):
        if pos + 12 > len(data):
            raise PngError(f"truncated PNG (chunk cut short at byte {pos})")
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        stop = pos + 8 + length
        if stop + 4 > len(data):
            raise PngError(f"truncated PNG ({kind.decode('latin-1')} chunk cut short)")
        (crc,) = struct.unpack(">I", data[stop : stop + 4])
        if zlib.crc32(data[pos + 4 : stop]) != crc:
            raise PngError(f"corrupt PNG ({kind.decode('latin-1')} chunk CRC mismatch)")
        body = data[pos + 8 : stop]
        if kind == b"IDAT":
            scan.idat.append(body)
        elif kind == b"eXIf":
            scan.exif = body
        elif kind == b"acTL" and length >= 4:
            scan.frames = struct.unpack(">I", body[:4])[0]
        elif kind == b"IEND":
            end_seen = True
            break
        pos = stop + 4
    if not end_seen:
        raise PngError("truncated PNG (no IEND chunk at the end of the file)")
    if not scan.idat:
        raise PngError("corrupt PNG (no image data)")
    if inflate:
        _check_image_data(scan)
    return scan


def _check_image_data(scan: PngScan) -> None:
    """Inflate piece by piece (bounded: never more than the header promises) and check the
    filter byte that starts each row."""
    starts: list[np.ndarray] = []
    offset = 0
    for rows, rowbytes in scan.rows():
        starts.append(offset + np.arange(rows, dtype=np.int64) * (rowbytes + 1))
        offset += rows * (rowbytes + 1)
    row_starts, expected = np.concatenate(starts), offset
    inflater = zlib.decompressobj()
    done = 0
    try:
        for chunk in scan.idat:
            pending = chunk
            while pending and done < expected:
                piece = inflater.decompress(pending, min(_INFLATE_PIECE, expected - done))
                pending = inflater.unconsumed_tail
                _check_filters(piece, done, row_starts)
                done += len(piece)
            if done >= expected:
                break
        if done < expected:
            piece = inflater.flush()[: expected - done]
            _check_filters(piece, done, row_starts)
            done += len(piece)
    except zlib.error as err:
        raise PngError(f"corrupt PNG image data ({err})") from None
    if done < expected:
        raise PngError(f"truncated PNG image data ({done} of {expected} bytes)")


def _check_filters(piece: bytes, at: int, row_starts: np.ndarray) -> None:
    lo, hi = np.searchsorted(row_starts, [at, at + len(piece)])
    if hi > lo:
        filters = np.frombuffer(piece, np.uint8)[row_starts[lo:hi] - at]
        bad = np.flatnonzero(filters > 4)
        if bad.size:
            row = int(lo + bad[0])
            raise PngError(
                f"corrupt PNG image data (bad filter type {filters[bad[0]]} on row {row})"
            )


def _inflate(scan: PngScan) -> bytes:
    expected = sum(rows * (rb + 1) for rows, rb in scan.rows())
    try:
        inflater = zlib.decompressobj()
        raw = inflater.decompress(b"".join(scan.idat), expected)
    except zlib.error as err:
        raise PngError(f"corrupt PNG image data ({err})") from None
    if len(raw) < expected:
        raise PngError(f"truncated PNG image data ({len(raw)} of {expected} bytes)")
    return raw


def _pillow_bytes(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return np.asarray(im)


def decode_png16(data: bytes, scan: PngScan) -> np.ndarray:
    """All 16 bits of a checked 16-bit colour PNG (``scan`` from :func:`scan_png`), HWC uint16."""
    high = _pillow_bytes(data)
    raw = np.frombuffer(_inflate(scan), np.uint8).copy()
    offset = 0
    for rows, rowbytes in scan.rows():
        block = raw[offset : offset + rows * (rowbytes + 1)].reshape(rows, rowbytes + 1)
        samples = block[:, 1:].reshape(rows, rowbytes // 2, 2)
        samples[:] = samples[:, :, ::-1].copy()  # swap high and low byte lanes
        offset += rows * (rowbytes + 1)
    ihdr = struct.pack(">IIBBBBB", scan.width, scan.height, 16, scan.colour, 0, 0, scan.interlace)
    swapped = _png_bytes(ihdr, zlib.compress(raw.tobytes(), 0))
    low = _pillow_bytes(swapped)
    out = (high.astype(np.uint16) << 8) | low
    if scan.colour == 4 and out.shape[2] == 4:  # Pillow widens 16-bit grey+alpha to RGBA
        out = np.ascontiguousarray(out[:, :, [0, 3]])
    return out


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def _png_bytes(ihdr: bytes, idat: bytes) -> bytes:
    return PNG_SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def encode_png(arr: np.ndarray, compress_level: int = 6) -> bytes:
    """Lossless PNG bytes of an HWC (or HW) uint8/uint16 array, C in 1..4.

    Pillow writes 8-bit and 16-bit grey; 16-bit colour and grey+alpha, which Pillow cannot hold,
    are written here (Up filter: cheap and compresses photographs well).
    """
    if arr.ndim == 2:
        arr = arr[:, :, None]
    h, w, c = arr.shape
    if arr.dtype == np.uint16 and c > 1:
        rows = np.ascontiguousarray(arr.astype(">u2")).view(np.uint8).reshape(h, -1)
        filtered = np.empty((h, rows.shape[1] + 1), np.uint8)
        filtered[:, 0] = 2
        filtered[0, 0] = 0
        filtered[0, 1:] = rows[0]
        filtered[1:, 1:] = rows[1:] - rows[:-1]
        ihdr = struct.pack(">IIBBBBB", w, h, 16, {2: 4, 3: 2, 4: 6}[c], 0, 0, 0)
        return _png_bytes(ihdr, zlib.compress(filtered.tobytes(), compress_level))

    if arr.dtype not in (np.uint8, np.uint16):
        raise TypeError(f"encode_png expects uint8 or uint16, got {arr.dtype}")
    out = io.BytesIO()
    image = np.ascontiguousarray(arr[:, :, 0] if c == 1 else arr)
    Image.fromarray(image).save(out, format="PNG", compress_level=compress_level)
    return out.getvalue()

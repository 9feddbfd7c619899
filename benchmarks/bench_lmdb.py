"""Read throughput of 480x480 training sub-images: PNG folder vs LMDB (png and raw).

Sub-images are cut (crop 480, step 240, as for DIV2K) from the natural photos scikit-image
ships, so the PNGs compress like real photos. Every source is read in one process, best of
``--repeats`` passes with a warm page cache; "decode bound" is PNG decoding from bytes already in
memory, the floor for any store that keeps PNGs. Run: ``python benchmarks/bench_lmdb.py``.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from esrgan_lit.data.lmdb_io import LmdbReader
from esrgan_lit.data.prepare import convert_to_lmdb, extract_subimages

PHOTOS = ("retina", "hubble_deep_field", "immunohistochemistry", "astronaut", "chelsea")


def _make_subimages(root: Path) -> Path:
    import skimage.data

    src = root / "photos"
    src.mkdir()
    for name in PHOTOS:
        arr = getattr(skimage.data, name)()
        im = Image.fromarray(arr)
        if min(im.size) < 480:  # small photos: enlarge so they yield crops too
            f = 480 / min(im.size)
            im = im.resize((round(im.width * f) + 1, round(im.height * f) + 1), Image.BICUBIC)
        im.save(src / f"{name}.png")
    out = root / "sub"
    rep = extract_subimages(src, out, crop=480, step=240, workers=2, progress=False)
    assert not rep.failures, rep.failures
    return out


def _best_rate(fn: Callable[[], int], repeats: int) -> tuple[float, int]:
    fn()  # warm-up: page cache, imports
    best = float("inf")
    nbytes = 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        nbytes = fn()
        best = min(best, time.perf_counter() - t0)
    return best, nbytes


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sub = _make_subimages(root)
        files = sorted(sub.glob("*.png"))
        convert_to_lmdb(sub, root / "png.lmdb", fmt="png", workers=2, progress=False)
        convert_to_lmdb(sub, root / "raw.lmdb", fmt="raw", workers=2, progress=False)
        png_db, raw_db = LmdbReader(root / "png.lmdb"), LmdbReader(root / "raw.lmdb")
        blobs = [f.read_bytes() for f in files]

        def folder() -> int:
            return sum(np.asarray(Image.open(f)).nbytes for f in files)

        def decode_bound() -> int:
            return sum(np.asarray(Image.open(io.BytesIO(b))).nbytes for b in blobs)

        def lmdb_png() -> int:
            return sum(png_db.read(k).nbytes for k in png_db)

        def lmdb_raw() -> int:
            return sum(raw_db.read(k).nbytes for k in raw_db)

        rows = [
            ("PNG folder", folder, _dir_size(sub)),
            ("decode bound (PNG bytes in RAM)", decode_bound, sum(map(len, blobs))),
            ("LMDB png", lmdb_png, _dir_size(root / "png.lmdb")),
            ("LMDB raw", lmdb_raw, _dir_size(root / "raw.lmdb")),
        ]
        n = len(files)
        print(f"{n} sub-images of 480x480 RGB, best of {args.repeats}, one process\n")
        print(
            f"| {'source':<32} | {'img/s':>8} | {'MB/s out':>9} | {'vs folder':>9} | {'on disk MB':>10} |"
        )
        print(f"|{'-' * 34}|{'-' * 10}|{'-' * 11}|{'-' * 11}|{'-' * 12}|")
        base = None
        for name, fn, size in rows:
            secs, nbytes = _best_rate(fn, args.repeats)
            rate = n / secs
            base = base or rate
            print(
                f"| {name:<32} | {rate:>8.1f} | {nbytes / secs / 1e6:>9.1f} | "
                f"{rate / base:>8.2f}x | {size / 1e6:>10.1f} |"
            )


if __name__ == "__main__":
    main()

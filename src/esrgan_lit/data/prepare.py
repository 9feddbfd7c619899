"""Dataset preparation commands: sub-image extraction and folder -> LMDB conversion.

    python -m esrgan_lit.data.prepare extract --input DIV2K_train_HR --output DIV2K_train_HR_sub
    python -m esrgan_lit.data.prepare extract --input DIV2K_train_LR_bicubic/X4 \
        --output DIV2K_train_LR_bicubic_X4_sub --scale 4
    python -m esrgan_lit.data.prepare lmdb --input DIV2K_train_HR_sub --output DIV2K_train_HR_sub.lmdb

Decoding a 2K PNG costs ~90 ms and a 480x480 crop ~10 ms, so training on pre-cut overlapping
sub-images (the ESRGAN/BasicSR recipe: crop 480, step 240, threshold 0) keeps the loader ahead of
the GPU. ``--crop/--step/--thresh`` are always given in HR pixels; ``--scale s`` marks the input
as an LR folder and cuts ``crop/s`` crops at ``step/s`` strides on exactly the grid the HR folder
gets, so LR crop ``i`` is the HR crop ``i`` downscaled. LR names lose their ``x{s}`` suffix
(``0001x4.png`` -> ``0001_s001.png``) so HR and LR sub-images pair by stem.

Every output is written to a temporary file and renamed, so a killed run leaves no partial file,
and a rerun skips what is already there.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from PIL import Image

from esrgan_lit.data.lmdb_io import (
    decode_image_bytes,
    encode_for_lmdb,
    encode_png,
    is_deep_colour,
    is_lmdb,
    list_images,
    write_lmdb,
)
from esrgan_lit.imageio import probe_image
from esrgan_lit.utils.atomic import atomic_write_path
from esrgan_lit.utils.console import progress_bar

T = TypeVar("T")


# ---------------------------------------------------------------------------------------------
# Sub-image grid


def grid_positions(length: int, crop: int, step: int, thresh: int = 0) -> list[int]:
    """Top (or left) offsets of the crops along one axis, BasicSR's rule.

    Offsets ``0, step, 2*step, ...`` while the crop fits; one more crop flush with the far edge
    when more than ``thresh`` pixels would otherwise be left over.
    """
    if crop <= 0 or step <= 0:
        raise ValueError(f"crop and step must be positive, got crop={crop} step={step}")
    if length < crop:
        return []
    pos = list(range(0, length - crop + 1, step))
    if length - (pos[-1] + crop) > thresh:
        pos.append(length - crop)
    return pos


def subimage_boxes(
    height: int,
    width: int,
    *,
    crop: int = 480,
    step: int = 240,
    thresh: int = 0,
    scale: int = 1,
    mod: int = 1,
) -> list[tuple[int, int, int]]:
    """``(top, left, size)`` boxes, in this image's own pixels, numbered row-major.

    For an LR image (``scale`` > 1) the grid is computed on the HR size it stands for
    (``height*scale`` x ``width*scale``) and divided by ``scale``, so it is exactly the HR grid.
    ``mod`` (HR pixels) places the grid on the image mod-cropped to a multiple of ``mod``.
    """
    for name, v in (("crop", crop), ("step", step)):
        if v % scale:
            raise ValueError(f"--{name} {v} is not divisible by --scale {scale}")
    hr_h = (height * scale) // mod * mod
    hr_w = (width * scale) // mod * mod
    tops = grid_positions(hr_h, crop, step, thresh)
    lefts = grid_positions(hr_w, crop, step, thresh)
    return [(t // scale, left // scale, crop // scale) for t in tops for left in lefts]


def output_stem(stem: str, scale: int) -> str:
    """Drop DIV2K/Flickr2K's ``x{scale}`` LR suffix so LR sub-images share HR stems."""
    suffix = f"x{scale}"
    if scale > 1 and stem.endswith(suffix) and len(stem) > len(suffix):
        return stem[: -len(suffix)]
    return stem


# ---------------------------------------------------------------------------------------------
# Extraction


@dataclass
class ExtractReport:
    """What a run did: counts plus one message per source file that failed."""

    images: int = 0
    written: int = 0
    skipped: int = 0
    failures: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Job:
    src: Path
    out_dir: Path
    crop: int
    step: int
    thresh: int
    scale: int
    mod: int
    compress_level: int


def _head(path: Path) -> bytes:
    """Enough of the file to tell a 16-bit colour image (all of it for a TIFF)."""
    if path.suffix.lower() in (".tif", ".tiff"):
        return path.read_bytes()
    with open(path, "rb") as f:
        return f.read(26)


def _save_tile(tile: Any, dst: Path, compress_level: int) -> None:
    with atomic_write_path(dst) as tmp:
        if isinstance(tile, np.ndarray):
            tmp.write_bytes(encode_png(tile, compress_level))
        else:
            tile.save(tmp, format="PNG", compress_level=compress_level)


def _extract_one(job: _Job) -> tuple[str, int, int, str | None]:
    """Cut one source image; returns (name, written, skipped, error). Runs in a worker."""
    written = skipped = 0
    try:
        probe_image(job.src)  # the shared checks first: pixel limit, multi-frame, corrupt data
        with Image.open(job.src) as im:
            w, h = im.size
            boxes = subimage_boxes(
                h, w, crop=job.crop, step=job.step, thresh=job.thresh, scale=job.scale, mod=job.mod
            )
            if not boxes:
                c = job.crop // job.scale
                raise ValueError(f"image is {w}x{h}, smaller than the {c}x{c} crop")
            stem = output_stem(job.src.stem, job.scale)
            digits = max(3, len(str(len(boxes))))
            dsts = [job.out_dir / f"{stem}_s{i:0{digits}d}.png" for i in range(1, len(boxes) + 1)]
            todo = [(b, d) for b, d in zip(boxes, dsts) if not d.exists()]
            skipped = len(boxes) - len(todo)
            if not todo:
                return job.src.name, 0, skipped, None
            if is_deep_colour(_head(job.src)):  # Pillow would drop 8 bits: crop the array
                im = decode_image_bytes(job.src.read_bytes(), name=str(job.src))
            else:
                im.load()
                if im.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
                    im = im.convert("RGB")
            for (top, left, size), dst in todo:
                if isinstance(im, np.ndarray):
                    tile = im[top : top + size, left : left + size]
                else:
                    tile = im.crop((left, top, left + size, top + size))
                _save_tile(tile, dst, job.compress_level)
                written += 1
    except Exception as err:  # one bad file must not stop the others; reported at the end
        return job.src.name, written, skipped, f"{job.src}: {err}"
    return job.src.name, written, skipped, None


def _remove_stale_temps(folder: Path) -> None:
    """Delete temporary files a killed run left (``.{stem}.XXXX.tmp.png``)."""
    if folder.is_dir():
        for p in folder.glob(".*.tmp.png"):
            p.unlink(missing_ok=True)


def _parallel_map(fn: Any, jobs: Sequence[Any], workers: int, ordered: bool) -> Iterator[Any]:
    if workers <= 1 or len(jobs) <= 1:
        yield from map(fn, jobs)
        return
    with mp.get_context().Pool(min(workers, len(jobs))) as pool:
        it = pool.imap(fn, jobs) if ordered else pool.imap_unordered(fn, jobs)
        yield from it


def _progress(items: Iterable[T], total: int, label: str, enabled: bool) -> Iterator[T]:
    with progress_bar(enabled) as bar:
        if bar is None:
            yield from items
            return
        task = bar.add_task(label, total=total)
        for item in items:
            yield item
            bar.advance(task)


def extract_subimages(
    input_dir: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    crop: int = 480,
    step: int = 240,
    thresh: int = 0,
    scale: int = 1,
    mod: int = 1,
    workers: int | None = None,
    compress_level: int = 3,
    progress: bool = True,
) -> ExtractReport:
    """Cut every image in ``input_dir`` into overlapping square PNG crops in ``output_dir``."""
    if scale < 1 or mod < 1:
        raise ValueError(f"scale and mod must be >= 1, got scale={scale} mod={mod}")
    if crop % scale or step % scale:
        raise ValueError(f"crop {crop} and step {step} must be divisible by scale {scale}")
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    files = list_images(input_dir)
    if not files:
        raise FileNotFoundError(f"{input_dir}: no images found (png, jpg, bmp, tif, webp)")
    if output_dir.resolve() == input_dir.resolve():
        raise ValueError(f"{output_dir}: output folder must differ from the input folder")
    output_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(output_dir)
    jobs = [_Job(f, output_dir, crop, step, thresh, scale, mod, compress_level) for f in files]
    report = ExtractReport(images=len(jobs))
    results = _parallel_map(_extract_one, jobs, workers or os.cpu_count() or 1, ordered=False)
    for _, written, skipped, error in _progress(results, len(jobs), "sub-images", progress):
        report.written += written
        report.skipped += skipped
        if error:
            report.failures.append(error)
    return report


# ---------------------------------------------------------------------------------------------
# LMDB conversion


def _encode_job(args: tuple[Path, str, int]) -> Any:
    return encode_for_lmdb(*args)


def _estimate_map_size(files: Sequence[Path], fmt: str) -> int:
    """Upper bound of the LMDB size: file sizes (png) or decoded sizes (raw), plus slack."""
    total = 0
    for f in files:
        size = f.stat().st_size
        if fmt == "raw" or f.suffix.lower() != ".png":
            with Image.open(f) as im:
                w, h = im.size
                size = max(size, w * h * max(len(im.getbands()), 3) * 2)
        total += size + 4096
    return int(total * 1.5) + (64 << 20)


def convert_to_lmdb(
    input_dir: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    fmt: str = "png",
    compress_level: int = 1,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> int:
    """Store every image of ``input_dir`` in a new LMDB keyed by file stem; returns the count.

    ``fmt="png"`` keeps PNG files byte for byte (other formats are re-encoded losslessly);
    ``fmt="raw"`` stores decoded HWC arrays: bigger, but no decode cost when training.
    """
    if fmt not in ("png", "raw"):
        raise ValueError(f"--format must be png or raw, got {fmt!r}")
    input_dir, output = Path(input_dir), Path(output)
    if output.exists() and not overwrite:
        kind = "an LMDB" if is_lmdb(output) else "a file or folder"
        raise FileExistsError(f"{output}: already exists ({kind}); pass --overwrite to replace it")
    files = list_images(input_dir)
    if not files:
        raise FileNotFoundError(f"{input_dir}: no images found (png, jpg, bmp, tif, webp)")
    stems: dict[str, Path] = {}
    for f in files:
        if f.stem in stems:
            raise ValueError(f"{f} and {stems[f.stem]} share the key {f.stem!r}")
        stems[f.stem] = f
    map_size = _estimate_map_size(files, fmt)
    jobs = [(f, fmt, compress_level) for f in files]
    items = _parallel_map(_encode_job, jobs, workers or os.cpu_count() or 1, ordered=True)
    return write_lmdb(_progress(items, len(jobs), "lmdb", progress), output, map_size=map_size)


# ---------------------------------------------------------------------------------------------
# CLI


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m esrgan_lit.data.prepare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("extract", help="cut images into overlapping sub-images")
    ex.add_argument("--input", required=True, type=Path)
    ex.add_argument("--output", required=True, type=Path)
    ex.add_argument(
        "--crop", type=int, default=480, help="crop size in HR pixels, also with --scale (480)"
    )
    ex.add_argument(
        "--step", type=int, default=240, help="stride in HR pixels, also with --scale (240)"
    )
    ex.add_argument(
        "--thresh", type=int, default=0, help="leftover (HR px) that earns an edge crop"
    )
    ex.add_argument(
        "--scale",
        type=int,
        default=1,
        help="the input is LR at this scale: cut crop/scale at step/scale",
    )
    ex.add_argument("--mod", type=int, default=1, help="grid on the HR size mod-cropped to this")
    ex.add_argument("--compress-level", type=int, default=3, help="PNG compression 0-9 (3)")
    ex.add_argument("--workers", type=int, default=None, help="processes (all CPUs)")
    ex.add_argument("--no-progress", action="store_true")
    lm = sub.add_parser("lmdb", help="convert an image folder to an LMDB")
    lm.add_argument("--input", required=True, type=Path)
    lm.add_argument("--output", required=True, type=Path)
    lm.add_argument("--format", choices=("png", "raw"), default="png")
    lm.add_argument("--compress-level", type=int, default=1, help="for re-encoded non-PNGs")
    lm.add_argument("--workers", type=int, default=None)
    lm.add_argument("--overwrite", action="store_true")
    lm.add_argument("--no-progress", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "extract":
            rep = extract_subimages(
                args.input, args.output, crop=args.crop, step=args.step, thresh=args.thresh,
                scale=args.scale, mod=args.mod, workers=args.workers,
                compress_level=args.compress_level, progress=not args.no_progress,
            )  # fmt: skip
            print(
                f"{rep.images} images: {rep.written} sub-images written, "
                f"{rep.skipped} already present, {len(rep.failures)} failed -> {args.output}"
            )
            for msg in rep.failures:
                print(f"FAILED {msg}", file=sys.stderr)
            return 1 if rep.failures else 0
        n = convert_to_lmdb(
            args.input, args.output, fmt=args.format, compress_level=args.compress_level,
            workers=args.workers, overwrite=args.overwrite, progress=not args.no_progress,
        )  # fmt: skip
        print(f"{n} images -> {args.output} ({args.format})")
        return 0
    except (OSError, ValueError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

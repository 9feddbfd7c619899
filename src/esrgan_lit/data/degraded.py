"""A fixed degraded evaluation set: ``python -m esrgan_lit.data.degraded HR_DIR OUT --seed 0``.

Writes ``OUT/HR/<name>.png`` (the RGB HR image mod-cropped to the scale) and
``OUT/LR_bicubic/X{scale}/<name>.png`` (its Real-ESRGAN degradation), the benchmark layout that
``SRDataModule`` val/test sets and ``esrgan_lit.evaluate test_dirs=[OUT]`` read (the folder name
is the layout's, the LR inside is degraded). Image ``i`` (sorted by name) is degraded with a
generator seeded ``seed + i`` on the CPU, so the set is the same on every machine and run, and
numbers measured on it are comparable. Use it for degraded validation, e.g.
``+data.val_sets.sample_degraded.root=OUT``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from esrgan_lit.data.io import is_image_file, read_image, to_rgb
from esrgan_lit.degradations import RealESRGANDegradation
from esrgan_lit.utils.atomic import atomic_write_path


def _save_png(arr: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write_path(path) as tmp:
        Image.fromarray(arr).save(tmp, format="PNG")


def make_degraded_set(
    hr_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    scale: int = 4,
    seed: int = 0,
    options: Mapping[str, Any] | None = None,
) -> list[str]:
    """Degrade every image of ``hr_dir`` (see the module doc); returns the image names."""
    src = Path(hr_dir)
    if not src.is_dir():
        raise FileNotFoundError(f"degraded set: HR folder {src} does not exist")
    files = sorted(p for p in src.iterdir() if p.is_file() and is_image_file(p))
    if not files:
        raise FileNotFoundError(f"degraded set: no images in {src}")
    deg = RealESRGANDegradation(scale, **dict(options or {}))
    out = Path(out_dir)
    names = []
    for i, path in enumerate(files):
        hr = to_rgb(read_image(path))
        if hr.dtype != np.uint8:
            raise ValueError(f"{path}: degraded sets are made from 8-bit images, got {hr.dtype}")
        h, w = (hr.shape[0] // scale) * scale, (hr.shape[1] // scale) * scale
        hr = np.array(hr[:h, :w])  # a writable copy: decoders may hand out read-only buffers
        gt = torch.from_numpy(hr).permute(2, 0, 1)[None].float() / 255
        lq = deg(gt, torch.Generator().manual_seed(int(seed) + i))
        lr = (lq[0].permute(1, 2, 0) * 255).round().clamp(0, 255).to(torch.uint8).numpy()
        _save_png(hr, out / "HR" / f"{path.stem}.png")
        _save_png(lr, out / "LR_bicubic" / f"X{scale}" / f"{path.stem}.png")
        names.append(path.stem)
    return names


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("hr_dir")
    parser.add_argument("out_dir")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        names = make_degraded_set(args.hr_dir, args.out_dir, scale=args.scale, seed=args.seed)
    except (FileNotFoundError, ValueError) as err:  # a bad folder or image: say which, no traceback
        parser.exit(2, f"error: {err}\n")
    print(f"wrote {len(names)} degraded pairs to {args.out_dir}")


if __name__ == "__main__":
    main()

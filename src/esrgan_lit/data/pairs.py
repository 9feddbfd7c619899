"""Listing HR/LR pairs and checking them up front (sizes, missing partners, unreadable files).

LR names accepted for an HR key ``k`` (path relative to the HR root, no extension): ``k`` itself
(same stem), ``k + "x4"`` (DIV2K ``0001x4``, Flickr2K ``000001x4``), and for sub-images
``0001x4_s001`` next to HR ``0001_s001``. Every problem is collected and reported together, each
line naming the file; with ``skip_bad_files`` they are logged and the pair is dropped instead.
"""

from __future__ import annotations

import logging
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from esrgan_lit.data.io import ImageInfo, ImageReadError
from esrgan_lit.data.sources import ImageSource

log = logging.getLogger(__name__)
MAX_REPORTED = 20


@dataclass(frozen=True)
class Pair:
    """One HR image and, when LR images are given, its LR partner."""

    hr: ImageSource
    hr_key: str
    lr: ImageSource | None
    lr_key: str | None
    height: int  # HR size after mod-crop
    width: int
    channels: int  # 1 or 3 (HR)

    @property
    def name(self) -> str:
        return self.hr_key.rsplit("/", 1)[-1]


class DataCheckError(ImageReadError):
    """One or more files of a dataset failed the listing-time checks."""


def _normalised_lr_key(key: str, scale: int) -> str:
    """``0001x4`` -> ``0001``; ``0001x4_s001`` -> ``0001_s001``; others unchanged."""
    head, _, base = key.rpartition("/")
    m = re.fullmatch(rf"(?P<stem>.+?)x{scale}(?P<sub>_s\d+)?", base)
    if m:
        base = m["stem"] + (m["sub"] or "")
    return f"{head}/{base}" if head else base


def _lr_lookup(lr_keys: list[str], scale: int) -> dict[str, str]:
    exact = set(lr_keys)
    table: dict[str, str] = {}
    for key in lr_keys:
        norm = _normalised_lr_key(key, scale)
        if norm != key and norm in exact:
            continue  # "0001" exists itself; "0001x4" would be ambiguous: the exact name wins
        table[norm] = key
    return table


def _probe_all(
    source: ImageSource, keys: list[str], deep: bool
) -> dict[str, ImageInfo | Exception]:
    def one(key: str) -> ImageInfo | Exception:
        try:
            return source.info(key, deep=deep)
        except (ImageReadError, OSError, KeyError, ValueError) as err:
            return err

    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(zip(keys, pool.map(one, keys)))


def build_pairs(
    hr: ImageSource,
    lr: ImageSource | None,
    *,
    scale: int,
    min_size: int = 0,
    deep: bool = False,
    skip_bad_files: bool = False,
    what: str = "dataset",
) -> list[Pair]:
    """Check every HR (and LR) image of a set and return its pairs, in key order.

    ``min_size``: the HR image (mod-cropped) must be at least this tall and wide (training crop).
    """
    problems: list[str] = []
    hr_keys = hr.keys()
    hr_info = _probe_all(hr, hr_keys, deep)
    lr_table: dict[str, str] = {}
    lr_info: dict[str, ImageInfo | Exception] = {}
    if lr is not None:
        lr_table = _lr_lookup(lr.keys(), scale)
        wanted = [lr_table[k] for k in hr_keys if k in lr_table]
        lr_info = _probe_all(lr, wanted, deep)
    pairs: list[Pair] = []
    for key in hr_keys:
        info = hr_info[key]
        if isinstance(info, Exception):
            problems.append(str(info))
            continue
        h, w = info.height - info.height % scale, info.width - info.width % scale
        if min(h, w) < max(min_size, scale):
            limit = (
                f"the {min_size}x{min_size} training crop (gt_size)"
                if min_size >= scale
                else f"the scale ({scale}): no low-resolution pixel is left"
            )
            problems.append(
                f"{hr.describe(key)}: HR image is {info.width}x{info.height} (mod-cropped "
                f"{w}x{h}), smaller than {limit}"
            )
            continue
        lr_key = None
        if lr is not None:
            lr_key = lr_table.get(key)
            if lr_key is None:
                problems.append(
                    f"{hr.describe(key)}: no LR image for it in {lr.root} (looked for "
                    f"{key}x{scale}.* and {key}.*)"
                )
                continue
            linfo = lr_info[lr_key]
            if isinstance(linfo, Exception):
                problems.append(str(linfo))
                continue
            if (linfo.height, linfo.width) != (h // scale, w // scale):
                problems.append(
                    f"{lr.describe(lr_key)}: LR image is {linfo.width}x{linfo.height}, expected "
                    f"{w // scale}x{h // scale} = HR {hr.describe(key)} ({info.width}x"
                    f"{info.height}, mod-cropped) / {scale}"
                )
                continue
        pairs.append(Pair(hr, key, lr, lr_key, h, w, info.channels))
    if lr is not None:
        used = {p.lr_key for p in pairs}
        lr_keys_all = lr.keys()
        orphans = [
            k for k in lr_keys_all if k not in used and _normalised_lr_key(k, scale) not in hr_info
        ]
        if orphans:
            log.warning(
                "%s: %d LR images without an HR partner in %s (e.g. %s) are ignored",
                what,
                len(orphans),
                lr.root,
                lr.describe(orphans[0]),
            )
    if problems:
        if not skip_bad_files:
            shown = "\n  ".join(problems[:MAX_REPORTED])
            more = (
                f"\n  ... and {len(problems) - MAX_REPORTED} more"
                if len(problems) > MAX_REPORTED
                else ""
            )
            raise DataCheckError(
                f"{what}: {len(problems)} bad file(s):\n  {shown}{more}\n"
                "Fix or remove them, or set data.skip_bad_files=true to skip them with a warning."
            )
        for p in problems:
            log.warning("%s: skipping: %s", what, p)
    if not pairs:
        raise DataCheckError(f"{what}: no usable images in {hr.root}")
    return pairs

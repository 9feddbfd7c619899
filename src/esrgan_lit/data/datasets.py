"""Map-style datasets: random training patches, whole-image evaluation pairs, LR-only prediction.

Training items are ``{"lq": (3, p, p), "gt": (3, p*s, p*s)}`` float32 in [0, 1]; evaluation items
``{"lq", "gt", "name", "grey"}`` with 1 or 3 channels; prediction items ``{"lq", "name", "grey"}``.
A training item is indexed by ``(index, sample_seed)`` (see ``samplers.TrainSampler``); a plain
int index works too (its seed is then the index).
"""

from __future__ import annotations

import logging
import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from esrgan_lit.data.io import ImageReadError, to_rgb
from esrgan_lit.data.pairs import Pair
from esrgan_lit.data.sources import ImageSource
from esrgan_lit.data.transforms import (
    bicubic_lr,
    bicubic_lr_window,
    dihedral,
    mod_crop,
    random_crop_origin,
    to_tensor,
)

log = logging.getLogger(__name__)


def _augment_choices(use_hflip: bool, use_rot: bool) -> tuple[int, ...]:
    if use_hflip and use_rot:
        return tuple(range(8))  # all of D4
    if use_rot:
        return (0, 3, 5, 6)  # identity, 180, and the two 90-degree rotations
    return (0, 1) if use_hflip else (0,)


class _PairReader:
    """Reads a pair's images, from an optional in-memory cache of decoded uint8/uint16 arrays."""

    def __init__(self, pairs: list[Pair]) -> None:
        self.pairs = pairs
        self._hr_cache: list[np.ndarray] | None = None
        self._lr_cache: list[np.ndarray | None] | None = None

    def fill_cache(self, threads: int = 4) -> int:
        """Decode everything once (threads: decoders release the GIL); returns bytes held.

        Filled in the main process before workers start, forked workers share it copy-on-write.
        """

        def load(p: Pair) -> tuple[np.ndarray, np.ndarray | None]:
            lr = p.lr.read(p.lr_key) if p.lr is not None and p.lr_key is not None else None
            return p.hr.read(p.hr_key), lr

        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            loaded = list(pool.map(load, self.pairs))
        self._hr_cache = [hr for hr, _ in loaded]
        self._lr_cache = [lr for _, lr in loaded]
        return sum(a.nbytes + (0 if b is None else b.nbytes) for a, b in loaded)

    def hr(self, i: int) -> np.ndarray:
        if self._hr_cache is not None:
            return self._hr_cache[i]
        p = self.pairs[i]
        return p.hr.read(p.hr_key)

    def lr(self, i: int) -> np.ndarray | None:
        if self._lr_cache is not None:
            return self._lr_cache[i]
        p = self.pairs[i]
        return p.lr.read(p.lr_key) if p.lr is not None and p.lr_key is not None else None

    def describe(self, i: int) -> str:
        p = self.pairs[i]
        return p.hr.describe(p.hr_key)


def _checked_lr(lr: np.ndarray, hr: np.ndarray, scale: int, where: str) -> np.ndarray:
    if lr.shape[:2] != (hr.shape[0] // scale, hr.shape[1] // scale):
        raise ImageReadError(
            f"{where}: LR image is {lr.shape[1]}x{lr.shape[0]}, expected "
            f"{hr.shape[1] // scale}x{hr.shape[0] // scale} (HR / {scale}); files changed since setup?"
        )
    return lr


class TrainDataset(Dataset):
    """Random aligned ``gt_size`` crops with one D4 augmentation, LR read or made by MATLAB bicubic."""

    def __init__(
        self,
        pairs: list[Pair],
        *,
        scale: int,
        gt_size: int = 128,
        use_hflip: bool = True,
        use_rot: bool = True,
        skip_bad_files: bool = False,
        make_lr: bool = True,
        crop_size: int | None = None,
        rgb_permute: bool = False,
    ) -> None:
        if gt_size % scale:
            raise ValueError(f"gt_size {gt_size} must be a multiple of scale {scale}")
        if crop_size is not None and (crop_size % scale or crop_size < gt_size or make_lr):
            raise ValueError(
                f"crop_size {crop_size} must be a multiple of scale {scale}, at least gt_size "
                f"{gt_size}, and only with make_lr=False (a device-side degradation)"
            )
        # crop_size (data.degradation.crop_pad_size): bigger crops, padded by reflection when an
        # image is smaller (as Real-ESRGAN's dataset), cut down to gt_size after the degradation
        self.crop_size = crop_size
        # make_lr=False: the LR is synthesised later on the device (data.degradation), so an HR-only
        # pair gets a free strided stand-in instead of a MATLAB-bicubic one nobody reads
        self.make_lr = make_lr
        self.reader = _PairReader(pairs)
        self.scale, self.gt_size = scale, gt_size
        self.choices = _augment_choices(use_hflip, use_rot)
        # one of the 6 channel orders per sample (Yoo et al., CVPR 2020, "RGB permute"): keeps a
        # small training set's colour balance out of what the network learns; drawn only when on,
        # so the default random stream is unchanged
        self.rgb_permute = rgb_permute
        self.skip_bad_files = skip_bad_files

    def __len__(self) -> int:
        return len(self.reader.pairs)

    def fill_cache(self, threads: int = 4) -> int:
        return self.reader.fill_cache(threads)

    def _load(self, i: int, rng: random.Random) -> dict[str, np.ndarray]:
        size = self.crop_size or self.gt_size
        s, lq_size = self.scale, size // self.scale
        hr = mod_crop(to_rgb(self.reader.hr(i)), s)
        if min(hr.shape[:2]) < self.gt_size:
            raise ImageReadError(
                f"{self.reader.describe(i)}: HR image is {hr.shape[1]}x{hr.shape[0]}, smaller "
                f"than the {self.gt_size}x{self.gt_size} training crop (gt_size)"
            )
        if min(hr.shape[:2]) < size:  # crop_size: reflect-pad bottom/right (BORDER_REFLECT_101)
            pad = ((0, max(0, size - hr.shape[0])), (0, max(0, size - hr.shape[1])), (0, 0))
            hr = np.pad(hr, pad, mode="reflect")
        lr = self.reader.lr(i) if self.make_lr else None  # a degrader replaces the LR anyway
        top, left = random_crop_origin(rng, hr.shape[0] // s, hr.shape[1] // s, lq_size)
        if lr is None and not self.make_lr:
            lq = hr[top * s : (top + lq_size) * s : s, left * s : (left + lq_size) * s : s]
        elif lr is None:
            lq = bicubic_lr_window(hr, s, top, left, lq_size, lq_size)
        else:
            lr = _checked_lr(to_rgb(lr), hr, s, self.reader.describe(i))
            lq = lr[top : top + lq_size, left : left + lq_size]
        gt = hr[top * s : (top + lq_size) * s, left * s : (left + lq_size) * s]
        k = rng.choice(self.choices)
        # copy the crop out first (row copies), so the flip/transpose gathers stay in cache
        gt, lq = np.ascontiguousarray(gt), np.ascontiguousarray(lq)
        gt, lq = dihedral(gt, k), dihedral(lq, k)
        if self.rgb_permute:
            order = rng.sample(range(3), 3)
            gt, lq = gt[..., order], lq[..., order]
        return {"lq": lq, "gt": gt}

    def __getitem__(self, item: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        return {k: to_tensor(v) for k, v in self._sample(item).items()}

    def __getitems__(self, items: list[Any]) -> list[dict[str, Any]]:
        """Batched fetch (DataLoader uses it): integer HWC patches, converted to float once per
        batch by ``train_collate`` instead of once per sample."""
        return [{**self._sample(item), "_raw": True} for item in items]

    def _sample(self, item: int | tuple[int, int]) -> dict[str, np.ndarray]:
        index, seed = item if isinstance(item, tuple) else (int(item), int(item))
        rng = random.Random(seed)  # a few draws per sample: cheaper than a NumPy Generator
        for _attempt in range(8):
            try:
                return self._load(index, rng)
            except (ImageReadError, OSError) as err:
                if not self.skip_bad_files or len(self) < 2:
                    raise
                log.warning("skipping unreadable training image: %s", err)
                index = (index + 1 + rng.randrange(len(self) - 1)) % len(self)
        raise RuntimeError("too many unreadable training images in a row; check the dataset")


def _match_channels(lq: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Grey stays grey (flag for MATLAB-style scoring) unless the partner is colour."""
    if lq.shape[2] == gt.shape[2]:
        return lq, gt, gt.shape[2] == 1
    return to_rgb(lq), to_rgb(gt), False


class EvalDataset(Dataset):
    """Whole images of one named set: HR mod-cropped, LR read or MATLAB-bicubic from the HR."""

    def __init__(self, pairs: list[Pair], *, scale: int, name: str) -> None:
        self.reader = _PairReader(pairs)
        self.scale, self.name = scale, name

    def __len__(self) -> int:
        return len(self.reader.pairs)

    def __getitem__(self, i: int) -> dict[str, Any]:
        hr = mod_crop(self.reader.hr(i), self.scale)
        lr = self.reader.lr(i)
        if lr is None:
            lr = bicubic_lr(hr, self.scale)
        else:
            lr = _checked_lr(lr, hr, self.scale, self.reader.describe(i))
        lq, gt, grey = _match_channels(lr, hr)
        return {
            "lq": to_tensor(lq),
            "gt": to_tensor(gt),
            "name": self.reader.pairs[i].name,
            "grey": grey,
        }


class PredictDataset(Dataset):
    """LR images to upscale (no ground truth)."""

    def __init__(self, source: ImageSource) -> None:
        self.source = source
        self.keys = source.keys()

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, i: int) -> dict[str, Any]:
        img = self.source.read(self.keys[i])
        return {
            "lq": to_tensor(img),
            "name": self.keys[i].rsplit("/", 1)[-1],
            "grey": img.shape[2] == 1,
        }


def _stack_float(arrays: list[np.ndarray]) -> torch.Tensor:
    """Integer HWC patches -> float32 (B, C, H, W) in [0, 1] in one pass per batch."""
    whites = [65535.0 if a.dtype == np.uint16 else 255.0 for a in arrays]
    if len(set(whites)) == 1 and len({a.shape for a in arrays}) == 1:
        batch = np.stack(arrays).transpose(0, 3, 1, 2)
        out = np.empty(batch.shape, np.float32)
        np.divide(batch, np.float32(whites[0]), out=out)
        return torch.from_numpy(out)
    return torch.stack([to_tensor(a) for a in arrays])


def train_collate(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """``{"lq": (B,3,p,p), "gt": (B,3,P,P)}`` float32 in [0, 1] (16-bit divided by 65535)."""
    if items and items[0].get("_raw"):
        return {k: _stack_float([it[k] for it in items]) for k in ("lq", "gt")}
    return {k: torch.stack([it[k] for it in items]) for k in ("lq", "gt")}


def eval_collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack tensors; keep ``name`` and ``grey`` as plain Python lists (one entry per image)."""
    out: dict[str, Any] = {
        "name": [it["name"] for it in items],
        "grey": [it["grey"] for it in items],
    }
    for key in ("lq", "gt"):
        if key in items[0]:
            out[key] = torch.stack([it[key] for it in items])
    return out

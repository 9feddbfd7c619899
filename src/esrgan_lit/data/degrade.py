"""On-device training degradations for ``SRDataModule`` (``data/degradation=...``).

``build_degrader(cfg, scale, seed)`` turns the ``data.degradation`` config into ``None`` (bicubic:
the loader's MATLAB-bicubic LR is used as is) or a ``TrainDegrader``, which replaces the batch's
``lq`` by Real-ESRGAN's degradation of the (optionally unsharp-masked) GT, passes the pair
through the optional pool and adds ``gt_usm`` (the target of the pixel and perceptual losses).
Its RNG state and pool travel in the DataModule's ``state_dict``, so resume is exact.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from esrgan_lit.degradations import PairPool, RealESRGANDegradation, USMSharp

log = logging.getLogger(__name__)

KINDS = ("bicubic", "realesrgan")


class TrainDegrader:
    """Degrade a training batch ``{"lq", "gt"}`` on its device; see the module doc."""

    def __init__(
        self,
        scale: int,
        seed: int,
        options: Mapping[str, Any] | None = None,
        *,
        usm_gt: bool = True,
        pool_size: int = 0,
        crop_to: int | None = None,
    ) -> None:
        self.degradation = RealESRGANDegradation(scale, **dict(options or {}))
        self.scale, self.crop_to = int(scale), crop_to
        self.usm = USMSharp() if usm_gt else None
        self.pool = PairPool(pool_size) if pool_size else None
        self.seed = int(seed)
        self.rank = 0  # set by the DataModule: each rank draws its own degradations
        self.generator: torch.Generator | None = None
        self._pending: dict[str, Any] | None = None
        self.calls = 0

    def _gen(self, device: torch.device) -> torch.Generator:
        if self.generator is None or self.generator.device.type != device.type:
            seed = self.seed * 1000 + self.rank
            self.generator = torch.Generator(device=device).manual_seed(seed)
            pending, self._pending = self._pending, None
            if pending is not None:
                saved = (pending.get("device"), int(pending.get("rank", 0)))
                if saved == (device.type, self.rank):
                    self.generator.set_state(pending["rng"])
                else:  # another device type, or a DDP rank whose state the checkpoint lacks
                    self.generator.manual_seed(seed + 7919 * int(pending.get("calls", 0)))
                    log.warning(
                        "degradation RNG state saved for %s rank %d, resuming on %s rank %d: "
                        "reseeded, so degraded batches differ from an uninterrupted run",
                        *saved,
                        device.type,
                        self.rank,
                    )
                if self.pool is not None and pending.get("pool") is not None:
                    self.pool.load_state_dict(pending["pool"], device)
        return self.generator

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        gt: Tensor = batch["gt"]
        g = self._gen(gt.device)
        self.calls += 1
        usm = self.usm.to(gt.device) if self.usm is not None else None
        # Real-ESRGAN degrades the sharpened GT (RealESRNet: gt_usm; RealESRGAN: filter2D(gt_usm))
        lq = self.degradation(usm(gt) if usm is not None else gt, g)
        if self.crop_to is not None and tuple(gt.shape[-2:]) != (self.crop_to, self.crop_to):
            lq, gt = self._paired_crop(lq, gt, self.crop_to, g)
        if self.pool is not None:
            lq, gt = self.pool(lq, gt, g)
        out = {**batch, "lq": lq.contiguous(), "gt": gt}
        if usm is not None:
            out["gt_usm"] = usm(gt)  # again after the pool, as Real-ESRGAN does
        return out

    def _paired_crop(
        self, lq: Tensor, gt: Tensor, size: int, g: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        """One random aligned ``crop_to`` window for the whole batch (Real-ESRGAN's
        ``paired_random_crop`` after the degradation of its 400 px crops)."""
        s = self.scale
        lq_size = size // s
        h, w = lq.shape[-2:]
        top = int(torch.randint(h - lq_size + 1, (1,), generator=g, device=g.device))
        left = int(torch.randint(w - lq_size + 1, (1,), generator=g, device=g.device))
        lq = lq[..., top : top + lq_size, left : left + lq_size]
        gt = gt[..., top * s : top * s + size, left * s : left * s + size]
        return lq, gt.contiguous()

    def state_dict(self) -> dict[str, Any]:
        if self.generator is None:
            return dict(self._pending or {})
        state: dict[str, Any] = {
            "rng": self.generator.get_state(),
            "device": self.generator.device.type,
            "rank": self.rank,
            "calls": self.calls,
        }
        if self.pool is not None:
            state["pool"] = self.pool.state_dict()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Applied at the next batch, once the training device is known."""
        if state:
            self._pending = dict(state)
            self.calls = int(state.get("calls", 0))
            self.generator = None


def build_degrader(
    cfg: Any, scale: int, seed: int, gt_size: int | None = None
) -> TrainDegrader | None:
    """``data.degradation`` -> ``None`` (bicubic) or a ``TrainDegrader`` (realesrgan).

    With ``crop_pad_size`` the loader's crops are that big and the degrader cuts the
    ``gt_size`` training pair out of each degraded batch, as Real-ESRGAN does (400 -> 256)."""
    if cfg is None:
        return None
    if not isinstance(cfg, Mapping):
        raise ValueError(f"data.degradation must be a mapping with a 'kind', got {cfg!r}")
    cfg = dict(cfg)
    kind = cfg.pop("kind", None)
    if kind not in KINDS:
        raise ValueError(f"data.degradation.kind must be one of {KINDS}, got {kind!r}")
    if kind == "bicubic":
        return None
    unknown = sorted(set(cfg) - {"seed", "usm_gt", "pool_size", "crop_pad_size", "options"})
    if unknown:
        raise ValueError(
            f"data.degradation: unknown key(s) {unknown}; expected kind, seed, usm_gt, "
            "pool_size, crop_pad_size, options"
        )
    crop = crop_pad_size(cfg, scale, gt_size)
    dseed = cfg.get("seed")
    return TrainDegrader(
        scale,
        int(seed) if dseed is None else int(dseed),
        cfg.get("options"),
        usm_gt=bool(cfg.get("usm_gt", True)),
        pool_size=int(cfg.get("pool_size") or 0),
        crop_to=gt_size if crop is not None else None,
    )


def crop_pad_size(cfg: Mapping[str, Any], scale: int, gt_size: int | None) -> int | None:
    """The loader's crop for a realesrgan degradation config: ``None`` (the ``gt_size`` patch) or
    a checked ``crop_pad_size`` (a multiple of ``scale``, at least ``gt_size``)."""
    value = cfg.get("crop_pad_size")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value % scale:
        raise ValueError(
            f"data.degradation.crop_pad_size must be null or a whole multiple of scale {scale}, "
            f"got {value!r}"
        )
    if gt_size is not None and value < gt_size:
        raise ValueError(
            f"data.degradation.crop_pad_size={value} is smaller than data.gt_size={gt_size}: "
            "it is the crop the degradation sees before the gt_size pair is cut out of it"
        )
    return value

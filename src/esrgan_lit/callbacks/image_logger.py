"""Image panels LR | bicubic | SR | HR on fixed crops of the first validation images.

The crop is the centre of each image (the same every validation), so the panels show one patch
evolving over training. Written to W&B (``log_image``) or TensorBoard (``add_image``), rank zero.
"""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from torch import Tensor

from esrgan_lit.ops import imresize


def centre_crop_box(h: int, w: int, size: int, scale: int) -> tuple[int, int, int]:
    """Top, left and side of a centre crop aligned to ``scale`` in an HR image."""
    side = min(size, h, w) // scale * scale
    top = (h - side) // 2 // scale * scale
    left = (w - side) // 2 // scale * scale
    return top, left, side


def make_panel(lq: Tensor, sr: Tensor, gt: Tensor, crop: int) -> Tensor:
    """(3, s, 4s) tensor: nearest LR | bicubic | SR | HR on a centre crop."""
    scale = gt.shape[-1] // lq.shape[-1]
    top, left, side = centre_crop_box(gt.shape[-2], gt.shape[-1], crop, scale)
    hr = gt[..., top : top + side, left : left + side]
    srp = sr[..., top : top + side, left : left + side]
    lr = lq[..., top // scale : (top + side) // scale, left // scale : (left + side) // scale]
    bic = imresize(lr.double(), scale).float().clamp(0, 1)
    near = F.interpolate(lr[None], scale_factor=scale, mode="nearest")[0]
    tiles = [t.expand(3, -1, -1) if t.shape[0] == 1 else t for t in (near, bic, srp, hr)]
    return torch.cat([t.float().cpu() for t in tiles], dim=-1).clamp(0, 1)


class SRImageLogger(Callback):
    """Logs ``num_images`` panels from the first validation set after each validation."""

    def __init__(self, num_images: int = 4, crop: int = 128) -> None:
        self.num_images = num_images
        self.crop = crop
        self._panels: list[tuple[str, Tensor]] = []

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ):
        if trainer.sanity_checking or not trainer.is_global_zero or dataloader_idx != 0:
            return
        if not isinstance(outputs, dict) or len(self._panels) >= self.num_images:
            return
        names = outputs.get("name") or [f"img{batch_idx}"]
        for i in range(min(outputs["sr"].shape[0], self.num_images - len(self._panels))):
            name = names[i] if isinstance(names, list | tuple) else str(names)
            panel = make_panel(outputs["lq"][i], outputs["sr"][i], outputs["gt"][i], self.crop)
            self._panels.append((str(name), panel))

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        panels, self._panels = self._panels, []
        if not panels or not trainer.is_global_zero:
            return
        step = trainer.global_step
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(
                    key="val/images",
                    images=[p for _, p in panels],
                    caption=[f"{n}: LR | bicubic | SR | HR" for n, _ in panels],
                    step=step,
                )
            elif isinstance(logger, TensorBoardLogger):
                for name, panel in panels:
                    logger.experiment.add_image(f"val/{name}", panel, global_step=step)

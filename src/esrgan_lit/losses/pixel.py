"""Pixel-wise reconstruction losses: L1 (the paper's default), L2 and Charbonnier."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Criterion = Literal["l1", "l2", "charbonnier"]
Reduction = Literal["mean", "sum"]
CRITERIA: tuple[str, ...] = ("l1", "l2", "charbonnier")


def pixel_distance(
    pred: Tensor,
    target: Tensor,
    criterion: str = "l1",
    *,
    eps: float = 1e-12,
    reduction: str = "mean",
) -> Tensor:
    """Distance between two tensors of equal shape; shared by the pixel and perceptual losses."""
    if pred.shape != target.shape:
        raise ValueError(
            f"loss inputs differ in shape: pred {tuple(pred.shape)} vs target {tuple(target.shape)}"
        )
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    if criterion == "l1":
        return F.l1_loss(pred, target, reduction=reduction)
    if criterion == "l2":
        return F.mse_loss(pred, target, reduction=reduction)
    if criterion == "charbonnier":
        # sqrt((x - y)^2 + eps): a differentiable L1 (smooth at zero).
        per_elem = torch.sqrt((pred - target) ** 2 + eps)
        return per_elem.mean() if reduction == "mean" else per_elem.sum()
    raise ValueError(f"unknown criterion {criterion!r}; expected one of {CRITERIA}")


class PixelLoss(nn.Module):
    """Per-pixel loss between the super-resolved image and the ground truth."""

    def __init__(
        self, criterion: Criterion = "l1", eps: float = 1e-12, reduction: Reduction = "mean"
    ) -> None:
        super().__init__()
        if criterion not in CRITERIA:
            raise ValueError(f"unknown pixel criterion {criterion!r}; expected one of {CRITERIA}")
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        if eps < 0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        self.criterion = criterion
        self.eps = eps
        self.reduction = reduction

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return pixel_distance(pred, target, self.criterion, eps=self.eps, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"criterion={self.criterion!r}, reduction={self.reduction!r}"

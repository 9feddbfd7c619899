"""VGG19 perceptual loss on features *before* activation (ESRGAN) or after it (SRGAN)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from .pixel import CRITERIA, pixel_distance
from .vgg import VGG19_LAYER_NAMES, build_vgg19_features, resolve_layer

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class PerceptualLoss(nn.Module):
    """Weighted distance between VGG19 features of the SR image and the ground truth.

    ESRGAN's loss is ``layer_weights={"conv5_4": 1.0}`` with ``before_relu=True``: the output of
    ``features[34]``, before its ReLU, whose sparse post-activation features give weaker
    supervision. ``before_relu=False`` takes ``features[35]`` (SRGAN, the ablation). Inputs are RGB
    in [0, 1]; the loss is computed in fp32 even under autocast. The VGG network is frozen, stays in
    eval mode, and is left out of ``state_dict()`` (it is fixed ImageNet weights, not training
    state), so checkpoints stay small and resume does not depend on it.
    """

    def __init__(
        self,
        layer_weights: Mapping[str, float] | None = None,
        before_relu: bool = True,
        use_input_norm: bool = True,
        criterion: str = "l1",
        pretrained: bool = True,
        pretrained_path: str | os.PathLike[str] | None = None,
        download: bool = True,
    ) -> None:
        super().__init__()
        layer_weights = dict(layer_weights) if layer_weights is not None else {"conv5_4": 1.0}
        if not layer_weights:
            raise ValueError("layer_weights is empty; give at least one layer, e.g. conv5_4")
        if criterion not in CRITERIA:
            raise ValueError(f"unknown perceptual criterion {criterion!r}; expected {CRITERIA}")
        self.layer_weights = {str(k): float(v) for k, v in layer_weights.items()}
        self.before_relu = before_relu
        self.use_input_norm = use_input_norm
        self.criterion = criterion
        self.layer_indices = {n: resolve_layer(n, before_relu=before_relu) for n in layer_weights}
        self.vgg = build_vgg19_features(
            max(self.layer_indices.values()),
            pretrained=pretrained,
            pretrained_path=pretrained_path,
            download=download,
        )
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        # public name from torch 2.5; the private one works on the older versions we support
        post_hook = getattr(self, "register_state_dict_post_hook", self._register_state_dict_hook)
        post_hook(_drop_vgg_keys)
        self.register_load_state_dict_pre_hook(_fill_vgg_keys)

    def train(self, mode: bool = True) -> PerceptualLoss:
        """The VGG stays in eval mode whatever the parent module does."""
        super().train(mode)
        self.vgg.eval()
        return self

    def features(self, x: Tensor) -> dict[str, Tensor]:
        """Features at every configured layer (fp32)."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"PerceptualLoss expects (N, 3, H, W) RGB, got {tuple(x.shape)}")
        x = x.float()
        if self.use_input_norm:
            x = (x - self.mean) / self.std
        wanted = {idx: name for name, idx in self.layer_indices.items()}
        out: dict[str, Tensor] = {}
        for idx, module in enumerate(self.vgg):
            x = module(x)
            if idx in wanted:
                out[wanted[idx]] = x
        return out

    def forward(self, sr: Tensor, gt: Tensor) -> Tensor:
        if sr.shape != gt.shape:
            raise ValueError(f"sr {tuple(sr.shape)} and gt {tuple(gt.shape)} differ in shape")
        with torch.autocast(device_type=sr.device.type, enabled=False):
            sr_feats = self.features(sr)
            with torch.no_grad():
                gt_feats = self.features(gt.detach())
            loss = sr.new_zeros((), dtype=torch.float32)
            for name, weight in self.layer_weights.items():
                loss = loss + weight * pixel_distance(
                    sr_feats[name], gt_feats[name], self.criterion
                )
        return loss

    def extra_repr(self) -> str:
        return (
            f"layer_weights={self.layer_weights}, before_relu={self.before_relu}, "
            f"criterion={self.criterion!r}"
        )


def _drop_vgg_keys(module: nn.Module, state: dict[str, Any], prefix: str, _meta: Any) -> None:
    for key in [k for k in state if k.startswith(prefix + "vgg.")]:
        del state[key]


def _fill_vgg_keys(module: nn.Module, state: dict[str, Any], prefix: str, *_: Any) -> None:
    # The VGG is fixed: keep the loaded ImageNet weights whatever a checkpoint holds for it.
    assert isinstance(module, PerceptualLoss)
    for key, value in module.vgg.state_dict().items():
        state[f"{prefix}vgg.{key}"] = value


__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "VGG19_LAYER_NAMES", "PerceptualLoss"]

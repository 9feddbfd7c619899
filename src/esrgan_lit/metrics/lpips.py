"""LPIPS (Zhang et al. 2018) on the ``lpips`` package, without ever downloading anything.

``lpips.LPIPS`` asks torchvision for ImageNet backbone weights with ``pretrained=True``, which
fetches them from the internet at construction. Here the backbone is built without weights and
its state dict is loaded from torchvision's cache file (``$TORCH_HOME/hub/checkpoints/...``) or
from an explicit ``backbone_path``; the small linear heads ship inside the ``lpips`` package.
Inputs are float [0, 1] and are mapped to the [-1, 1] range LPIPS expects.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import torch
import torchvision
from torch import Tensor
from torchmetrics import Metric

from esrgan_lit.metrics.errors import MetricUnavailableError

__all__ = ["LPIPS", "backbone_cache_path"]

# lpips trunk name -> (torchvision builder, torchvision weights enum member)
_BACKBONES = {
    "alex": (torchvision.models.alexnet, torchvision.models.AlexNet_Weights.IMAGENET1K_V1),
    "vgg": (torchvision.models.vgg16, torchvision.models.VGG16_Weights.IMAGENET1K_V1),
    "squeeze": (
        torchvision.models.squeezenet1_1,
        torchvision.models.SqueezeNet1_1_Weights.IMAGENET1K_V1,
    ),
}


def backbone_cache_path(net: str = "alex") -> Path:
    """Where torchvision's own cache keeps the ImageNet weights LPIPS's ``net`` trunk needs."""
    if net not in _BACKBONES:
        raise ValueError(f"LPIPS net must be one of {sorted(_BACKBONES)}, got {net!r}")
    url = _BACKBONES[net][1].url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def _load_backbone(net: str, path: Path) -> dict[str, Tensor]:
    """Read a torchvision ``net`` state dict from ``path`` (``weights_only``: never runs code)."""
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt, truncated or unsafe pickle
        raise MetricUnavailableError(f"LPIPS backbone weights {path} unreadable: {err}") from err
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not any(str(k).startswith("features.") for k in sd):
        raise MetricUnavailableError(
            f"LPIPS backbone weights {path} are not a torchvision {net} state dict"
        )
    return sd


def _build_lpips(
    net: str, version: str, backbone: dict[str, Tensor], path: Path
) -> torch.nn.Module:
    import lpips  # imported lazily: it touches torchvision at import

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's `pretrained=` deprecation, from lpips
        model = lpips.LPIPS(
            pretrained=False, net=net, version=version, pnet_rand=True, verbose=False
        )
    lin_path = Path(lpips.__file__).parent / "weights" / f"v{version}" / f"{net}.pth"
    if not lin_path.is_file():
        raise MetricUnavailableError(
            f"LPIPS linear weights missing from the lpips package: {lin_path}"
        )
    lin_sd = torch.load(lin_path, map_location="cpu", weights_only=True)
    missing = [k for k in model.state_dict() if re.match(r"lin\d+\.", k) and k not in lin_sd]
    if missing:
        raise MetricUnavailableError(f"LPIPS linear weights {lin_path} lack {missing[0]}")
    model.load_state_dict(lin_sd, strict=False)
    # lpips' slices hold the trunk's `features` modules under their original indices.
    for slice_ in model.net.children():
        for name, module in slice_.named_children():
            for key, param in module.state_dict().items():
                src = backbone.get(f"features.{name}.{key}")
                if src is None or src.shape != param.shape:
                    got = "missing" if src is None else f"shape {tuple(src.shape)}"
                    raise MetricUnavailableError(
                        f"LPIPS backbone weights {path}: features.{name}.{key} {got}, "
                        f"expected shape {tuple(param.shape)} for torchvision {net}"
                    )
                param.copy_(src)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


class LPIPS(Metric):
    """Mean LPIPS distance over images (lower = closer); ``update(preds, target)``, [0, 1] inputs.

    Grey (N, 1, H, W) inputs are repeated to three channels; values are clamped to [0, 1].
    The frozen network is ``self.lpips_net`` (kept out of ``state_dict``).
    Raises :class:`MetricUnavailableError` when the backbone weights are not on this machine.
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(
        self,
        net: str = "alex",
        version: str = "0.1",
        *,
        backbone_path: str | Path | None = None,
        crop_border: int = 0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if net not in _BACKBONES:
            raise ValueError(f"LPIPS net must be one of {sorted(_BACKBONES)}, got {net!r}")
        if version != "0.1":
            raise ValueError(f"only LPIPS version '0.1' is supported, got {version!r}")
        if crop_border < 0:
            raise ValueError(f"crop_border must be >= 0, got {crop_border}")
        path = Path(backbone_path) if backbone_path is not None else backbone_cache_path(net)
        if not path.is_file():
            where = "backbone_path" if backbone_path is not None else "torchvision's cache"
            raise MetricUnavailableError(
                f"LPIPS({net!r}) needs ImageNet {net} weights, not found at {path} ({where}); "
                f"nothing is downloaded at run time: copy {path.name} there, set TORCH_HOME, "
                f"or pass backbone_path"
            )
        self.net_name, self.version, self.crop_border = net, version, int(crop_border)
        self.backbone_path = str(path)
        # Not a registered submodule: the frozen network stays out of checkpoints and state
        # dicts (alex ~10 MB, vgg ~60 MB); it follows the inputs' device on each update.
        object.__setattr__(
            self, "_lpips", _build_lpips(net, version, _load_backbone(net, path), path)
        )
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def _prepare(self, x: Tensor, name: str) -> Tensor:
        if not isinstance(x, Tensor) or not torch.is_floating_point(x):
            raise TypeError(f"LPIPS {name} must be a float tensor in [0, 1]")
        if x.dim() == 3:
            x = x.unsqueeze(0)
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"LPIPS {name} must be (N, 3|1, H, W), got {tuple(x.shape)}")
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        b = self.crop_border
        if b:
            x = x[..., b:-b, b:-b]
        return x.float().clamp(0.0, 1.0)

    def update(self, preds: Tensor, target: Tensor) -> None:
        p, t = self._prepare(preds, "preds"), self._prepare(target, "target")
        if p.shape != t.shape:
            raise ValueError(
                f"LPIPS preds and target shapes differ: {tuple(p.shape)} vs {tuple(t.shape)}"
            )
        net = self._lpips
        if next(net.parameters()).device != p.device:
            net.to(p.device)
        with torch.no_grad():
            d = net(p, t, normalize=True).flatten()
        self.total += d.sum().to(self.total)
        self.count += d.numel()

    @property
    def lpips_net(self) -> torch.nn.Module:
        """The frozen ``lpips.LPIPS`` network (eval mode, no grad)."""
        return self._lpips

    def compute(self) -> Tensor:
        return self.total / self.count

"""VGG19 feature extractor for the perceptual loss: layer names, weight loading, truncation.

Weights come from torchvision's ``VGG19_Weights.IMAGENET1K_V1`` through its own cache
(``$TORCH_HOME/hub/checkpoints/vgg19-dcbb9e9d.pth``; a connected machine downloads it there) or
from a user file (``pretrained_path``) for offline clusters. Loading never unpickles code.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from urllib.parse import urlparse

import torch
from safetensors.torch import load_file
from torch import Tensor, nn
from torchvision.models import VGG19_Weights

# torchvision vgg19().features: five blocks with 2, 2, 4, 4, 4 convs, each conv followed by a
# ReLU, each block closed by a max-pool -> 37 modules, indices 0..36.
_BLOCK_CONVS = (2, 2, 4, 4, 4)


def _layer_names() -> tuple[str, ...]:
    names: list[str] = []
    for block, n_conv in enumerate(_BLOCK_CONVS, start=1):
        for i in range(1, n_conv + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        names.append(f"pool{block}")
    return tuple(names)


VGG19_LAYER_NAMES: tuple[str, ...] = _layer_names()
VGG19_LAYER_INDEX: dict[str, int] = {name: i for i, name in enumerate(VGG19_LAYER_NAMES)}


class PerceptualWeightsUnavailableError(RuntimeError):
    """No VGG19 ImageNet weights here; ``str(err)`` names both ways to provide them."""


def resolve_layer(name: str, *, before_relu: bool) -> int:
    """Index into ``vgg19().features`` for a layer name.

    ``convX_Y`` means the conv output *before* its ReLU when ``before_relu`` (ESRGAN), else the
    activation after it (SRGAN); ``reluX_Y`` and ``poolX`` are taken literally.
    """
    if name not in VGG19_LAYER_INDEX:
        raise ValueError(
            f"unknown VGG19 layer {name!r}; expected one of convX_Y, reluX_Y, poolX "
            f"(e.g. 'conv5_4'); known: {', '.join(VGG19_LAYER_NAMES)}"
        )
    if name.startswith("conv") and not before_relu:
        name = "relu" + name[len("conv") :]
    return VGG19_LAYER_INDEX[name]


def torchvision_cache_file() -> Path:
    """Where torchvision keeps (or would download) the VGG19 ImageNet weights."""
    filename = os.path.basename(urlparse(VGG19_Weights.IMAGENET1K_V1.url).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def _unavailable(reason: str) -> PerceptualWeightsUnavailableError:
    return PerceptualWeightsUnavailableError(
        f"VGG19 ImageNet weights for the perceptual loss are not available ({reason}). Either "
        f"place torchvision's file at {torchvision_cache_file()} (torchvision downloads it there "
        'on a connected machine: `python -c "from torchvision.models import VGG19_Weights; '
        'VGG19_Weights.IMAGENET1K_V1.get_state_dict()"`), or pass pretrained_path=/path/to/'
        "vgg19.pth|.safetensors (training: model.perceptual_loss.pretrained_path=PATH)."
    )


def _read_file(path: Path) -> dict[str, Tensor]:
    if not path.is_file():
        raise _unavailable(f"pretrained_path {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            return load_file(str(path))
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a pickle with code, a truncated file, ...
        raise ValueError(f"cannot read VGG19 weights from {path}: {err}") from err
    for key in ("state_dict", "params", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise ValueError(f"{path} does not hold a state dict (found {type(obj).__name__})")
    return obj


def load_vgg19_state_dict(
    pretrained_path: str | os.PathLike[str] | None = None, *, download: bool = True
) -> dict[str, Tensor]:
    """The VGG19 ImageNet state dict from ``pretrained_path`` or torchvision's cache.

    The cache file is checked first; only when it is missing (and ``download``) is torchvision
    asked to fetch it, and a failure becomes :class:`PerceptualWeightsUnavailableError`.
    """
    if pretrained_path is not None:
        return _read_file(Path(pretrained_path).expanduser())

    cached = torchvision_cache_file()
    if not cached.is_file() and not download:
        raise _unavailable(f"{cached} is missing and download=False")
    try:
        return VGG19_Weights.IMAGENET1K_V1.get_state_dict(progress=False, weights_only=True)
    except Exception as err:
        if cached.is_file():  # present but unreadable: not a "how to get it" problem
            raise ValueError(f"cannot read VGG19 weights from {cached}: {err}") from err
        raise _unavailable(f"download failed: {type(err).__name__}: {err}") from err


def _features_subdict(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Keep ``features.N.*`` keys (full torchvision model) or bare ``N.*`` (features only)."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        for prefix in ("module.", "vgg.", "model."):
            key = key.removeprefix(prefix)
        if key.startswith("features."):
            out[key[len("features.") :]] = value
        elif key.split(".", 1)[0].isdigit():
            out[key] = value
    return out


def _vgg19_features(last_index: int) -> nn.Sequential:
    """The layers of torchvision's ``vgg19().features`` (same indices), built without the
    500 MB classifier. ReLUs are not in-place so pre-activation taps keep their values."""
    layers: list[nn.Module] = []
    in_ch = 3
    for block, n_conv in enumerate(_BLOCK_CONVS):
        out_ch = min(64 * 2**block, 512)
        for _ in range(n_conv):
            layers += [nn.Conv2d(in_ch, out_ch, 3, padding=1), nn.ReLU(inplace=False)]
            in_ch = out_ch
        layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers[: last_index + 1])


def build_vgg19_features(
    last_index: int,
    *,
    pretrained: bool = True,
    pretrained_path: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> nn.Sequential:
    """``vgg19().features[: last_index + 1]`` with ImageNet weights, frozen and in eval mode."""
    features = _vgg19_features(last_index)
    if pretrained:
        source = pretrained_path if pretrained_path is not None else torchvision_cache_file()
        state = _features_subdict(load_vgg19_state_dict(pretrained_path, download=download))
        wanted = features.state_dict()
        missing = [k for k in wanted if k not in state]
        if missing:
            raise ValueError(
                f"VGG19 weights {source} lacks {missing[0]!r} (and {len(missing) - 1} more "
                f"of the {len(wanted)} tensors up to features[{last_index}])"
            )
        for key, ref in wanted.items():
            if state[key].shape != ref.shape:
                raise ValueError(
                    f"VGG19 weights {source}: {key!r} has shape {tuple(state[key].shape)}, "
                    f"expected {tuple(ref.shape)}"
                )
        features.load_state_dict({k: state[k].float() for k in wanted}, strict=True)
    else:
        warnings.warn(
            "PerceptualLoss(pretrained=False): VGG19 has RANDOM weights. This is for tests only; "
            "a perceptual loss on random features does not train ESRGAN.",
            UserWarning,
            stacklevel=3,
        )
    features.eval()
    features.requires_grad_(False)
    return features

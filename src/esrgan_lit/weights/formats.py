"""Generator checkpoint formats: recognise a key layout, rename it, read the spec from shapes.

The knowledge lives with each architecture family (``archs/rrdbnet_keys.py``, ``archs/srresnet.py``
declare their layouts as tables); this module walks those tables and turns a layout's complaint
into a :class:`CheckpointError`. The canonical layout is our modules' own attribute names, which
for RRDBNet are BasicSR's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import torch
from torch import nn

from esrgan_lit.archs import RRDBNet, SRResNet, rrdbnet_keys, srresnet
from esrgan_lit.archs.keymaps import KeyLayout, KeyLayoutError
from esrgan_lit.archs.keymaps import StateDict as StateDict
from esrgan_lit.weights.errors import CheckpointError

# In detection order: the first layout whose key condition holds is the one.
LAYOUTS: tuple[KeyLayout, ...] = (srresnet.LAYOUT, *rrdbnet_keys.LAYOUTS)
_BY_NAME = {layout.name: layout for layout in LAYOUTS}
_ARCHS: dict[str, type[nn.Module]] = {"RRDBNet": RRDBNet, "SRResNet": SRResNet}
# Constructor arguments every family has, and the one each has of its own.
_SIZES = ("scale", "num_in_ch", "num_out_ch", "num_feat", "num_block")
_OWN = {"RRDBNet": "num_grow_ch", "SRResNet": "batch_norm"}

BASICSR = rrdbnet_keys.BASICSR.name  # BasicSR / Real-ESRGAN / esrgan-lit
ESRGAN_NEW = rrdbnet_keys.ESRGAN_NEW.name  # original ESRGAN repository, "new arch"
ESRGAN_OLD = rrdbnet_keys.ESRGAN_OLD.name  # original ESRGAN repository, "old arch"
SRRESNET = srresnet.LAYOUT.name  # this project's SRResNet
FORMATS = tuple(layout.name for layout in LAYOUTS)


@dataclass(frozen=True)
class GeneratorSpec:
    """Everything needed to rebuild a generator from a state dict."""

    arch: str  # "RRDBNet" | "SRResNet"
    scale: int
    num_in_ch: int
    num_out_ch: int
    num_feat: int
    num_block: int
    num_grow_ch: int = 0  # RRDBNet only
    batch_norm: bool = False  # SRResNet only

    def _kwargs(self) -> dict[str, object]:
        """The constructor arguments of ``arch`` (the other family's field is dropped)."""
        return {n: getattr(self, n) for n in (*_SIZES, _OWN[self.arch])}

    def build(self) -> nn.Module:
        return _ARCHS[self.arch](**self._kwargs())

    def metadata(self) -> dict[str, str]:
        """String metadata for safetensors headers (``format`` says who wrote it)."""
        meta = {k: str(v) for k, v in asdict(self).items()}
        for arch, field in _OWN.items():
            if arch != self.arch:
                meta.pop(field)
        meta["format"] = "esrgan-lit"
        return meta

    @classmethod
    def of(cls, model: nn.Module) -> GeneratorSpec:
        """Read the spec from a built ``RRDBNet`` or ``SRResNet`` (their own size attributes)."""
        for arch, kind in _ARCHS.items():
            if isinstance(model, kind):
                return cls(arch, **{n: getattr(model, n) for n in (*_SIZES, _OWN[arch])})
        raise CheckpointError(
            f"expected an RRDBNet or SRResNet generator, got {type(model).__name__}"
        )


def translates_keys(model: nn.Module) -> bool:
    """True when checkpoints for ``model``'s family may come in a foreign key layout (so load
    them through ``load_generator``, which renames, rather than as raw state dicts)."""
    return any(isinstance(model, layout.arch) and layout.to_canonical for layout in LAYOUTS)


def detect_format(sd: Mapping[str, torch.Tensor], name: str = "<state dict>") -> str:
    """Recognise the key layout; an unknown one is an error listing what is supported."""
    keys = set(sd)
    for layout in LAYOUTS:
        if layout.detect(keys):
            return layout.name
    sample = ", ".join(list(sd)[:6]) or "(no tensors)"
    known = ", ".join(layout.summary for layout in LAYOUTS)
    raise CheckpointError(
        f"{name}: unknown generator architecture; keys start with [{sample}]; "
        f"expected one of: {known}"
    )


def _layout(fmt: str) -> KeyLayout:
    if fmt not in _BY_NAME:
        raise ValueError(f"unknown key format {fmt!r}; expected one of {FORMATS}")
    return _BY_NAME[fmt]


def to_canonical(sd: Mapping[str, torch.Tensor], fmt: str, name: str = "<state dict>") -> StateDict:
    """Rename ``sd`` from layout ``fmt`` to our attribute names (BasicSR's for RRDBNet)."""
    layout = _layout(fmt)
    try:
        return layout.canonical(sd, name)
    except KeyLayoutError as err:
        raise CheckpointError(str(err)) from None


def from_canonical(sd: Mapping[str, torch.Tensor], fmt: str) -> StateDict:
    """Rename a canonical state dict into layout ``fmt`` (for export and tests)."""
    return _layout(fmt).foreign(sd)


def infer_spec(
    sd: Mapping[str, torch.Tensor],
    fmt: str,
    name: str = "<state dict>",
    hints: Mapping[str, str] | None = None,
) -> GeneratorSpec:
    """Read the generator's sizes from a canonical state dict's tensor shapes.

    ``hints`` are safetensors metadata written by ``save_generator``; the family's
    ``read_kwargs`` says what they settle (for RRDBNet: pixel-unshuffle x2/x1 vs a wide x4 input).
    """
    layout = _layout(fmt)
    try:
        kwargs = layout.read_kwargs(sd, name, hints or {})
    except KeyLayoutError as err:
        raise CheckpointError(str(err)) from None
    return GeneratorSpec(layout.arch.__name__, **kwargs)

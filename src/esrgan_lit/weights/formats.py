"""Key formats of ESRGAN-family generator checkpoints and reading sizes from tensor shapes.

The canonical layout is BasicSR's, which is also this project's own (``RRDBNet``'s attribute
names): ``conv_first``, ``body.{i}.rdb{j}.conv{k}``, ``conv_body``, ``conv_up{n}``, ``conv_hr``,
``conv_last``. Foreign layouts are mapped onto it key by key; sizes (nf, nb, gc, channels, scale)
are read from the shapes, never assumed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import torch
from torch import nn

from esrgan_lit.archs import RRDBNet, SRResNet
from esrgan_lit.weights.errors import CheckpointError

StateDict = dict[str, torch.Tensor]

BASICSR = "basicsr"  # BasicSR / Real-ESRGAN / esrgan-lit
ESRGAN_NEW = "esrgan_new"  # original ESRGAN repository, "new arch" (RRDB_trunk, trunk_conv, ...)
ESRGAN_OLD = "esrgan_old"  # original ESRGAN repository, "old arch" (model.0, model.1.sub, ...)
SRRESNET = "srresnet"  # this project's SRResNet
FORMATS = (BASICSR, ESRGAN_NEW, ESRGAN_OLD, SRRESNET)

_KNOWN = (
    "BasicSR/Real-ESRGAN/esrgan-lit (conv_first, body.{i}.rdb{j}.conv{k}, conv_body, conv_up1, ...), "
    "ESRGAN new arch (conv_first, RRDB_trunk.{i}.RDB{j}.conv{k}, trunk_conv, upconv1, HRconv, ...), "
    "ESRGAN old arch (model.0, model.1.sub.{i}.RDB{j}.conv{k}.0, model.3, ...), "
    "esrgan-lit SRResNet (conv_first, act_first, body.{i}.conv1, upsample.{k}, conv_last)"
)


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

    def build(self) -> nn.Module:
        if self.arch == "SRResNet":
            return SRResNet(
                self.num_in_ch,
                self.num_out_ch,
                self.scale,
                self.num_feat,
                self.num_block,
                batch_norm=self.batch_norm,
            )
        return RRDBNet(
            self.num_in_ch,
            self.num_out_ch,
            self.scale,
            self.num_feat,
            self.num_block,
            self.num_grow_ch,
        )

    def metadata(self) -> dict[str, str]:
        """String metadata for safetensors headers (``format`` says who wrote it)."""
        meta = {k: str(v) for k, v in asdict(self).items()}
        if self.arch == "RRDBNet":
            meta.pop("batch_norm")
        else:
            meta.pop("num_grow_ch")
        meta["format"] = "esrgan-lit"
        return meta

    @classmethod
    def of(cls, model: nn.Module) -> GeneratorSpec:
        """Read the spec from a built ``RRDBNet`` or ``SRResNet``."""
        if isinstance(model, RRDBNet):
            return cls(
                "RRDBNet",
                model.scale,
                model.num_in_ch,
                model.num_out_ch,
                model.num_feat,
                model.num_block,
                num_grow_ch=model.num_grow_ch,
            )
        if isinstance(model, SRResNet):
            return cls(
                "SRResNet",
                model.scale,
                model.num_in_ch,
                model.num_out_ch,
                model.num_feat,
                model.num_block,
                batch_norm=model.batch_norm,
            )
        raise CheckpointError(
            f"expected an RRDBNet or SRResNet generator, got {type(model).__name__}"
        )


def detect_format(sd: Mapping[str, torch.Tensor], name: str = "<state dict>") -> str:
    """Recognise the key layout; an unknown one is an error listing what is supported."""
    keys = set(sd)
    if "conv_first.weight" in keys and "act_first.weight" in keys:
        return SRRESNET
    if "model.0.weight" in keys and any(k.startswith("model.1.sub.") for k in keys):
        return ESRGAN_OLD
    if any(k.startswith("RRDB_trunk.") for k in keys):
        return ESRGAN_NEW
    if "conv_first.weight" in keys and any(re.match(r"body\.\d+\.rdb1\.", k) for k in keys):
        return BASICSR
    sample = ", ".join(list(sd)[:6]) or "(no tensors)"
    raise CheckpointError(
        f"{name}: unknown generator architecture; keys start with [{sample}]; "
        f"expected one of: {_KNOWN}"
    )


_NEW_TO_CANON = [
    (re.compile(r"^RRDB_trunk\.(\d+)\.RDB(\d)\."), r"body.\1.rdb\2."),
    (re.compile(r"^trunk_conv\."), "conv_body."),
    (re.compile(r"^upconv(\d)\."), r"conv_up\1."),
    (re.compile(r"^HRconv\."), "conv_hr."),
]
_CANON_TO_NEW = [
    (re.compile(r"^body\.(\d+)\.rdb(\d)\."), r"RRDB_trunk.\1.RDB\2."),
    (re.compile(r"^conv_body\."), "trunk_conv."),
    (re.compile(r"^conv_up(\d)\."), r"upconv\1."),
    (re.compile(r"^conv_hr\."), "HRconv."),
]


def _sub_all(key: str, rules: list[tuple[re.Pattern[str], str]]) -> str:
    for pattern, repl in rules:
        key, n = pattern.subn(repl, key)
        if n:
            return key
    return key


def _old_to_canon(sd: Mapping[str, torch.Tensor], name: str) -> StateDict:
    trunk: set[int] = set()
    tail: set[int] = set()
    for k in sd:
        m = re.match(r"^model\.1\.sub\.(\d+)\.", k)
        if m and ".RDB" not in k:
            trunk.add(int(m.group(1)))
        m = re.match(r"^model\.(\d+)\.", k)
        if m and int(m.group(1)) > 1:
            tail.add(int(m.group(1)))
    if len(trunk) != 1 or len(tail) < 3:
        raise CheckpointError(
            f"{name}: ESRGAN old-arch layout expects one trunk conv model.1.sub.{{nb}} and "
            f"model.3, model.6, model.8, model.10 (x4); found trunk {sorted(trunk)}, "
            f"tail {sorted(tail)}"
        )
    (nb,) = trunk
    *ups, hr, last = sorted(tail)
    tail_map = {last: "conv_last", hr: "conv_hr"}
    tail_map.update({idx: f"conv_up{n}" for n, idx in enumerate(ups, start=1)})
    out: StateDict = {}
    for k, v in sd.items():
        m = re.match(r"^model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(.+)$", k)
        if m:
            i, j, c, rest = m.groups()
            out[f"body.{i}.rdb{j}.conv{c}.{rest}"] = v
            continue
        m = re.match(rf"^model\.1\.sub\.{nb}\.(.+)$", k)
        if m:
            out[f"conv_body.{m.group(1)}"] = v
            continue
        m = re.match(r"^model\.(\d+)\.(.+)$", k)
        if m and int(m.group(1)) in tail_map:
            out[f"{tail_map[int(m.group(1))]}.{m.group(2)}"] = v
            continue
        if m and m.group(1) == "0":
            out[f"conv_first.{m.group(2)}"] = v
            continue
        out[k] = v  # left as is: the strict load reports it as unexpected
    return out


def _canon_to_old(sd: Mapping[str, torch.Tensor]) -> StateDict:
    nb = 1 + max(int(m.group(1)) for k in sd if (m := re.match(r"^body\.(\d+)\.", k)))
    nup = len({k.split(".")[0] for k in sd if k.startswith("conv_up")})
    names = {"conv_first": "model.0", "conv_body": f"model.1.sub.{nb}"}
    names.update({f"conv_up{n}": f"model.{3 * n}" for n in range(1, nup + 1)})
    names.update({"conv_hr": f"model.{3 * nup + 2}", "conv_last": f"model.{3 * nup + 4}"})
    out: StateDict = {}
    for k, v in sd.items():
        m = re.match(r"^body\.(\d+)\.rdb(\d)\.conv(\d)\.(.+)$", k)
        if m:
            i, j, c, rest = m.groups()
            out[f"model.1.sub.{i}.RDB{j}.conv{c}.0.{rest}"] = v
        else:
            head, rest = k.split(".", 1)
            out[f"{names[head]}.{rest}"] = v
    return out


def to_canonical(sd: Mapping[str, torch.Tensor], fmt: str, name: str = "<state dict>") -> StateDict:
    """Rename ``sd`` from layout ``fmt`` to the BasicSR/esrgan-lit layout."""
    if fmt in (BASICSR, SRRESNET):
        return dict(sd)
    if fmt == ESRGAN_NEW:
        return {_sub_all(k, _NEW_TO_CANON): v for k, v in sd.items()}
    if fmt == ESRGAN_OLD:
        return _old_to_canon(sd, name)
    raise ValueError(f"unknown key format {fmt!r}; expected one of {FORMATS}")


def from_canonical(sd: Mapping[str, torch.Tensor], fmt: str) -> StateDict:
    """Rename a canonical RRDBNet state dict into layout ``fmt`` (for export and tests)."""
    if fmt in (BASICSR, SRRESNET):
        return dict(sd)
    if fmt == ESRGAN_NEW:
        return {_sub_all(k, _CANON_TO_NEW): v for k, v in sd.items()}
    if fmt == ESRGAN_OLD:
        return _canon_to_old(sd)
    raise ValueError(f"unknown key format {fmt!r}; expected one of {FORMATS}")


def _need(sd: Mapping[str, torch.Tensor], key: str, ndim: int, name: str) -> torch.Tensor:
    if key not in sd:
        raise CheckpointError(f"{name}: missing key {key!r} needed to read the network size")
    t = sd[key]
    if t.ndim != ndim:
        raise CheckpointError(
            f"{name}: key {key!r} has shape {tuple(t.shape)}; expected a {ndim}-D conv weight"
        )
    return t


def _indices(sd: Mapping[str, torch.Tensor], pattern: str) -> set[int]:
    return {int(m.group(1)) for k in sd if (m := re.match(pattern, k))}


def infer_spec(
    sd: Mapping[str, torch.Tensor],
    fmt: str,
    name: str = "<state dict>",
    hints: Mapping[str, str] | None = None,
) -> GeneratorSpec:
    """Read the generator's sizes from a canonical state dict's tensor shapes.

    ``hints`` (safetensors metadata written by ``save_generator``) settle the one thing shapes
    cannot: whether a ``conv_first`` with 4x / 16x the output channels is a pixel-unshuffle x2 /
    x1 model or a genuinely 12- / 48-channel x4 input. Without hints the unshuffle reading wins.
    """
    hints = hints or {}
    if fmt == SRRESNET:
        return _infer_srresnet(sd, name)
    first = _need(sd, "conv_first.weight", 4, name)
    grow = _need(sd, "body.0.rdb1.conv1.weight", 4, name)
    last = _need(sd, "conv_last.weight", 4, name)
    nf, c_in = first.shape[:2]
    out_ch = last.shape[0]
    nb = 1 + max(_indices(sd, r"^body\.(\d+)\."))
    nup = len(_indices(sd, r"^conv_up(\d+)\.weight$"))
    if nup == 3:
        scale, in_ch = 8, c_in
    elif nup == 2:
        if "scale" in hints:
            scale = int(hints["scale"])
        elif c_in == 16 * out_ch:
            scale = 1
        elif c_in == 4 * out_ch:
            scale = 2
        else:
            scale = 4
        unshuffle = {1: 4, 2: 2, 4: 1}.get(scale)
        if unshuffle is None or c_in % unshuffle**2:
            raise CheckpointError(
                f"{name}: metadata says scale {hints.get('scale')} but conv_first.weight has "
                f"{c_in} input channels and there are 2 upsampling convs (x4, or x2/x1 with "
                f"pixel_unshuffle)"
            )
        in_ch = c_in // unshuffle**2
    else:
        raise CheckpointError(
            f"{name}: found {nup} upsampling convs (conv_up*); RRDBNet needs 2 (x4, x2, x1) "
            f"or 3 (x8)"
        )
    if "scale" in hints and int(hints["scale"]) != scale:
        raise CheckpointError(
            f"{name}: metadata says scale {hints['scale']} but the tensors describe x{scale}"
        )
    return GeneratorSpec(
        "RRDBNet", scale, int(in_ch), int(out_ch), int(nf), nb, num_grow_ch=int(grow.shape[0])
    )


def _infer_srresnet(sd: Mapping[str, torch.Tensor], name: str) -> GeneratorSpec:
    first = _need(sd, "conv_first.weight", 4, name)
    last = _need(sd, "conv_last.weight", 4, name)
    nf = int(first.shape[0])
    scale = 1
    for idx in sorted(_indices(sd, r"^upsample\.(\d+)\.weight$")):
        t = sd[f"upsample.{idx}.weight"]
        if t.ndim == 4:  # the conv before each PixelShuffle (PReLU weights are 1-D)
            r = round((t.shape[0] / nf) ** 0.5)
            scale *= r
    if scale not in (2, 3, 4, 8):
        raise CheckpointError(f"{name}: SRResNet upsampling convs give scale {scale}")
    return GeneratorSpec(
        "SRResNet",
        scale,
        int(first.shape[1]),
        int(last.shape[0]),
        nf,
        len(_indices(sd, r"^body\.(\d+)\.")),
        batch_norm="bn_body.weight" in sd,
    )

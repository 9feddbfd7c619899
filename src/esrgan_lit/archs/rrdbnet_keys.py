"""RRDBNet's checkpoint key layouts and its constructor arguments read from tensor shapes.

=============  ================================================  ===============================
layout         characteristic keys                               who writes it
=============  ================================================  ===============================
``basicsr``    ``conv_first``, ``body.{i}.rdb{j}.conv{k}``,      BasicSR, Real-ESRGAN (inside
               ``conv_body``, ``conv_up{n}``, ``conv_hr``,       ``params_ema`` / ``params``),
               ``conv_last`` (= our attribute names)             esrgan-lit (.safetensors with
                                                                 the spec as metadata, or .pth
                                                                 as ``{"params_ema": ...}``)
``esrgan_new`` ``RRDB_trunk.{i}.RDB{j}.conv{k}``, ``trunk_conv``,  the original ESRGAN repository
               ``upconv{n}``, ``HRconv``                          ("new arch")
``esrgan_old`` ``model.0``, ``model.1.sub.{i}.RDB{j}.conv{k}.0``,  the original ESRGAN repository
               ``model.1.sub.{nb}`` (trunk conv), ``model.3, 6,   ("old arch", the released
               8, 10`` (x4 tail)                                  RRDB_ESRGAN_x4.pth)
=============  ================================================  ===============================

Containers (``params_ema`` > ``params`` > ``state_dict``, Lightning's ``generator_ema.`` /
``generator.`` prefixes, DDP's ``module.``) are unwrapped before a layout is recognised
(``esrgan_lit.weights.io.unwrap``): they are not part of the architecture's knowledge.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

from esrgan_lit.archs.keymaps import (
    KeyLayout,
    KeyLayoutError,
    Keys,
    StateDict,
    indices,
    need,
    rename,
)
from esrgan_lit.archs.rrdbnet import _UNSHUFFLE, RRDBNet


def read_kwargs(
    sd: Mapping[str, torch.Tensor], name: str, hints: Mapping[str, str]
) -> dict[str, Any]:
    """RRDBNet's constructor arguments from a canonical state dict's tensor shapes.

    ``hints`` (safetensors metadata written by ``save_generator``) settle the one thing shapes
    cannot: whether a ``conv_first`` with 4x / 16x the output channels is a pixel-unshuffle x2 /
    x1 model or a genuinely 12- / 48-channel x4 input. Without hints the unshuffle reading wins.
    """
    first = need(sd, "conv_first.weight", 4, name)
    grow = need(sd, "body.0.rdb1.conv1.weight", 4, name)
    last = need(sd, "conv_last.weight", 4, name)
    nf, c_in = first.shape[:2]
    out_ch = last.shape[0]
    nb = 1 + max(indices(sd, r"^body\.(\d+)\."))
    nup = len(indices(sd, r"^conv_up(\d+)\.weight$"))
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
        unshuffle = _UNSHUFFLE.get(scale) if scale != 8 else None
        if unshuffle is None or c_in % unshuffle**2:
            raise KeyLayoutError(
                f"{name}: metadata says scale {hints.get('scale')} but conv_first.weight has "
                f"{c_in} input channels and there are 2 upsampling convs (x4, or x2/x1 with "
                f"pixel_unshuffle)"
            )
        in_ch = c_in // unshuffle**2
    else:
        raise KeyLayoutError(
            f"{name}: found {nup} upsampling convs (conv_up*); RRDBNet needs 2 (x4, x2, x1) "
            f"or 3 (x8)"
        )
    if "scale" in hints and int(hints["scale"]) != scale:
        raise KeyLayoutError(
            f"{name}: metadata says scale {hints['scale']} but the tensors describe x{scale}"
        )
    return {
        "num_in_ch": int(in_ch),
        "num_out_ch": int(out_ch),
        "scale": scale,
        "num_feat": int(nf),
        "num_block": nb,
        "num_grow_ch": int(grow.shape[0]),
    }


# The dense-block convs keep their indices; every other conv is named by its position.
_OLD_RDB = (r"^model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.", r"body.\1.rdb\2.conv\3.")
_NEW_RDB = (r"^body\.(\d+)\.rdb(\d)\.conv(\d)\.", r"model.1.sub.\1.RDB\2.conv\3.0.")


def _old_names(nb: int, ups: list[int], hr: int, last: int) -> list[tuple[str, str]]:
    """(our name, old-arch name) of each conv outside the dense blocks."""
    names = [("conv_first", "model.0"), ("conv_body", f"model.1.sub.{nb}")]
    names += [(f"conv_up{n}", f"model.{i}") for n, i in enumerate(ups, start=1)]
    return [*names, ("conv_hr", f"model.{hr}"), ("conv_last", f"model.{last}")]


def _old_to_canon(sd: Mapping[str, torch.Tensor], name: str) -> StateDict:
    """Old-arch names are positions in one ``nn.Sequential``: the tail's positions depend on the
    number of upsampling stages and the trunk conv's on the number of blocks, so read both."""
    trunk = {
        int(m.group(1))
        for k in sd
        if ".RDB" not in k and (m := re.match(r"^model\.1\.sub\.(\d+)\.", k))
    }
    tail = sorted(i for i in indices(sd, r"^model\.(\d+)\.") if i > 1)
    if len(trunk) != 1 or len(tail) < 3:
        raise KeyLayoutError(
            f"{name}: ESRGAN old-arch layout expects one trunk conv model.1.sub.{{nb}} and "
            f"model.3, model.6, model.8, model.10 (x4); found trunk {sorted(trunk)}, "
            f"tail {tail}"
        )
    names = _old_names(trunk.pop(), tail[:-2], tail[-2], tail[-1])
    # Unknown keys are left as they are: the strict load reports them as unexpected.
    return rename(sd, [_OLD_RDB, *((rf"^{re.escape(old)}\.", f"{ours}.") for ours, old in names)])


def _canon_to_old(sd: Mapping[str, torch.Tensor], name: str = "<state dict>") -> StateDict:
    nb = 1 + max(indices(sd, r"^body\.(\d+)\."))
    nup = len(indices(sd, r"^conv_up(\d+)\."))
    names = _old_names(nb, [3 * n for n in range(1, nup + 1)], 3 * nup + 2, 3 * nup + 4)
    return rename(sd, [_NEW_RDB, *((rf"^{ours}\.", f"{old}.") for ours, old in names)])


BASICSR = KeyLayout(
    name="basicsr",
    arch=RRDBNet,
    summary=(
        "BasicSR/Real-ESRGAN/esrgan-lit (conv_first, body.{i}.rdb{j}.conv{k}, conv_body, "
        "conv_up1, ...)"
    ),
    detect=Keys(all=("conv_first.weight",), match=(r"body\.\d+\.rdb1\.",)),
    read_kwargs=read_kwargs,
)
ESRGAN_NEW = KeyLayout(
    name="esrgan_new",
    arch=RRDBNet,
    summary="ESRGAN new arch (conv_first, RRDB_trunk.{i}.RDB{j}.conv{k}, trunk_conv, upconv1, HRconv, ...)",
    detect=Keys(prefix=("RRDB_trunk.",)),
    read_kwargs=read_kwargs,
    to_canonical=(
        (r"^RRDB_trunk\.(\d+)\.RDB(\d)\.", r"body.\1.rdb\2."),
        (r"^trunk_conv\.", "conv_body."),
        (r"^upconv(\d)\.", r"conv_up\1."),
        (r"^HRconv\.", "conv_hr."),
    ),
    from_canonical=(
        (r"^body\.(\d+)\.rdb(\d)\.", r"RRDB_trunk.\1.RDB\2."),
        (r"^conv_body\.", "trunk_conv."),
        (r"^conv_up(\d)\.", r"upconv\1."),
        (r"^conv_hr\.", "HRconv."),
    ),
)
ESRGAN_OLD = KeyLayout(
    name="esrgan_old",
    arch=RRDBNet,
    summary="ESRGAN old arch (model.0, model.1.sub.{i}.RDB{j}.conv{k}.0, model.3, ...)",
    detect=Keys(all=("model.0.weight",), prefix=("model.1.sub.",)),
    read_kwargs=read_kwargs,
    to_canonical=_old_to_canon,
    from_canonical=_canon_to_old,
)
# In detection order: the first layout whose condition holds is the one.
LAYOUTS = (ESRGAN_OLD, ESRGAN_NEW, BASICSR)

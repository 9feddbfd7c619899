"""Safe reading and atomic writing of generator checkpoints.

Reading never runs pickled code: pickles go through ``torch.load(weights_only=True)``,
``.safetensors`` through safetensors. Lightning checkpoints may carry hyper-parameters pickled
as objects (OmegaConf configs, ``pathlib`` paths, Hydra ``_partial_`` optimisers, modules); those
globals are bound to an inert placeholder class, so none of their code runs and the tensors
still load. Any other global (``os.system``, ``builtins.exec``, ...) is refused outright.
"""

from __future__ import annotations

import os
import pickle
import pickletools
import re
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from esrgan_lit.utils.atomic import atomic_write_path
from esrgan_lit.weights.errors import CheckpointError, UnsafeCheckpointError
from esrgan_lit.weights.formats import GeneratorSpec, StateDict, detect_format, infer_spec
from esrgan_lit.weights.formats import to_canonical as _to_canonical
from esrgan_lit.weights.hub import resolve as hub_resolve
from esrgan_lit.weights.wandb_ref import resolve_wandb_ref

Source = str | os.PathLike[str] | Mapping[str, Any] | nn.Module

# Modules whose pickled objects are configuration data, never needed to read the tensors.
_INERT_PREFIXES = (
    "omegaconf.",
    "pathlib.",
    "argparse.Namespace",
    "lightning.fabric.utilities.data.AttributeDict",
    "pytorch_lightning.utilities.parsing.AttributeDict",
    "lightning.pytorch.utilities.parsing.AttributeDict",
    "typing.",
    "enum.",
    "collections.",
    "datetime.",
    "functools.partial",
    # Hydra ``_partial_`` optimiser factories and modules kept in Lightning hyper-parameters:
    # replaced by the placeholder too, so no constructor or __setstate__ of theirs runs.
    "torch.optim.",
    "torch.nn.modules.",
    "esrgan_lit.",
)
# Plain data types; listed by full name (a prefix would also admit builtins.eval).
_INERT_NAMES = {
    f"builtins.{t}"
    for t in [
        "bool",
        "int",
        "float",
        "complex",
        "str",
        "bytes",
        "list",
        "tuple",
        "dict",
        "set",
        "frozenset",
        "slice",
        "object",
    ]
}
_PREFIXES = ("generator_ema.module.", "generator_ema.", "generator.")
_WRAPPERS = ("module.", "_orig_mod.")


class _Inert:
    """Stands in for an allow-listed config class: stores its arguments, runs nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _torch_load(path: Path) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*pickle protocol.*")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not zipfile.is_zipfile(path):
            found = _pickle_globals(path) or re.findall(r"GLOBAL ([\w.]+)", str(exc))
            found = [g for g in found if g not in _TORCH_LEGACY]
            if not found:
                raise CheckpointError(
                    f"{path}: cannot read checkpoint: file is truncated, corrupt or not a "
                    f"PyTorch/safetensors checkpoint ({_first_line(exc)})"
                ) from None
            raise UnsafeCheckpointError(
                f"{path}: refused to load: its pickle would import {', '.join(found[:5])}; "
                f"nothing was executed"
            ) from None
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        bad = [g for g in unsafe if g not in _INERT_NAMES and not g.startswith(_INERT_PREFIXES)]
        if bad:
            raise UnsafeCheckpointError(
                f"{path}: refused to load: its pickle would import {', '.join(bad[:5])}, "
                f"which is neither tensor data nor a known config class; nothing was executed"
            ) from None
        with torch.serialization.safe_globals([(_Inert, g) for g in unsafe]):
            return torch.load(path, map_location="cpu", weights_only=True)


_TORCH_LEGACY = {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2"}


def _pickle_globals(path: Path, max_pickles: int = 4) -> list[str]:
    """Names a (legacy, non-zip) pickle file imports, read statically: nothing is executed."""
    found: list[str] = []
    try:
        with open(path, "rb") as f:
            for _ in range(max_pickles):
                strings: list[str] = []
                for op, arg, _pos in pickletools.genops(f):
                    if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
                        strings.append(str(arg))
                    elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                        found.append(f"{strings[-2]}.{strings[-1]}")
                    elif op.name in ("GLOBAL", "INST"):
                        found.append(str(arg).replace(" ", "."))
    except Exception:  # malformed or end of file: report what was seen so far
        pass
    return list(dict.fromkeys(found))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _is_safetensors(path: Path) -> bool:
    if path.suffix.lower() == ".safetensors":
        return True
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{" and not head.startswith(b"PK")


def read_checkpoint(path: str | os.PathLike[str]) -> tuple[Any, dict[str, str]]:
    """Read a checkpoint file safely: (the stored object, safetensors metadata or ``{}``)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: file is empty")
    try:
        if _is_safetensors(path):
            with safe_open(str(path), framework="pt", device="cpu") as f:
                meta = dict(f.metadata() or {})
                return {k: f.get_tensor(k) for k in f.keys()}, meta  # noqa: SIM118
        return _torch_load(path), {}
    except CheckpointError:
        raise
    except Exception as exc:
        raise CheckpointError(
            f"{path}: cannot read checkpoint: file is truncated, corrupt or not a "
            f"PyTorch/safetensors checkpoint ({type(exc).__name__}: {_first_line(exc)})"
        ) from exc


def _strip_wrappers(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for w in _WRAPPERS:
            if key.startswith(w):
                key, changed = key[len(w) :], True
    return key


def unwrap(obj: Any, name: str = "<state dict>") -> StateDict:
    """Find the generator's tensors inside any container we know.

    ``params_ema`` > ``params`` > ``state_dict`` (BasicSR, Lightning, generic), then inside a
    Lightning state dict the EMA generator > the generator (``generator_ema.module.``,
    ``generator_ema.``, ``generator.``); ``module.`` / ``_orig_mod.`` prefixes are dropped.
    """
    if isinstance(obj, _Inert):
        raise CheckpointError(
            f"{name}: holds a pickled Python object (e.g. a whole nn.Module), not a state dict; "
            f"it was not executed. Save model.state_dict() or use save_generator()"
        )
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"{name}: expected a dict of tensors (a state dict), got {type(obj).__name__}"
        )
    for key in ("params_ema", "params", "state_dict", "model_state_dict"):
        if isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    obj = {_strip_wrappers(str(k)): v for k, v in obj.items()}
    for prefix in _PREFIXES:
        sub = {k[len(prefix) :]: v for k, v in obj.items() if k.startswith(prefix)}
        if any(isinstance(v, torch.Tensor) for v in sub.values()):
            obj = {_strip_wrappers(k): v for k, v in sub.items()}
            break
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(
            f"{name}: key {bad[0]!r} holds a {type(obj[bad[0]]).__name__}, not a tensor; "
            f"expected a flat state dict (or params_ema / params / state_dict inside)"
        )
    if not obj:
        raise CheckpointError(f"{name}: the checkpoint holds no tensors")
    return obj


def _source_name(source: Source) -> str:
    if isinstance(source, str | os.PathLike):
        return str(source)
    return f"<{type(source).__name__}>"


def load_state_dict(source: str | os.PathLike[str] | Mapping[str, Any]) -> StateDict:
    """The generator tensors of a checkpoint file (or container dict), keys as stored.

    Safe (no pickled code runs) and unwrapped (see :func:`unwrap`); keys are not renamed, so
    foreign layouts keep their own names: use :func:`load_generator` for a ready network.
    """
    if isinstance(source, Mapping):
        return unwrap(source)
    obj, _ = read_checkpoint(source)
    return unwrap(obj, str(source))


def resolve(source: Source) -> tuple[StateDict, GeneratorSpec, str]:
    """Canonical (BasicSR-layout) state dict, the spec read from it, and a name for errors."""
    name = _source_name(source)
    if isinstance(source, nn.Module):
        model = _unwrap_module(source)
        sd = {_strip_wrappers(k): v for k, v in model.state_dict().items()}
        return sd, GeneratorSpec.of(model), name
    if isinstance(source, Mapping):
        raw, meta = unwrap(source, name), {}
    else:
        obj, meta = read_checkpoint(source)
        raw = unwrap(obj, name)
    fmt = detect_format(raw, name)
    sd = _to_canonical(raw, fmt, name)
    return sd, infer_spec(sd, fmt, name, meta), name


def check_keys(model: nn.Module, sd: Mapping[str, torch.Tensor], name: str, strict: bool) -> None:
    """Raise a CheckpointError naming the first missing/unexpected key or shape mismatch."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    if strict and (missing or unexpected):
        parts = []
        if missing:
            parts.append(f"missing keys {_few(missing)}")
        if unexpected:
            parts.append(f"unexpected keys {_few(unexpected)}")
        raise CheckpointError(f"{name}: does not match {_describe(model)}: " + "; ".join(parts))
    for k, v in sd.items():
        if k in expected and v.shape != expected[k].shape:
            raise CheckpointError(
                f"{name}: key {k!r} has shape {tuple(v.shape)}; {_describe(model)} expects "
                f"{tuple(expected[k].shape)}"
            )


def _few(keys: list[str], n: int = 5) -> str:
    more = f" (+{len(keys) - n} more)" if len(keys) > n else ""
    return "[" + ", ".join(repr(k) for k in keys[:n]) + "]" + more


def _describe(model: nn.Module) -> str:
    try:
        s = GeneratorSpec.of(model)
    except CheckpointError:
        return type(model).__name__
    gc = f", gc {s.num_grow_ch}" if s.arch == "RRDBNet" else f", bn {s.batch_norm}"
    return f"{s.arch}(x{s.scale}, in {s.num_in_ch}, out {s.num_out_ch}, nf {s.num_feat}, nb {s.num_block}{gc})"


def _unwrap_module(model: nn.Module) -> nn.Module:
    """Look through DDP / AveragedModel (``.module``) and torch.compile (``._orig_mod``)."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def check_values(
    model: nn.Module,
    sd: Mapping[str, torch.Tensor],
    name: str,
    *,
    allow_nonfinite: bool = False,
) -> None:
    """Refuse tensors that would load silently but give garbage, naming the key.

    ``load_state_dict`` copies an int64 or bool tensor into a float parameter without a word,
    and NaN/Inf weights turn every output black; both are broken files, never a model. Keys the
    model holds as integers (BatchNorm's ``num_batches_tracked``) may stay integers.
    ``allow_nonfinite`` lets NaN/Inf through, for inspecting a diverged run only.
    """
    expected = model.state_dict()
    for k, v in sd.items():
        want = expected.get(k)
        if want is None or not want.is_floating_point():
            continue
        if not v.is_floating_point():
            raise CheckpointError(
                f"{name}: key {k!r} holds {str(v.dtype).removeprefix('torch.')} values; a "
                f"weight must be floating point (float32/float16/bfloat16): the file is broken "
                f"or not a generator checkpoint"
            )
        if allow_nonfinite:
            continue
        finite = torch.isfinite(v)
        if not bool(finite.all()):
            bad = v[~finite]
            kinds = "/".join(
                t
                for t, hit in (
                    ("NaN", bool(torch.isnan(bad).any())),
                    ("+Inf", bool((bad == float("inf")).any())),
                    ("-Inf", bool((bad == float("-inf")).any())),
                )
                if hit
            )
            raise CheckpointError(
                f"{name}: key {k!r} holds {bad.numel()} non-finite value(s) ({kinds}) of "
                f"{v.numel()}; the weights are broken (a diverged or damaged run) and would give "
                f"black or garbage images. Load with allow_nonfinite=True only to inspect them"
            )


def load_generator(
    source: Source,
    *,
    device: str | torch.device = "cpu",
    strict: bool = True,
    allow_nonfinite: bool = False,
) -> nn.Module:
    """Build the generator a checkpoint describes and load its weights (eval mode).

    ``source``: a path (.pth/.pt/.ckpt/.safetensors) in any supported key format or container,
    a state dict, or a module (returned as is, moved and set to eval). Returns an ``RRDBNet``
    (or an ``SRResNet`` for this project's SRResNet checkpoints). A name from
    ``esrgan_lit.weights.hub.MODELS`` (``"RealESRGAN_x4plus"``) is downloaded once and verified; a
    ``wandb:ENTITY/PROJECT/NAME:ALIAS`` reference is fetched from W&B. A weight stored as an integer
    or bool, or holding NaN/Inf, is a ``CheckpointError`` naming the key (see
    :func:`check_values`; ``allow_nonfinite=True`` admits NaN/Inf for debugging).
    """
    source = hub_resolve(source)
    if isinstance(source, nn.Module):
        return _unwrap_module(source).to(device).eval()
    source = resolve_wandb_ref(source) or source  # wandb:ENTITY/PROJECT/NAME:ALIAS
    sd, spec, name = resolve(source)
    model = spec.build()
    check_keys(model, sd, name, strict)
    check_values(model, sd, name, allow_nonfinite=allow_nonfinite)
    model.load_state_dict(sd, strict=strict)
    return model.to(device).eval()


def save_generator(model: nn.Module, path: str | os.PathLike[str]) -> Path:
    """Write a generator atomically: ``.safetensors`` (with its spec as metadata) or
    ``.pth``/``.pt`` in BasicSR's ``{"params_ema": state_dict}`` layout."""
    path = Path(path)
    model = _unwrap_module(model)
    spec = GeneratorSpec.of(model)
    sd = {
        _strip_wrappers(k): v.detach().to("cpu").contiguous().clone()
        for k, v in model.state_dict().items()
    }
    suffix = path.suffix.lower()
    if suffix not in (".safetensors", ".pth", ".pt"):
        raise ValueError(f"{path}: unsupported output suffix {suffix!r}; use .safetensors or .pth")
    with atomic_write_path(path) as tmp:
        if suffix == ".safetensors":
            save_file(sd, str(tmp), metadata=spec.metadata())
        else:
            torch.save({"params_ema": sd}, tmp)
    return path

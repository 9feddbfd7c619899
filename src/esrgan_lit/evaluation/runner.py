"""Score one generator (or MATLAB bicubic) on named sets: the loop shared by evaluate/tradeoff."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from esrgan_lit.evaluation.sets import EvalSet
from esrgan_lit.evaluation.suite import METRIC_KEYS, MetricSuite
from esrgan_lit.inference import Upscaler
from esrgan_lit.ops.color import quantize_uint8
from esrgan_lit.ops.imresize import imresize
from esrgan_lit.utils.atomic import atomic_write_path

BICUBIC = "bicubic"


@dataclass
class MethodResult:
    """Scores of one method: per set (all of ``METRIC_KEYS`` + ``num_images``) and per image."""

    method: str
    sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    per_image: list[dict[str, Any]] = field(default_factory=list)
    notes: dict[str, dict[str, str]] = field(default_factory=dict)  # set -> key -> reason


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when present, else CPU; an unavailable CUDA is a clear error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device={device} requested but CUDA is not available here")
    return dev


def upscale(generator: nn.Module | str | Any, lq: Tensor, scale: int, *, grey: bool) -> Tensor:
    """(C, h, w) [0, 1] -> (C, h*s, w*s) float32 (the metrics quantise)."""
    if hasattr(generator, "upscale"):  # an esrgan_lit.inference.Upscaler
        return generator.upscale(lq.float())
    if isinstance(generator, str):
        if generator != BICUBIC:
            raise ValueError(f"unknown generator {generator!r}; give a checkpoint or 'bicubic'")
        # lq holds uint8 levels: recover them exactly before the MATLAB-bicubic upscale
        return imresize(torch.round(lq.double() * 255.0), scale).div(255.0).float()
    x = lq.unsqueeze(0)
    if x.shape[1] == 1:  # grey: the network sees RGB, the metrics the channel mean
        x = x.expand(-1, 3, -1, -1)
    with torch.inference_mode():
        sr = generator(x).float()[0]
    if grey and sr.shape[0] == 3:
        sr = sr.mean(dim=0, keepdim=True)
    return sr


def save_image(sr: Tensor, path: Path) -> None:
    """uint8 PNG (MATLAB im2uint8 rounding), written atomically."""
    arr = quantize_uint8(sr.detach().cpu()).to(torch.uint8).numpy()
    arr = arr[0] if arr.shape[0] == 1 else np.transpose(arr, (1, 2, 0))
    with atomic_write_path(path) as tmp:
        Image.fromarray(arr).save(tmp, format="PNG")


def evaluate_method(
    generator: nn.Module | str,
    sets: Sequence[EvalSet],
    suite: MetricSuite,
    *,
    method: str,
    scale: int,
    device: torch.device,
    image_dir: Path | None = None,
    progress: Any = None,
    inference: Mapping[str, Any] | None = None,
) -> MethodResult:
    """Upscale every image of every set and score it; ``progress`` is a rich Progress or None.

    ``inference`` (``tile``, ``tile_overlap``, ``precision``, ``tta``): with a tile, a reduced
    precision or the self-ensemble the network runs through :class:`esrgan_lit.inference.Upscaler`
    (seam-free tiles, fp16/bf16 with fp32 fallback, 8-fold TTA); by default it sees each whole
    image in fp32.
    """
    if isinstance(generator, nn.Module):
        generator = generator.to(device).eval()
        opts = dict(inference or {})
        tta = bool(opts.get("tta"))
        if tta or int(opts.get("tile") or 0) > 0 or str(opts.get("precision") or "fp32") != "fp32":
            generator = Upscaler(
                generator,
                device=device,
                precision=str(opts.get("precision") or "fp32"),
                tile=int(opts.get("tile") or 0),
                tile_overlap=int(opts.get("tile_overlap", 32)),
                tta=tta,
            )
    result = MethodResult(method)
    for eval_set in sets:
        task = None
        if progress is not None:
            task = progress.add_task(f"{method} · {eval_set.name}", total=len(eval_set))
        count = 0
        for sample in eval_set.samples():
            lq, gt = sample["lq"].to(device), sample["gt"].to(device)
            sr = upscale(generator, lq, scale, grey=bool(sample["grey"]))
            if sr.shape != gt.shape:
                raise ValueError(
                    f"{method}: output {tuple(sr.shape)} for {eval_set.name}/{sample['name']} does "
                    f"not match the HR image {tuple(gt.shape)}; is the generator x{scale}?"
                )
            scores = suite.score(sr.unsqueeze(0), gt.unsqueeze(0), str(sample["name"]))
            result.per_image.append(
                {"method": method, "set": eval_set.name, "image": sample["name"], **scores}
            )
            if image_dir is not None:
                save_image(sr, image_dir / eval_set.name / f"{sample['name']}.png")
            count += 1
            if task is not None:
                progress.advance(task)
        values, notes = suite.finish()
        row: dict[str, Any] = {k: values.get(k) for k in METRIC_KEYS}
        for key in METRIC_KEYS:
            if key not in suite.keys:
                notes.setdefault(key, "not requested (see `metrics=`)")
        row["num_images"] = count
        result.sets[eval_set.name] = row
        result.notes[eval_set.name] = {k: v for k, v in notes.items() if row.get(k) is None}
    return result

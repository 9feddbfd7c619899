"""`python -m esrgan_lit.upscale INPUT... -o OUTDIR --model PATH|NAME`: upscale files, folders, globs.

One bad image never stops the batch: it is reported, the rest go on, and the exit status says
whether anything failed. Outputs are written atomically, so an interrupted run leaves no half images.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from esrgan_lit.inference.batch import BatchPlanError, collect_inputs, output_path, plan
from esrgan_lit.inference.io import read_image, write_image

__all__ = ["build_parser", "collect_inputs", "main", "output_path"]

log = logging.getLogger("esrgan_lit.upscale")

# --outscale outside this range is a typo (0.001, 100000), not a request: refuse it up front.
OUTSCALE_RANGE = (0.1, 32.0)


def _device(value: str) -> str:
    """``auto``, ``cpu``, ``cuda``, ``cuda:N`` (or any other device torch names)."""
    if value == "auto":
        return value
    import torch

    try:
        torch.device(value)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(
            f"invalid device {value!r}; use auto, cpu, cuda or cuda:N"
        ) from None
    return value


def build_parser() -> argparse.ArgumentParser:
    """Our flags, plus Real-ESRGAN's ``inference_realesrgan.py`` spellings where they agree.

    Aliases (see docs/inference.md): ``-i/--input``, ``-n/--model_name``/``--model_path``,
    ``-s/--outscale``, ``-t/--tile``, ``--tile_pad``, ``--fp32``, ``--ext auto``, ``-g/--gpu-id``,
    ``--alpha_upsampler``, ``--suffix``.
    """
    p = argparse.ArgumentParser(
        prog="esrgan-upscale",
        description="Upscale images with an ESRGAN-family generator (any supported checkpoint, "
        "or an official model by name: " + ", ".join(_hub_names()) + ").",
    )
    p.add_argument(
        "inputs", nargs="*", metavar="INPUT", help="image files, folders (recursive) or globs"
    )
    p.add_argument("-i", "--input", dest="input_opts", action="append", default=[],
                   metavar="INPUT", help="same as a positional INPUT (Real-ESRGAN spelling)")  # fmt: skip
    p.add_argument("-o", "--output", required=True, type=Path, help="output folder")
    p.add_argument("--model", "-n", "--model_name", "--model_path", dest="model", default=None,
                   help="generator checkpoint (.pth/.pt/.ckpt/.safetensors), an official "
                   "model name (downloaded once, verified; see esrgan_lit.hub) or a W&B "
                   "artifact wandb:ENTITY/PROJECT/NAME:ALIAS")  # fmt: skip
    p.add_argument("-t", "--tile", type=int, default=0,
                   help="tile size in input pixels (0: whole image)")  # fmt: skip
    p.add_argument("--tile-overlap", "--tile_pad", dest="tile_overlap", type=int, default=32,
                   help="context pixels per tile side")  # fmt: skip
    p.add_argument("--tile-batch", type=int, default=1, help="tiles per forward pass")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32")
    p.add_argument("--fp32", dest="precision", action="store_const", const="fp32",
                   help="same as --precision fp32 (the default here; Real-ESRGAN's is fp16)")  # fmt: skip
    p.add_argument("--device", type=_device, default="auto",
                   help="auto (CUDA when present), cpu, cuda or cuda:N")  # fmt: skip
    p.add_argument("-g", "--gpu-id", "--gpu_id", dest="gpu_id", type=int, default=None,
                   help="CUDA device index: same as --device cuda:N")  # fmt: skip
    p.add_argument("--tta", action="store_true",
                   help="self-ensemble: average the 8 flips/rotations (8x slower, a little sharper)")  # fmt: skip
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the network (GPU; pays off with --tile on many images)")  # fmt: skip
    p.add_argument(
        "-s", "--outscale", type=float, default=None, help="final scale (default: the model's)"
    )
    p.add_argument("--suffix", default="", help="appended to each output's file stem")
    p.add_argument("--ext", choices=("auto", "png", "jpg", "webp", "tif"), default=None,
                   help="output format (default / auto: the input's)")  # fmt: skip
    p.add_argument("--skip-existing", action="store_true", help="leave existing outputs alone")
    p.add_argument("--alpha", "--alpha_upsampler", dest="alpha", type=_alpha, default="net",
                   help="upscale transparency with the network (net; Real-ESRGAN: realesrgan) "
                   "or bicubic")  # fmt: skip
    p.add_argument("--interp-with", default=None, metavar="PATH",
                   help="second generator: use the network interpolation of --model and PATH")  # fmt: skip
    p.add_argument("--interp-alpha", type=float, default=None, metavar="A",
                   help="weight of --interp-with: (1-A)*model + A*other")  # fmt: skip
    return p


def _alpha(value: str) -> str:
    mapped = {"net": "net", "realesrgan": "net", "bicubic": "bicubic"}.get(value)
    if mapped is None:
        raise argparse.ArgumentTypeError(f"invalid choice {value!r} (choose net or bicubic)")
    return mapped


def _hub_names() -> list[str]:
    from esrgan_lit.hub import MODELS

    return list(MODELS)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse and fold the aliases into one meaning: inputs, model, device, ext."""
    p = build_parser()
    args = p.parse_args(argv)
    args.inputs = [*args.inputs, *args.input_opts]
    if not args.inputs:
        p.error("give at least one INPUT (positional or -i/--input)")
    if args.model is None:
        p.error("give a generator: --model PATH|NAME (or -n/--model_name NAME)")
    if args.gpu_id is not None:
        if args.device not in ("auto", "cuda", f"cuda:{args.gpu_id}"):
            p.error(f"--gpu-id {args.gpu_id} contradicts --device {args.device}")
        args.device = f"cuda:{args.gpu_id}"
    if args.ext == "auto":
        args.ext = None
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if (args.interp_with is None) != (args.interp_alpha is None):
        print("error: --interp-with and --interp-alpha go together", file=sys.stderr)
        return 2
    problem = check_args(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        jobs, errors, own = plan(args.inputs, args.output, args.suffix, args.ext)
    except BatchPlanError as e:  # decided before any file is read or written
        print(f"error: {e}", file=sys.stderr)
        return 2
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    if own:
        print(f"note: skipped {len(own)} file(s) that are this command's own outputs "
              f"(e.g. {own[0]})", file=sys.stderr)  # fmt: skip
    try:
        upscaler = _make_upscaler(args)
    except Exception as e:  # a bad checkpoint or device is one clear line, not a traceback
        from esrgan_lit.utils.torchscript import torchscript_hint

        hint = torchscript_hint(args.model) or (
            args.interp_with and torchscript_hint(args.interp_with)
        )
        print(f"error: {hint or f'cannot set up the upscaler (--model {args.model}): {e}'}",
              file=sys.stderr)  # fmt: skip
        return 2
    ok = skipped = 0
    failed = len(errors)
    written: set[Path] = set()
    sources = {Path(os.path.realpath(j.src)) for j in jobs}
    pairs = [(j.src, j.rel) for j in jobs]
    for i, (src, rel) in enumerate(pairs, 1):
        start = time.perf_counter()
        try:
            dst_plain = output_path(args.output, rel, args.suffix, args.ext, False)
            dst_alpha = output_path(args.output, rel, args.suffix, args.ext, True)
            if args.skip_existing and (dst_plain.exists() or dst_alpha.exists()):
                skipped += 1
                print(f"[{i}/{len(pairs)}] {src}: exists, skipped", file=sys.stderr)
                continue
            image = read_image(src)
            dst = dst_alpha if image.shape[2] in (2, 4) else dst_plain
            if dst in written or Path(os.path.realpath(dst)) in sources:
                # the plan read the alpha from the header; the decoder may disagree: never clobber
                raise ValueError(f"output {dst} is an input or was already written this run")
            out = upscaler.upscale(image, outscale=args.outscale)
            write_image(dst, out)
            written.add(dst)
            ok += 1
            print(f"[{i}/{len(pairs)}] {src} -> {dst} ({time.perf_counter() - start:.1f}s)",
                  file=sys.stderr)  # fmt: skip
        except Exception as e:
            failed += 1
            print(f"[{i}/{len(pairs)}] FAILED {src}: {e}", file=sys.stderr)
    print(f"summary: {ok} written, {skipped} skipped, {failed} failed", file=sys.stderr)
    return 1 if failed else 0


def check_args(args: argparse.Namespace) -> str | None:
    """The first problem with the options that would otherwise surface per image, after inference."""
    if args.outscale is not None:
        lo, hi = OUTSCALE_RANGE
        if not math.isfinite(args.outscale) or not lo <= args.outscale <= hi:
            return f"--outscale {args.outscale}: must be a number from {lo:g} to {hi:g}"
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        return f"-o {out}: exists and is not a folder"
    existing = next((p for p in (out, *out.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        return f"-o {out}: {existing} is a file, so the folder cannot be created"
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        return f"-o {out}: {existing} is not writable"
    return None


def _make_upscaler(args: argparse.Namespace):
    from esrgan_lit.hub import resolve
    from esrgan_lit.inference import Upscaler

    model = resolve(args.model)  # an official name -> its verified, cached file
    if args.interp_with is not None:
        from esrgan_lit.weights import interpolate

        model = interpolate(model, resolve(args.interp_with), args.interp_alpha)
    return Upscaler(
        model, device=args.device, precision=args.precision, tile=args.tile,
        tile_overlap=args.tile_overlap, tile_batch=args.tile_batch, alpha=args.alpha,
        compile=args.compile, tta=args.tta,
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())

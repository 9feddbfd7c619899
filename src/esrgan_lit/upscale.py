"""`python -m esrgan_lit.upscale INPUT... -o OUTDIR --model PATH|NAME`: upscale files, folders, globs.

One bad image never stops the batch: it is reported, the rest go on, and the exit status says
whether anything failed. Outputs are written atomically, so an interrupted run leaves no half images.
"""

from __future__ import annotations

import argparse
import glob
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from esrgan_lit.inference.io import (
    NO_ALPHA_EXTS,
    READ_EXTS,
    WRITE_FORMATS,
    read_image,
    write_image,
)

log = logging.getLogger("esrgan_lit.upscale")


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
                   help="generator checkpoint (.pth/.pt/.ckpt/.safetensors) or an official "
                   "model name (downloaded once, verified; see esrgan_lit.hub)")  # fmt: skip
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


def collect_inputs(inputs: Sequence[str]) -> tuple[list[tuple[Path, Path]], list[str]]:
    """(source, relative output path) pairs, plus error messages for inputs that matched nothing."""
    pairs: list[tuple[Path, Path]] = []
    errors: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in READ_EXTS
            )
            if not found:
                errors.append(f"{item}: folder holds no images ({', '.join(READ_EXTS)})")
            pairs += [(p, p.relative_to(path)) for p in found]
        elif path.is_file():
            pairs.append((path, Path(path.name)))
        else:
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True) if Path(m).is_file())
            if not matches:
                errors.append(f"{item}: no such file, folder or matching glob")
            pairs += [(m, Path(m.name)) for m in matches]
    return pairs, errors


def output_path(outdir: Path, rel: Path, suffix: str, ext: str | None, has_alpha: bool) -> Path:
    """OUTDIR/<rel dir>/<stem><suffix><ext>; transparent images never go to JPEG/BMP (PNG instead)."""
    out_ext = WRITE_FORMATS[ext] if ext else rel.suffix.lower()
    if has_alpha and out_ext in NO_ALPHA_EXTS:
        out_ext = ".png"
    return outdir / rel.parent / f"{rel.stem}{suffix}{out_ext}"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if (args.interp_with is None) != (args.interp_alpha is None):
        print("error: --interp-with and --interp-alpha go together", file=sys.stderr)
        return 2
    pairs, errors = collect_inputs(args.inputs)
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    try:
        upscaler = _make_upscaler(args)
    except Exception as e:  # a bad checkpoint or device is one clear line, not a traceback
        print(f"error: cannot set up the upscaler (--model {args.model}): {e}", file=sys.stderr)
        return 2
    ok = skipped = 0
    failed = len(errors)
    written: set[Path] = set()
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
            if dst in written:
                raise ValueError(f"output {dst} was already written by another input this run")
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

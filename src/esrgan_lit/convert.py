"""Convert any supported generator checkpoint to ``.safetensors`` or BasicSR ``.pth``.

    python -m esrgan_lit.convert IN OUT

IN may be an original-ESRGAN (old or new arch), BasicSR/Real-ESRGAN, or esrgan-lit checkpoint
(incl. a Lightning ``.ckpt``); OUT's suffix picks the format.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from esrgan_lit.weights import CheckpointError, GeneratorSpec, load_generator, save_generator


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m esrgan_lit.convert",
        description="Convert an ESRGAN-family generator checkpoint to .safetensors or "
        "BasicSR-layout .pth ({'params_ema': state_dict}).",
    )
    p.add_argument("input", help="checkpoint to read (.pth, .pt, .ckpt, .safetensors)")
    p.add_argument("output", help="file to write; .safetensors or .pth/.pt")
    p.add_argument(
        "--no-strict",
        dest="strict",
        action="store_false",
        help="tolerate missing/unexpected keys (shapes must still match)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.output.lower().endswith((".safetensors", ".pth", ".pt")):
        print(f"error: {args.output}: output must end in .safetensors or .pth", file=sys.stderr)
        return 2
    try:
        model = load_generator(args.input, strict=args.strict)
        save_generator(model, args.output)
    except (CheckpointError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    s = GeneratorSpec.of(model)
    print(
        f"{args.input} -> {args.output}: {s.arch} x{s.scale}, in {s.num_in_ch}, "
        f"out {s.num_out_ch}, nf {s.num_feat}, nb {s.num_block}"
        + (f", gc {s.num_grow_ch}" if s.arch == "RRDBNet" else f", bn {s.batch_norm}")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m esrgan_lit.export --model PATH --format onnx|torchscript OUT`.

Both formats take any batch, height and width (a multiple of 2 / 4 for the pixel-unshuffle x2 / x1
generators). ONNX goes through torch's TorchScript-based exporter with dynamic axes (``--dynamo`` for the
``torch.export`` one); TorchScript through tracing, which is shape-generic for these all-convolutional networks.
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from esrgan_lit.utils.atomic import atomic_write_path


def _multiple(model: nn.Module) -> int:
    scale = int(getattr(model, "scale", 4))
    return int(getattr(model, "unshuffle", {1: 4, 2: 2}.get(scale, 1)))


def _example(model: nn.Module, size: int = 32) -> torch.Tensor:
    p = next(model.parameters())
    return torch.rand(
        1, int(getattr(model, "num_in_ch", 3)), size, size, dtype=p.dtype, device=p.device
    )


def export_onnx(
    model: nn.Module, out: str | Path, *, opset: int | None = None, dynamo: bool = False
) -> Path:
    """Write ``model`` as ONNX with dynamic batch, height and width (input 'input', output 'output').

    The TorchScript-based exporter is the default: it is ~20x faster here and gives the same graph
    for these plain conv nets. ``dynamo=True`` (also the fallback once torch drops the old
    exporter) uses ``torch.export`` with symbolic dimensions.
    """
    model = model.eval()
    with atomic_write_path(out) as tmp:
        if not dynamo:
            try:
                _export_legacy(model, tmp, opset)
                return Path(out)
            except (TypeError, RuntimeError, NotImplementedError) as e:  # exporter removed/failed
                warnings.warn(f"TorchScript ONNX exporter failed ({e}); using dynamo", stacklevel=2)
        _export_dynamo(model, tmp, opset)
    return Path(out)


def _export_legacy(model: nn.Module, path: Path, opset: int | None) -> None:
    axes = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (_example(model),), str(path), dynamo=False, input_names=["input"],
            output_names=["output"], opset_version=opset or 17,
            dynamic_axes={"input": axes, "output": {0: "batch", 2: "out_height", 3: "out_width"}},
        )  # fmt: skip


def _export_dynamo(model: nn.Module, path: Path, opset: int | None) -> None:
    m = _multiple(model)
    dim = torch.export.Dim

    def spatial(name: str):
        return dim(name, min=1) if m == 1 else m * dim(name, min=1)

    shapes = {"x": {0: dim("batch", min=1), 2: spatial("height"), 3: spatial("width")}}
    kwargs = {"opset_version": opset} if opset else {}
    program = torch.onnx.export(
        model, (_example(model),), dynamo=True, dynamic_shapes=shapes,
        input_names=["input"], output_names=["output"], verbose=False, **kwargs,
    )  # fmt: skip
    program.save(str(path))


def export_torchscript(model: nn.Module, out: str | Path) -> Path:
    """Write a traced TorchScript module (load with ``torch.jit.load``, any input size)."""
    model = model.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter(
            "ignore"
        )  # TorchScript is deprecated upstream but still the format asked for
        traced = torch.jit.trace(model, _example(model), check_trace=False)
    with atomic_write_path(out) as tmp:
        traced.save(str(tmp))
    return Path(out)


def verify_onnx(model: nn.Module, path: str | Path, size: tuple[int, int] = (40, 24)) -> float:
    """Max |ONNX Runtime - PyTorch| on a random input of a size other than the export example."""
    import onnxruntime as ort

    m = _multiple(model)
    x = torch.rand(1, int(getattr(model, "num_in_ch", 3)), size[0] * m, size[1] * m)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        want = model.float().cpu()(x).numpy()
    return float(abs(got - want).max())


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="esrgan-export", description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="output file (.onnx / .pt)")
    p.add_argument("--model", required=True, help="generator checkpoint (any supported format)")
    p.add_argument("--format", choices=("onnx", "torchscript"), required=True)
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default: exporter's)")
    p.add_argument("--dynamo", action="store_true", help="use the torch.export-based ONNX exporter")
    p.add_argument("--verify", action="store_true", help="compare ONNX Runtime with PyTorch")
    args = p.parse_args(argv)
    from esrgan_lit.utils.torchscript import torchscript_hint
    from esrgan_lit.weights import load_generator

    if args.out.is_dir():  # checked before the model loads: no stack, nothing written
        suffix = ".onnx" if args.format == "onnx" else ".pt"
        print(f"error: {args.out} is a folder; give the output file, e.g. "
              f"{args.out / ('generator' + suffix)}", file=sys.stderr)  # fmt: skip
        return 2
    try:
        model = load_generator(args.model)
    except Exception as e:
        print(f"error: {torchscript_hint(args.model) or f'cannot load model {args.model}: {e}'}",
              file=sys.stderr)  # fmt: skip
        return 2
    if args.format == "onnx":
        try:
            import onnx  # noqa: F401  (the exporter needs it; fail with the fix, not a traceback)
        except ImportError:
            print("error: ONNX export needs `pip install esrgan-lit[export]`", file=sys.stderr)
            return 2
        export_onnx(model, args.out, opset=args.opset, dynamo=args.dynamo)
        if args.verify:
            diff = verify_onnx(model, args.out)
            print(f"max |onnxruntime - torch| = {diff:.3g}")
            if not math.isfinite(diff):  # NaN compares false with any tolerance: never a pass
                print("error: verification failed: the difference is not finite", file=sys.stderr)
                return 1
    else:
        export_torchscript(model, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

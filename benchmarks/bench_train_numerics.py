"""Same math, faster: N training iterations in the fast path vs plain fp32, loss curves + weights.

Both runs start from the same weights and see the same batches (a fixed random set, no
shuffling), through a real ``lightning.Trainer``:

* plain: ``precision=32-true``, contiguous tensors, Adam's default loop, synchronous guard;
* fast: ``bf16-mixed`` (G and D forward in bf16; losses and VGG stay fp32), channels_last,
  fused Adam, the sync-free step (``--compile`` adds torch.compile).

A control run, the fast switches in fp32 (channels_last, fused Adam, sync-free: rounding-level
changes only), shows how far the run drifts from any perturbation at all. Reported per stage:
each logged loss's curve gap (mean |fast - plain| / mean |plain| after a
10-iteration moving average: GAN losses are noisy from step to step), the final-weight gap
``||dW_fast - dW_plain|| / ||dW_plain||`` (dW = change of G's, and D's, parameters), and the
non-finite guard's counters (must stay 0). Tolerances: :data:`TOLERANCE`.

Run: ``python benchmarks/bench_train_numerics.py [--device cuda] [--iters 300] [--tiny]``.
The test suite runs it with ``--tiny --iters 30`` on CPU (tests/test_fastpath_numerics.py).
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import statistics
import tempfile
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from esrgan_lit.archs import RRDBNet, VGGStyleDiscriminator
from esrgan_lit.lit import ESRGANModule, PSNRModule
from esrgan_lit.losses import GANLoss, PerceptualLoss, PixelLoss
from esrgan_lit.utils.atomic import atomic_write_path

RESULTS = Path(__file__).resolve().parent / "results"
# curve gap (10-iteration moving average) and final-weight gap, per stage; see the module doc.
# A gap passes when it is within TOLERANCE or within CONTROL_FACTOR x the control run's gap.
TOLERANCE = {"psnr": {"curve": 0.02, "weights": 0.05}, "gan": {"curve": 0.05, "weights": 0.25}}
CONTROL_FACTOR = 2.5
PLAIN = {"channels_last": False, "sync_free": False}
FAST = {"channels_last": True, "sync_free": True}


def sizes(tiny: bool) -> dict[str, Any]:
    if tiny:
        return {"nf": 8, "nb": 1, "gc": 4, "d_feat": 4, "batch": 2, "gt": 32, "vgg": "conv2_2"}
    return {"nf": 64, "nb": 23, "gc": 32, "d_feat": 64, "batch": 16, "gt": 128, "vgg": "conv5_4"}


def build(stage: str, sz: dict[str, Any], fast: bool, nets: tuple[nn.Module, ...]) -> Any:
    """A fresh module around copies of ``nets`` with the plain or the fast switches."""
    g, d, vgg = (copy.deepcopy(n) for n in nets)
    adam = functools.partial(
        torch.optim.Adam, lr=2e-4 if stage == "psnr" else 1e-4, betas=(0.9, 0.999), fused=fast
    )
    kw = FAST if fast else PLAIN
    if stage == "psnr":
        return PSNRModule(g, adam, None, PixelLoss("l1"), **kw)
    return ESRGANModule(g, d, adam, adam, perceptual_loss=vgg, gan_loss=GANLoss("ragan"), **kw)


def make_nets(sz: dict[str, Any]) -> tuple[nn.Module, ...]:
    torch.manual_seed(0)
    g = RRDBNet(3, 3, 4, sz["nf"], sz["nb"], sz["gc"])
    d = VGGStyleDiscriminator(num_feat=sz["d_feat"], input_size=sz["gt"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random VGG weights: no download here
        vgg = PerceptualLoss({sz["vgg"]: 1.0}, pretrained=False)
    return g, d, vgg


def loader(n_iter: int, sz: dict[str, Any]) -> DataLoader:
    """``n_iter`` batches from 64 fixed smooth random patches (the same for both runs)."""
    gen = torch.Generator().manual_seed(1)
    base = torch.rand(64, 3, sz["gt"] // 8, sz["gt"] // 8, generator=gen)
    gt = nn.functional.interpolate(base, size=sz["gt"], mode="bilinear", align_corners=False)
    lq = nn.functional.avg_pool2d(gt, 4)
    idx = [i % 64 for i in range(n_iter * sz["batch"])]
    items = [{"lq": lq[i], "gt": gt[i]} for i in idx]
    return DataLoader(items, batch_size=sz["batch"], shuffle=False)


class _Recorder:
    """Wraps ``module.log``: keeps each per-step loss tensor (no sync until the end)."""

    def __init__(self, module: L.LightningModule) -> None:
        self.values: dict[str, list[Tensor]] = defaultdict(list)
        inner = module.log

        def log(name: str, value: Any, *args: Any, **kwargs: Any) -> None:
            if name.startswith("train/l_") and isinstance(value, Tensor):
                self.values[name].append(value.detach().float().clone())
            inner(name, value, *args, **kwargs)

        module.log = log

    def curves(self) -> dict[str, list[float]]:
        return {k: torch.stack(v).cpu().tolist() for k, v in self.values.items()}


def train(
    stage: str, fast: bool, nets: tuple, sz: dict, args: argparse.Namespace, bf16: bool = True
) -> dict:
    module = build(stage, sz, fast, nets)
    if fast and args.compile:
        module._fast_request["compile"] = True
    rec = _Recorder(module)
    params = dict(module.named_parameters())  # weights only: BN statistics would dilute the gap
    init = {k: v.detach().float().clone() for k, v in params.items() if v.requires_grad}
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = L.Trainer(
            accelerator=args.device,
            devices=1,
            max_steps=args.iters,
            precision="bf16-mixed" if fast and bf16 else "32-true",
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            limit_val_batches=0,
            default_root_dir=tmp,
        )
        t0 = time.perf_counter()
        trainer.fit(module, train_dataloaders=loader(args.iters, sz))
        seconds = time.perf_counter() - t0
    final = {k: v.detach().float().cpu() for k, v in module.named_parameters()}
    return {
        "curves": rec.curves(),
        "delta": {k: final[k] - init[k].cpu() for k in init},
        "nonfinite": [module.nonfinite_in_a_row, module.nonfinite_total],
        "seconds": seconds,
    }


def _smooth(xs: list[float], w: int = 10) -> list[float]:
    return [statistics.fmean(xs[max(0, i - w + 1) : i + 1]) for i in range(len(xs))]


def compare(plain: dict, fast: dict) -> dict[str, Any]:
    curves = {}
    for name, a in plain["curves"].items():
        sa, sb = _smooth(a), _smooth(fast["curves"][name])
        gap = statistics.fmean(abs(x - y) for x, y in zip(sa, sb))
        curves[name] = gap / max(statistics.fmean(abs(x) for x in sa), 1e-12)
    gaps = {}
    for net in ("generator", "discriminator"):
        keys = [k for k in plain["delta"] if k.startswith(net + ".")]
        if keys:
            da = torch.cat([plain["delta"][k].flatten() for k in keys])
            db = torch.cat([fast["delta"][k].flatten() for k in keys])
            gaps[net] = float((db - da).norm() / da.norm().clamp_min(1e-30))
    return {
        "curve_gap": curves,
        "weight_gap": max(gaps.values()) if gaps else 0.0,
        "weight_gap_per_net": gaps,
        "nonfinite_plain": plain["nonfinite"],
        "nonfinite_fast": fast["nonfinite"],
        "seconds": {"plain": plain["seconds"], "fast": fast["seconds"]},
        "final_loss": {k: [v[-1], fast["curves"][k][-1]] for k, v in plain["curves"].items()},
    }


def verdict(stage: str, cmp: dict[str, Any]) -> bool:
    """Every gap within its tolerance, or within CONTROL_FACTOR x the control's; no NaN skips.

    Adam turns rounding-level differences in near-zero gradients into full-size steps of
    either sign, and GAN training amplifies them: on tiny nets even the fp32 control moves
    the weights' update by ~50-70% in 30 GAN iterations (and the D losses drift apart), so
    the bf16 gaps are read against that scale, not only against a fixed number.
    """
    tol, ctl = TOLERANCE[stage], cmp.get("control_fp32_switches")

    def ok(gap: float, limit: float, control: float | None) -> bool:
        return gap <= limit or (control is not None and gap <= CONTROL_FACTOR * control)

    curves = all(
        ok(g, tol["curve"], ctl["curve_gap"][k] if ctl else None)
        for k, g in cmp["curve_gap"].items()
    )
    weights = ok(cmp["weight_gap"], tol["weights"], ctl["weight_gap"] if ctl else None)
    return curves and weights and cmp["nonfinite_plain"][1] == cmp["nonfinite_fast"][1] == 0


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.device == "cpu":  # oversubscribed OpenMP threads spin-wait: ~10x slower
        torch.set_num_threads(args.threads)
    else:  # the reference is true fp32: no TF32 in fp32 convolutions and matmuls
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    sz = sizes(args.tiny)
    nets = make_nets(sz)
    out: dict[str, Any] = {"device": args.device, "iters": args.iters, "sizes": sz}
    for stage in args.stages:
        plain = train(stage, False, nets, sz, args)
        fast = train(stage, True, nets, sz, args)
        cmp = compare(plain, fast)
        # control: the same switches in fp32 (rounding-level changes only): how far the run
        # drifts from any perturbation, which is the scale the bf16 gaps are to be read against
        control = compare(plain, train(stage, True, nets, sz, args, bf16=False))
        cmp["control_fp32_switches"] = {
            k: control[k] for k in ("curve_gap", "weight_gap", "weight_gap_per_net")
        }
        cmp["ok"] = verdict(stage, cmp)
        out[stage] = cmp
    return out


def render(res: dict[str, Any]) -> str:
    lines = [
        f"# Fast path vs plain fp32: {res['iters']} iterations on {res['device']}",
        "",
        f"Sizes: {res['sizes']}. Tolerances: {TOLERANCE}, or {CONTROL_FACTOR}x the control's gap "
        "(control: the fast switches in fp32, rounding-level changes only).",
        "",
        "| stage | loss | curve gap | control gap | final plain | final fast |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for stage in ("psnr", "gan"):
        if stage not in res:
            continue
        c = res[stage]
        for k, gap in c["curve_gap"].items():
            a, b = c["final_loss"][k]
            ctl = c["control_fp32_switches"]["curve_gap"][k]
            lines.append(f"| {stage} | {k} | {gap:.4f} | {ctl:.4f} | {a:.4g} | {b:.4g} |")
    lines.append("")
    for stage in ("psnr", "gan"):
        if stage in res:
            c = res[stage]
            lines.append(
                f"- {stage}: weight gap {c['weight_gap_per_net']} (control "
                f"{c['control_fp32_switches']['weight_gap_per_net']}); non-finite (in a row, total) "
                f"plain {c['nonfinite_plain']}, fast {c['nonfinite_fast']}; wall "
                f"{c['seconds']['plain']:.1f} s plain / {c['seconds']['fast']:.1f} s fast; "
                f"**{'within' if c['ok'] else 'OUTSIDE'} tolerance**"
            )
    return "\n".join(lines) + "\n"


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--tiny", action="store_true", help="nf 8, 1 block, 32 px: CPU tests")
    ap.add_argument("--stages", default="psnr,gan")
    ap.add_argument("--compile", action="store_true", help="also torch.compile in the fast run")
    ap.add_argument("--threads", type=int, default=1, help="CPU intra-op threads (shared box: 1)")
    ap.add_argument("--out", type=Path, help="json file (a .md beside it)")
    a = ap.parse_args(argv)
    a.stages = tuple(a.stages.split(","))
    if not set(a.stages) <= {"psnr", "gan"} or a.iters < 1:
        ap.error(f"--stages: psnr and/or gan, --iters >= 1 (got {a.stages}, {a.iters})")
    return a


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    res = run(args)
    text = render(res)
    print(text)
    if args.out:
        with atomic_write_path(args.out) as tmp:
            tmp.write_text(json.dumps(res, indent=1) + "\n")
        with atomic_write_path(args.out.with_suffix(".md")) as tmp:
            tmp.write_text(text)
    return res


if __name__ == "__main__":
    main()

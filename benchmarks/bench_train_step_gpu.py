"""Training step on one GPU: a BasicSR-style loop vs our LightningModule vs the fast path (issue 15).

For both stages at the paper's sizes (RRDBNet 23 blocks, VGG128 D, VGG19 conv5_4, batch 16,
128 px GT), in one process on one GPU, from the same weights and batches:

(a) ``basicsr``: a plain PyTorch loop written the way BasicSR's ``SRModel`` / ``ESRGANModel``
    ``optimize_parameters`` are (our own code): fp32 with PyTorch's default TF32 settings, no
    compile, per-parameter EMA, every loss read back with ``.item()`` each iteration; the GAN D
    step runs D on the SR image a third time, as BasicSR does.
(b) ``lit_default``: our LightningModule through a real Trainer with the switches as they were
    before issue 15 (fp32, NCHW, Adam's for-loop, synchronous logging and guard).
(c) ``lit_auto``: the new CUDA defaults (channels_last, fused Adam, sync-free), still fp32;
    ``lit_fast``: plus bf16 autocast (``trainer=gpu_fast``); ``lit_fast_compile``: plus
    ``model.compile=true`` (``--compile``; a failure is recorded, not fatal).

Per variant: ms/iteration (wall, after warm-up; two syncs per timed window, none inside it),
it/s, FLOP per iteration (FlopCounterMode on one iteration: conv + matmul), TFLOP/s, share of
the chip's bf16 matmul peak (measured here), peak GPU memory, and host-device syncs per
iteration of the Lightning variants (a separate short run in CUDA sync debug mode). Data: the
real SRDataModule on 480 px sub-images with ``--workers`` workers, consumed at the fastest
measured step time; the time spent waiting for a batch is the data-wait share. Writes
``--json`` (default benchmarks/results/train_step_gpu.json) and a markdown table beside it.

    python benchmarks/bench_train_step_gpu.py [--compile]        # on the GPU machine
    python benchmarks/bench_train_step_gpu.py --device cpu --tiny  # the code path, in seconds
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train_numerics import loader, make_nets, sizes
from train_step_basicsr import EMA, LR, MILESTONES, peak_gib, reset_peak, time_basicsr
from train_step_common import _sync, matmul_peak

from esrgan_lit.callbacks import GeneratorEMA
from esrgan_lit.lit import ESRGANModule, PSNRModule
from esrgan_lit.losses import GANLoss, PixelLoss
from esrgan_lit.utils.atomic import atomic_write_path

RESULTS = Path(__file__).resolve().parent / "results"
LIT_VARIANTS = {  # name: (module switches, precision, compile)
    "lit_default": ({"channels_last": False, "sync_free": False, "fused": False}, "32-true", False),
    "lit_auto": ({"channels_last": None, "sync_free": None, "fused": None}, "32-true", False),
    "lit_fast": ({"channels_last": None, "sync_free": None, "fused": None}, "bf16-mixed", False),
    "lit_fast_compile": ({}, "bf16-mixed", True),
}
LIT_VARIANTS["lit_fast_compile"] = (LIT_VARIANTS["lit_fast"][0], "bf16-mixed", True)


class _Window(L.Callback):
    """Wall time from the end of the warm-up iterations to the end of training (2 syncs)."""

    def __init__(self, device: str, warmup: int) -> None:
        self.device, self.warmup, self.t0, self.t1 = device, warmup, 0.0, 0.0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.warmup:
            _sync(self.device)
            reset_peak(self.device)
            self.t0 = time.perf_counter()

    def on_train_end(self, trainer, pl_module) -> None:
        _sync(self.device)
        self.t1 = time.perf_counter()


class _SyncDebug(L.Callback):
    """CUDA sync debug mode after the warm-up: every host-device sync raises a warning."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.warmup:
            torch.cuda.synchronize()
            torch.cuda.set_sync_debug_mode("warn")

    def on_train_end(self, trainer, pl_module) -> None:
        torch.cuda.set_sync_debug_mode("default")


def lit_module(stage: str, nets: tuple, switches: dict, compile_: bool) -> L.LightningModule:
    g, d, vgg = (copy.deepcopy(n) for n in nets)
    fused = switches.get("fused")
    adam = functools.partial(torch.optim.Adam, lr=LR[stage], betas=(0.9, 0.999), fused=fused)
    ms = functools.partial(torch.optim.lr_scheduler.MultiStepLR, milestones=MILESTONES, gamma=0.5)
    kw = {k: v for k, v in switches.items() if k != "fused"} | {"compile": compile_}
    if stage == "psnr":
        return PSNRModule(g, adam, ms, PixelLoss("l1"), **kw)
    return ESRGANModule(g, d, adam, adam, ms, ms, PixelLoss("l1"), vgg, GANLoss("ragan"), **kw)


def _fit(
    module: L.LightningModule, precision: str, n_iter: int, sz: dict, args, cbs=(), sink=None
) -> Any:
    """A Trainer like trainer=gpu; ``sink`` (a list) receives the warnings raised."""
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("ignore" if sink is None else "always")
        trainer = L.Trainer(
            accelerator=args.device,
            devices=1,
            max_steps=n_iter,
            precision=precision,
            benchmark=args.device == "cuda",  # trainer=gpu
            logger=L.pytorch.loggers.CSVLogger(tmp),
            log_every_n_steps=50,
            callbacks=[GeneratorEMA(decay=EMA), *cbs],
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            limit_val_batches=0,
            default_root_dir=tmp,
        )
        trainer.fit(module, train_dataloaders=loader(n_iter, sz))
    if sink is not None:
        sink.extend(rec)
    return trainer


def time_lit(stage: str, name: str, nets: tuple, sz: dict, args) -> dict[str, Any]:
    switches, precision, compile_ = LIT_VARIANTS[name]
    if args.device == "cpu" and name != "lit_default":  # CPU auto = off: force the switches on
        switches = {"channels_last": True, "sync_free": True, "fused": True}
    flop = None
    if not compile_:  # FLOPs of one iteration, Lightning hooks included (conv + matmul only)
        with FlopCounterMode(display=False) as fc:
            _fit(lit_module(stage, nets, switches, False), precision, 1, sz, args)
        flop = int(fc.get_total_flops())
    win = _Window(args.device, args.warmup)
    module = lit_module(stage, nets, switches, compile_)
    _fit(module, precision, args.warmup + args.steps, sz, args, [win])
    ms = 1e3 * (win.t1 - win.t0) / args.steps
    out = {"ms": ms, "flop": flop, "peak_mem": peak_gib(args.device)}
    out["nonfinite"] = module.nonfinite_total
    if args.device == "cuda":  # host-device syncs per iteration, counted in a separate short run
        caught: list = []
        n = 5
        module = lit_module(stage, nets, switches, compile_)
        _fit(module, precision, args.warmup + n, sz, args, [_SyncDebug(args.warmup)], caught)
        out["syncs_per_iter"] = sum("synchroniz" in str(w.message) for w in caught) / n
    return out


def data_wait(step_ms: float, sz: dict, args: argparse.Namespace) -> dict[str, Any]:
    """Share of a step spent waiting for the SRDataModule loader, at ``step_ms`` per step."""
    import numpy as np
    from bench_loader import synth_photo
    from PIL import Image

    from esrgan_lit.data import SRDataModule
    from esrgan_lit.data.transforms import bicubic_lr

    side, n_img = (480, 32) if not args.tiny else (64, 4)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        hr_dir, lr_dir = Path(tmp, "hr"), Path(tmp, "lr")
        hr_dir.mkdir(), lr_dir.mkdir()
        for i in range(n_img):
            hr = synth_photo(rng, side, side)
            Image.fromarray(hr).save(hr_dir / f"{i:04d}.png")
            Image.fromarray(bicubic_lr(hr, 4)).save(lr_dir / f"{i:04d}.png")
        n = args.data_batches
        dm = SRDataModule(
            scale=4,
            gt_size=sz["gt"],
            batch_size=sz["batch"],
            num_workers=args.workers,
            train_sets={"t": {"hr": str(hr_dir), "lr": str(lr_dir)}},
            samples_per_epoch=sz["batch"] * (n + 2 + 4 * args.workers),
            persistent_workers=False,
            pin_memory=args.device == "cuda",
        )
        dm.setup("fit")
        it = iter(dm.train_dataloader())
        next(it)  # worker start-up: not timed
        waits = []
        for _ in range(n):
            t0 = time.perf_counter()
            batch = next(it)
            batch = {k: v.to(args.device, non_blocking=True) for k, v in batch.items()}
            waits.append(time.perf_counter() - t0)
            time.sleep(step_ms / 1e3)  # the GPU step (the CPU is free in the sync-free path)
        del it
    wait = sum(waits)
    return {
        "step_ms": step_ms,
        "workers": args.workers,
        "wait_ms_per_step": 1e3 * wait / n,
        "share": wait / (wait + n * step_ms / 1e3),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    sz = sizes(args.tiny)
    nets = make_nets(sz)
    peak_cfg = argparse.Namespace(device=args.device, peak_n=args.peak_n, peak_reps=5)
    bf16_peak = sorted(x[0] for x in matmul_peak(peak_cfg, torch.bfloat16))[2] * 1e9
    gpu = torch.cuda.get_device_name() if args.device == "cuda" else None
    out: dict[str, Any] = {"gpu": gpu, "device": args.device, "sizes": sz, "bf16_peak": bf16_peak}
    names = ["lit_default", "lit_auto", "lit_fast"] + (["lit_fast_compile"] if args.compile else [])
    for stage in args.stages:
        res: dict[str, Any] = {"basicsr": time_basicsr(stage, nets, sz, args)}
        for name in names:
            try:
                res[name] = time_lit(stage, name, nets, sz, args)
            except Exception as err:  # torch.compile may fail here: record it, keep going
                res[name] = {"error": f"{type(err).__name__}: {err}"[:500]}
        out[stage] = summarise(res, bf16_peak)
    fastest = [
        out[s][f"{k}_ms"]
        for s in args.stages
        for k in ("lit_fast", "lit_fast_compile")
        if out[s].get(f"{k}_ms")
    ]
    if fastest and args.workers > 0:
        out["data"] = data_wait(min(fastest), sz, args)
    return out


def summarise(res: dict[str, dict], peak: float) -> dict[str, Any]:
    """The JSON figures: ``<variant>_ms`` (null when not measured) plus per-variant details."""
    flop_lit = res["lit_default"].get("flop")
    out: dict[str, Any] = {}
    for name, key in [("basicsr", "basicsr_loop")] + [(k, k) for k in LIT_VARIANTS]:
        r = res.get(name, {})
        out[f"{key}_ms"] = r.get("ms")
        if "ms" not in r:
            if "error" in r:
                out[f"{key}_error"] = r["error"]
            continue
        flop = r.get("flop") or flop_lit
        tflops = flop / (r["ms"] / 1e3) / 1e12 if flop else None
        out[f"{key}_detail"] = {
            "it_per_s": 1e3 / r["ms"],
            "flop_per_iter": flop,
            "tflop_per_s": tflops,
            "bf16_peak_share": tflops * 1e12 / peak if tflops else None,
            "peak_mem_gib": r.get("peak_mem"),
            "nonfinite_steps": r.get("nonfinite"),
            "syncs_per_iter": r.get("syncs_per_iter"),
        }
    out["lit_fast_eager_ms"] = out["lit_fast_ms"]  # bf16 fast path without torch.compile
    fast = min((out[k] for k in ("lit_fast_ms", "lit_fast_compile_ms") if out[k]), default=None)
    out["lit_fast_ms"] = fast  # the (c): the fastest fast-path variant that ran
    out["speedup_fast_vs_basicsr"] = out["basicsr_loop_ms"] / fast if fast else None
    return out


def _f(x: float | None, fmt: str = "{:,.1f}") -> str:
    return "-" if x is None else fmt.format(x)


def render(res: dict[str, Any], command: str) -> str:
    lines = [
        "# Training step on one GPU: BasicSR-style loop vs Lightning vs fast path",
        "",
        f"- Command: `{command}`",
        f"- Device: {res['gpu'] or res['device']}; torch {torch.__version__}, lightning "
        f"{L.__version__}; sizes {res['sizes']}; bf16 matmul peak measured here "
        f"{res['bf16_peak'] / 1e12:,.1f} TFLOP/s.",
        "- FLOPs: conv + matmul of one iteration (FlopCounterMode); the Lightning variants share "
        "lit_default's count (the same math); BasicSR's D step runs D on the SR image once more.",
        "",
        "| stage | variant | ms / iter | it/s | GFLOP / iter | TFLOP/s | % bf16 peak | peak GiB "
        "| syncs / iter |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for stage in ("psnr", "gan"):
        r = res.get(stage)
        if not r:
            continue
        for key in ["basicsr_loop", *LIT_VARIANTS]:
            d = r.get(f"{key}_detail")
            if d is None:
                err = r.get(f"{key}_error")
                if err:
                    lines.append(f"| {stage} | {key} | failed: {err[:120]} | | | | | | |")
                continue
            lines.append(
                f"| {stage} | {key} | {_f(r[key + '_ms'] if key != 'lit_fast' else r['lit_fast_eager_ms'])} "
                f"| {_f(d['it_per_s'], '{:.2f}')} | {_f(d['flop_per_iter'] and d['flop_per_iter'] / 1e9)} "
                f"| {_f(d['tflop_per_s'])} "
                f"| {_f(d['bf16_peak_share'] and 100 * d['bf16_peak_share'], '{:.1f}%')} "
                f"| {_f(d['peak_mem_gib'], '{:.2f}')} | {_f(d['syncs_per_iter'], '{:.1f}')} |"
            )
    lines.append("")
    for stage in ("psnr", "gan"):
        r = res.get(stage)
        if r:
            x = r["speedup_fast_vs_basicsr"]
            verdict = "-" if x is None else ("met" if x >= 2.5 else "NOT met")
            lines.append(
                f"- {stage}: fast path {_f(r['lit_fast_ms'])} ms vs BasicSR-style "
                f"{_f(r['basicsr_loop_ms'])} ms: **{_f(x, '{:.2f}')}x** (goal >= 2.5x: {verdict})"
            )
    d = res.get("data")
    if d:
        lines.append(
            f"- Data wait: {d['wait_ms_per_step']:.2f} ms per step at {d['step_ms']:.1f} ms/step "
            f"with {d['workers']} workers = {100 * d['share']:.1f}% of the step (goal < 5%)"
        )
    return "\n".join(lines) + "\n"


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cuda")
    ap.add_argument("--tiny", action="store_true", help="nf 8, 1 block, batch 2 x 32 px (tests)")
    ap.add_argument("--stages", default="psnr,gan")
    ap.add_argument("--warmup", type=int, help="untimed iterations (default 10 GPU, 1 CPU)")
    ap.add_argument("--steps", type=int, help="timed iterations (default 30 GPU, 2 CPU)")
    ap.add_argument("--compile", action="store_true", help="also time lit_fast_compile")
    ap.add_argument("--workers", type=int, help="loader workers for the data wait (16 GPU)")
    ap.add_argument("--data-batches", type=int, default=60)
    ap.add_argument("--threads", type=int, default=1, help="CPU intra-op threads")
    ap.add_argument("--json", type=Path, help="default (cuda): results/train_step_gpu.json")
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args(argv)
    gpu = a.device == "cuda"
    if gpu and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA device here (use --device cpu --tiny for the code path)")
    a.stages = tuple(a.stages.split(","))
    if not set(a.stages) <= {"psnr", "gan"}:
        ap.error(f"--stages: psnr and/or gan, got {a.stages}")
    a.warmup = a.warmup if a.warmup is not None else (10 if gpu else 1)
    a.steps = a.steps or (30 if gpu else 2)
    a.workers = a.workers if a.workers is not None else (16 if gpu else 0)
    a.peak_n = 8192 if gpu else 256
    if a.warmup < 1:
        ap.error("--warmup must be at least 1 (the window starts at the end of an iteration)")
    if not gpu and not a.tiny:
        ap.error("--device cpu runs the full-size nets for minutes: add --tiny")
    return a


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    res = run(args)
    cmd = " ".join(
        ["python benchmarks/bench_train_step_gpu.py", *(sys.argv[1:] if argv is None else argv)]
    )
    text = render(res, cmd)
    print(text)
    out = args.json or (RESULTS / "train_step_gpu.json" if args.device == "cuda" else None)
    if out is not None and not args.no_write:
        keep = ("basicsr_loop_ms", "lit_default_ms", "lit_auto_ms", "lit_fast_ms")
        summary = {"gpu": res["gpu"]} | {
            s: ({k: res[s][k] for k in keep} | res[s]) if s in res else None
            for s in ("gan", "psnr")
        }
        summary["data"] = res.get("data")
        with atomic_write_path(out) as tmp:
            tmp.write_text(json.dumps(summary, indent=1) + "\n")
        with atomic_write_path(out.with_suffix(".md")) as tmp:
            tmp.write_text(text)
        print(f"wrote {out}")
    return res


if __name__ == "__main__":
    main()

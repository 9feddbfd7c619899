"""Proof of learning: a tiny RRDBNet trained for a fixed number of steps on ``data=sample``
beats MATLAB bicubic on the held-out photos by >= 0.5 dB PSNR-Y. Prints a table with the gain
and the dB gained per CPU-minute (process CPU time, all threads).

    python benchmarks/bench_learning.py [--steps 6000] [--ema 0.999] [--lr-step 1500] [--threads 1]

Setting: experiment=demo (RRDBNet nf 32, 1 block, gc 16; Adam 2e-3; batch 8 of 64 px HR).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

TARGET_DB = 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ema", type=float, default=0.999, help="EMA decay (0: raw weights)")
    parser.add_argument("--lr-step", type=int, default=1500, help="StepLR step (lr halving)")
    parser.add_argument("--data-dir", default=None, help="where the sample split is built")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides (experiment=demo)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from esrgan_lit.demo import _compose, evaluate
    from esrgan_lit.train import train
    from esrgan_lit.weights import load_generator

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        data_dir = args.data_dir or str(Path(tmp) / "data")
        overrides = [
            f"trainer.max_steps={args.steps}",
            f"paths.data_dir={data_dir}",
            "logger=none",
            "callbacks.progress_bar=null",
            "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false",
            "callbacks.model_summary=null",
            f"callbacks.ema.decay={args.ema}" if args.ema else "callbacks.ema=null",
            f"model.scheduler.step_size={args.lr_step}",
            *args.overrides,
        ]
        cfg = _compose("demo", out, overrides)
        # build the sample split before timing
        dm0 = __import__("hydra.utils", fromlist=["instantiate"]).instantiate(cfg.data)
        dm0.prepare_data()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        _, objs = train(cfg)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        dm = objs["datamodule"]
        dm.setup("validate")
        gens = {"bicubic": None, "tiny RRDB": load_generator(out / "generator.safetensors")}
        results, _ = evaluate(gens, dm.val_dataloader()[0])
    g = cfg.model.generator
    gain = results["tiny RRDB"]["psnr_y"] - results["bicubic"]["psnr_y"]
    print(
        f"\nbench_learning: RRDBNet nf={g.num_feat} nb={g.num_block} gc={g.num_grow_ch}, "
        f"{args.steps} steps, batch {cfg.data.batch_size} x {cfg.data.gt_size}px, "
        f"{torch.get_num_threads()} thread(s)"
    )
    print("| method    | PSNR-Y (dB) | SSIM-Y |")
    print("|-----------|-------------|--------|")
    for name, r in results.items():
        print(f"| {name:<9} | {r['psnr_y']:11.3f} | {r['ssim_y']:.4f} |")
    print(
        f"\n| gain over bicubic | target | wall s | CPU min | dB per CPU-minute |\n"
        f"|-------------------|--------|--------|---------|-------------------|\n"
        f"| {gain:+17.3f} | {TARGET_DB:+6.2f} | {wall:6.1f} | {cpu / 60:7.2f} | "
        f"{gain / max(cpu / 60, 1e-9):17.3f} |"
    )
    print("PASS" if gain >= TARGET_DB else "BELOW TARGET")


if __name__ == "__main__":
    main()

"""Real-ESRGAN degradations on the training device: degraded pairs per second, and their share
of a full Real-ESRGAN training step.

* degradation: ``TrainDegrader`` as ``data/degradation=realesrgan`` runs it in
  ``on_after_batch_transfer`` (USM of the GT, the second-order model on ``--crop-pad-size`` px
  crops (400, as the experiments; 0 = the GT patch whole), the cut to ``--gt-size`` px pairs, the
  pair pool, ``gt_usm`` again), batch ``--batch``, 8-bit GT, a fresh generator state per
  iteration (the per-batch branches vary, so the mean covers them);
* the step: what ``experiment=realesrgan`` trains per iteration, written out in plain torch:
  RRDBNet (``--num-block``, 23 in the paper) forward, L1 + perceptual (VGG19 conv1_2..conv5_4
  before ReLU, random weights: same FLOPs) + vanilla GAN against a U-Net SN discriminator,
  G backward + Adam, D real/fake halves + Adam.

The share is degradation / (degradation + step). Run on CUDA when available (``--device``).
Results: benchmarks/results/<date>-degradation.md.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from esrgan_lit.archs import RRDBNet, UNetDiscriminatorSN
from esrgan_lit.data.degrade import TrainDegrader
from esrgan_lit.losses import PerceptualLoss

LAYERS = {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0, "conv4_4": 1.0, "conv5_4": 1.0}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_degradation(args: argparse.Namespace, device: torch.device) -> list[float]:
    crop = args.crop_pad_size or args.gt_size
    deg = TrainDegrader(args.scale, seed=0, pool_size=args.pool, crop_to=args.gt_size)
    gt = torch.randint(0, 256, (args.batch, 3, crop, crop), device=device)
    batch = {"gt": gt.float() / 255, "lq": None}
    times = []
    for i in range(args.warmup + args.iters):
        _sync(device)
        t0, c0 = time.perf_counter(), time.process_time()
        deg(batch)
        _sync(device)
        if i >= args.warmup:
            times.append((time.perf_counter() - t0, time.process_time() - c0))
    return times


def time_step(args: argparse.Namespace, device: torch.device) -> list[float]:
    g = RRDBNet(num_block=args.num_block).to(device)
    d = UNetDiscriminatorSN().to(device)
    percep = PerceptualLoss(LAYERS, pretrained=False).to(device)
    opt_g = torch.optim.Adam(g.parameters(), 1e-4, betas=(0.9, 0.99))
    opt_d = torch.optim.Adam(d.parameters(), 1e-4, betas=(0.9, 0.99))
    lr_size = args.gt_size // args.scale
    lq = torch.rand(args.batch, 3, lr_size, lr_size, device=device)
    gt = torch.rand(args.batch, 3, args.gt_size, args.gt_size, device=device)
    bce = F.binary_cross_entropy_with_logits
    times = []
    for i in range(args.step_warmup + args.step_iters):
        _sync(device)
        t0, c0 = time.perf_counter(), time.process_time()
        sr = g(lq)
        for p in d.parameters():
            p.requires_grad_(False)
        fake = d(sr)
        loss = F.l1_loss(sr, gt) + percep(sr, gt) + 0.1 * bce(fake, torch.ones_like(fake))
        opt_g.zero_grad(set_to_none=True)
        loss.backward()
        opt_g.step()
        for p in d.parameters():
            p.requires_grad_(True)
        opt_d.zero_grad(set_to_none=True)
        real = d(gt)
        bce(real, torch.ones_like(real)).backward()
        fake = d(sr.detach())
        bce(fake, torch.zeros_like(fake)).backward()
        opt_d.step()
        _sync(device)
        if i >= args.step_warmup:
            times.append((time.perf_counter() - t0, time.process_time() - c0))
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--gt-size", type=int, default=256)
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--crop-pad-size", type=int, default=400, help="0: degrade the GT patch whole")
    p.add_argument("--pool", type=int, default=0, help="pool size (0: none; 180 needs batch | 180)")
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--num-block", type=int, default=23)
    p.add_argument("--step-iters", type=int, default=5)
    p.add_argument("--step-warmup", type=int, default=1)
    p.add_argument("--skip-step", action="store_true", help="time the degradation only")
    args = p.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    print(
        f"device: {device} ({name}), torch {torch.__version__}, threads {torch.get_num_threads()}"
    )
    crop = f"degraded as {args.crop_pad_size} px crops" if args.crop_pad_size else "degraded whole"
    print(f"batch {args.batch} x {args.gt_size}px GT ({crop}), x{args.scale}, pool {args.pool}")
    deg = time_degradation(args, device)
    d_wall, d_cpu = (statistics.mean(t[k] for t in deg) for k in (0, 1))
    print("| what | wall mean | wall min-max | process CPU mean | pairs/s (wall) |")
    print("|---|---|---|---|---|")
    print(
        f"| degradation | {d_wall * 1e3:.1f} ms | {min(t[0] for t in deg) * 1e3:.1f}-"
        f"{max(t[0] for t in deg) * 1e3:.1f} ms | {d_cpu * 1e3:.1f} ms | {args.batch / d_wall:.1f} |"
    )
    if args.skip_step:
        return
    step = time_step(args, device)
    s_wall, s_cpu = (statistics.mean(t[k] for t in step) for k in (0, 1))
    print(
        f"| GAN step (RRDBNet {args.num_block} blocks, U-Net SN D, VGG19 5 layers) | "
        f"{s_wall * 1e3:.1f} ms | {min(t[0] for t in step) * 1e3:.1f}-"
        f"{max(t[0] for t in step) * 1e3:.1f} ms | {s_cpu * 1e3:.1f} ms | |"
    )
    print(
        f"share of a step: {100 * d_wall / (d_wall + s_wall):.1f} % (wall), "
        f"{100 * d_cpu / max(d_cpu + s_cpu, 1e-9):.1f} % (process CPU)"
    )


if __name__ == "__main__":
    main()

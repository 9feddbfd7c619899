"""``make demo``: the whole ESRGAN pipeline in a few CPU minutes, no GPU, no download.

1. PSNR stage: a tiny RRDBNet learns x4 on the built-in sample photos (``experiment=demo``).
2. GAN stage: a short RaGAN fine-tuning from it (``experiment=demo_gan``). When the VGG19
   weights are not available the perceptual term is dropped, and the demo says so.
3. Network interpolation, alpha = 0.8.
4. Bicubic / PSNR / GAN / interpolated on the held-out photos: a table and a comparison PNG.

    python -m esrgan_lit.demo [--out outputs/demo] [--psnr-steps N] [--gan-steps N]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

import torch

from esrgan_lit.utils.atomic import atomic_write_path

ALPHA = 0.8


def _compose(experiment: str, out: Path, overrides: list[str]) -> Any:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from esrgan_lit.config import config_dir

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(
            "train",
            # the demo folder is the demo's own: a rerun replaces the earlier demo's checkpoints
            overrides=[f"experiment={experiment}", "overwrite=true", *overrides],
            return_hydra_config=True,
        )
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
        cfg.hydra.runtime.output_dir = str(out)
    HydraConfig().set_config(cfg)
    return cfg


def vgg_status() -> str | None:
    """None when VGG19 ImageNet weights are at hand, else the reason they are not."""
    from esrgan_lit.losses import PerceptualWeightsUnavailableError, load_vgg19_state_dict

    try:
        load_vgg19_state_dict(download=False)
    except (PerceptualWeightsUnavailableError, ValueError) as err:
        return str(err)
    return None


def _banner(text: str) -> None:
    print(f"\n=== {text} " + "=" * max(0, 72 - len(text)), flush=True)


def evaluate(generators: dict[str, Any], val_loader: Any) -> tuple[dict, dict]:
    """PSNR-Y / SSIM-Y (and NIQE when it runs) per method on the held-out photos."""
    from rich.progress import track  # rich: the one progress-bar library this project uses

    from esrgan_lit.metrics import NIQE, PSNR, SSIM
    from esrgan_lit.ops import imresize

    batches = list(val_loader)
    results: dict[str, dict[str, float]] = {}
    images: dict[str, list[torch.Tensor]] = {"HR": [b["gt"][0] for b in batches]}
    for name, gen in track(list(generators.items()), description="evaluating"):
        metrics = {"psnr_y": PSNR(crop_border=4), "ssim_y": SSIM(crop_border=4)}
        with contextlib.suppress(Exception):  # NIQE is a bonus column; absent prints "-"
            metrics["niqe"] = NIQE(crop_border=4)
        outs = []
        for b in batches:
            lq = b["lq"]
            with torch.no_grad():
                if gen is None:
                    sr = imresize(torch.round(lq.double() * 255) / 255, 4).float()
                else:
                    sr = gen(lq).float()
            sr = sr.clamp(0, 1)
            outs.append(sr[0])
            for key, m in metrics.items():
                m.update(sr) if key == "niqe" else m.update(sr, b["gt"])
        results[name] = {k: float(m.compute()) for k, m in metrics.items()}
        images[name] = outs
    return results, images


def _zoom_corner(a: torch.Tensor, b: torch.Tensor, size: int) -> tuple[int, int]:
    """Top-left corner of the ``size`` window where images ``a`` and ``b`` differ most: the
    crop a reader should look at (on a flat sky every method looks the same)."""
    diff = (a - b).abs().mean(0, keepdim=True)[None]  # (1, 1, H, W)
    pooled = torch.nn.functional.avg_pool2d(diff, size, stride=max(size // 4, 1))
    idx = int(pooled.flatten().argmax())
    stride = max(size // 4, 1)
    return (idx // pooled.shape[-1]) * stride, (idx % pooled.shape[-1]) * stride


def comparison_png(
    images: dict[str, list[torch.Tensor]],
    dst: Path,
    lq: list[torch.Tensor] | None = None,
    crop: int = 96,
    zoom: int = 2,
) -> Path:
    """One row per held-out photo: the whole ground truth with the zoom window outlined, then
    that window, enlarged ``zoom`` times with nearest neighbour, for the LR input (its pixels
    kept visible), every method and HR. The window is where the first trained model differs
    most from bicubic."""
    from PIL import Image, ImageDraw

    methods = [n for n in images if n != "HR"]
    names = (["LR input"] if lq is not None else []) + methods + ["HR"]
    tile = crop * zoom
    thumb_w = tile * 2
    label_h = 16
    scale = 4
    sheet_rows = []
    for i, hr in enumerate(images["HR"]):
        h, w = hr.shape[-2:]
        c = min(crop, h, w) // scale * scale
        ref = images[methods[min(1, len(methods) - 1)]][i]
        top, left = _zoom_corner(ref, images[methods[0]][i], c)
        crops = []
        if lq is not None:
            lo = lq[i][:, top // scale : (top + c) // scale, left // scale : (left + c) // scale]
            crops.append(lo.repeat_interleave(scale, -2).repeat_interleave(scale, -1))
        crops += [images[n][i][:, top : top + c, left : left + c] for n in [*methods, "HR"]]
        row = Image.new("RGB", (thumb_w + len(crops) * (tile + 4), tile + label_h), "white")
        whole = _to_pil(hr)
        f = thumb_w / w
        whole = whole.resize((thumb_w, max(1, round(h * f))), Image.Resampling.BICUBIC)
        draw = ImageDraw.Draw(whole)
        draw.rectangle([left * f, top * f, (left + c) * f, (top + c) * f], outline="red", width=2)
        row.paste(whole.crop((0, 0, thumb_w, min(whole.height, tile))), (0, label_h))
        draw = ImageDraw.Draw(row)
        draw.text((4, 2), f"photo {i + 1}: red box = zoom", fill="black")
        for j, (name, t) in enumerate(zip(names, crops, strict=True)):
            x = thumb_w + 4 + j * (tile + 4)
            row.paste(_to_pil(t).resize((tile, tile), Image.Resampling.NEAREST), (x, label_h))
            draw.text((x + 2, 2), name, fill="black")
        sheet_rows.append(row)
    sheet = Image.new("RGB", (sheet_rows[0].width, sum(r.height for r in sheet_rows)), "white")
    y = 0
    for row in sheet_rows:
        sheet.paste(row, (0, y))
        y += row.height
    with atomic_write_path(dst) as tmp:
        sheet.save(tmp, format="PNG")
    return dst


def _to_pil(x: torch.Tensor) -> Any:
    from PIL import Image

    arr = (x.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype("uint8")
    return Image.fromarray(arr)


def colour_shift(sr: list[torch.Tensor], ref: list[torch.Tensor]) -> float:
    """Largest per-channel difference of the mean colour, in 8-bit levels, over all photos:
    a tiny net trained too briefly tints whole images (green leaves turn brown)."""
    a = torch.stack([x.mean((-2, -1)) for x in sr]).mean(0)
    b = torch.stack([x.mean((-2, -1)) for x in ref]).mean(0)
    return float((a - b).abs().max() * 255)


def table(results: dict[str, dict[str, float]]) -> str:
    """Markdown table; ``colour`` is the mean-colour shift against bicubic in 8-bit levels."""
    cols = [("psnr_y", 11, ".2f"), ("ssim_y", 6, ".4f"), ("niqe", 5, ".2f"), ("colour", 6, ".1f")]
    lines = [
        f"| {'method':<24} | PSNR-Y (dB) | SSIM-Y | NIQE  | colour |",
        f"|{'-' * 26}|-------------|--------|-------|--------|",
    ]
    for name, r in results.items():
        cells = [
            format(r[c], f"{w}{fmt}") if r.get(c) is not None else f"{'-':>{w}}"
            for c, w, fmt in cols
        ]
        lines.append(f"| {name:<24} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_demo(out: Path, psnr_steps: int | None = None, gan_steps: int | None = None,
             extra: list[str] | None = None) -> dict[str, Any]:  # fmt: skip
    """Both stages, interpolation and evaluation; returns the results table as a dict."""
    from esrgan_lit.interpolate import interpolate_to_file
    from esrgan_lit.train import train
    from esrgan_lit.weights import load_generator

    t0 = time.time()
    extra = list(extra or [])
    _banner("1/4 PSNR stage: tiny RRDBNet, L1, built-in sample photos (experiment=demo)")
    ov = [*extra] + ([f"trainer.max_steps={psnr_steps}"] if psnr_steps else [])
    _, objs = train(_compose("demo", out / "psnr", ov))
    datamodule = objs["datamodule"]
    psnr_gen = out / "psnr" / "generator.safetensors"

    _banner("2/4 GAN stage: RaGAN fine-tuning from the PSNR model (experiment=demo_gan)")
    ov = [*extra, f"model.pretrained_generator={psnr_gen}"]
    ov += [f"trainer.max_steps={gan_steps}"] if gan_steps else []
    reason = vgg_status()
    if reason is None:
        print("VGG19 ImageNet weights found: L_G = L_percep + 5e-3 L_G^Ra + 1e-2 L1 (the paper).")
    else:
        print(
            "NOTE: VGG19 ImageNet weights are not available, so this GAN stage runs WITHOUT the "
            "perceptual loss: L_G = 5e-3 L_G^Ra + 1e-2 L1. That is not the paper's objective; "
            f"expect less texture than real ESRGAN.\n  ({reason})"
        )
        ov.append("model.perceptual_loss=null")
    train(_compose("demo_gan", out / "gan", ov))
    gan_gen = out / "gan" / "generator.safetensors"

    _banner(f"3/4 network interpolation, alpha = {ALPHA}")
    interp = interpolate_to_file(
        str(psnr_gen), str(gan_gen), ALPHA, str(out / "interp.safetensors")
    )
    print(f"wrote {interp}")

    _banner("4/4 evaluation on the held-out sample photos")
    datamodule.setup("validate")
    loader = datamodule.val_dataloader()[0]
    gens = {
        "bicubic (MATLAB)": None,
        "PSNR model": load_generator(psnr_gen),
        "GAN model" + ("" if reason is None else " (no VGG loss)"): load_generator(gan_gen),
        f"interpolated a={ALPHA}": load_generator(interp),
    }
    results, images = evaluate(gens, loader)
    bicubic = images["bicubic (MATLAB)"]
    for name in gens:
        results[name]["colour"] = colour_shift(images[name], bicubic)
    text = table(results)
    print(text)
    lq = [b["lq"][0] for b in loader]
    png = comparison_png(images, out / "comparison.png", lq=lq)
    with atomic_write_path(out / "demo_results.json") as tmp:
        tmp.write_text(json.dumps(results, indent=2) + "\n")
    gain = results["PSNR model"]["psnr_y"] - results["bicubic (MATLAB)"]["psnr_y"]
    print(
        f"\nPSNR model vs bicubic: {gain:+.2f} dB PSNR-Y (colour: the mean-colour shift "
        "against bicubic, in 8-bit levels)"
    )
    print(f"comparison image: {png}")
    print(f"total time: {time.time() - t0:.0f} s")
    return {"results": results, "vgg": reason is None, "png": str(png)}


def set_cpu_threads() -> int:
    """One intra-op thread on small (<= 2 core) machines unless OMP_NUM_THREADS says otherwise:
    the tiny demo nets gain little from a second thread and lose a lot when cores are shared."""
    if "OMP_NUM_THREADS" not in os.environ and (os.cpu_count() or 1) <= 2:
        torch.set_num_threads(1)
    return torch.get_num_threads()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--out", default="outputs/demo", help="output folder")
    parser.add_argument("--psnr-steps", type=int, default=None, help="PSNR-stage iterations")
    parser.add_argument("--gan-steps", type=int, default=None, help="GAN-stage iterations")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for both stages")
    args = parser.parse_args(argv)
    set_cpu_threads()
    run_demo(Path(args.out), args.psnr_steps, args.gan_steps, args.overrides)


if __name__ == "__main__":
    main()

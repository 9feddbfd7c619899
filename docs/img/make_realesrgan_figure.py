"""Make docs/img/realesrgan_degradations.png: one HR patch and 8 sampled Real-ESRGAN degradations.

Run: ``python docs/img/make_realesrgan_figure.py`` (needs scikit-image for the photo). Each LR
(x4 smaller) is shown enlarged with nearest neighbour so its pixels stay visible; the seeds are
fixed, so the figure is the same on every run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from esrgan_lit.degradations import RealESRGANDegradation

TILE = 160


def main() -> None:
    from skimage import data

    hr = data.astronaut()[40:200, 150:310]  # 160 x 160: face and helmet edge
    gt = torch.from_numpy(np.ascontiguousarray(hr)).permute(2, 0, 1)[None].float() / 255
    deg = RealESRGANDegradation(scale=4)
    tiles = [("HR", Image.fromarray(hr))]
    for seed in range(8):
        lq = deg(gt, torch.Generator().manual_seed(seed))[0]
        arr = (lq.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        tiles.append((f"seed {seed}", Image.fromarray(arr).resize((TILE, TILE), Image.NEAREST)))
    sheet = Image.new("RGB", (3 * TILE, 3 * TILE), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (label, tile) in enumerate(tiles):
        x, y = (i % 3) * TILE, (i // 3) * TILE
        sheet.paste(tile, (x, y))
        draw.rectangle((x, y, x + 8 * len(label) + 4, y + 13), fill="black")
        draw.text((x + 2, y + 1), label, fill="white")
    out = Path(__file__).with_name("realesrgan_degradations.png")
    sheet.save(out, optimize=True)
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()

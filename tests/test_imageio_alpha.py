"""``imageio.has_alpha``: transparency from the header alone (the batch upscaler's output naming)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from esrgan_lit.imageio import has_alpha
from esrgan_lit.inference import batch


def test_has_alpha_from_the_header(tmp_path) -> None:
    rgb = np.zeros((4, 4, 3), np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(np.zeros((4, 4, 4), np.uint8)).save(tmp_path / "rgba.png")
    pal = Image.fromarray(rgb).convert("P")
    pal.save(tmp_path / "pal_trns.png", transparency=0)
    pal.save(tmp_path / "pal.png")
    Image.fromarray(rgb).save(tmp_path / "rgb.jpg")
    (tmp_path / "junk.png").write_bytes(b"not an image")
    got = {p.name: has_alpha(p) for p in sorted(tmp_path.iterdir())}
    assert got == {"junk.png": False, "pal.png": False, "pal_trns.png": True, "rgb.jpg": False,
                   "rgb.png": False, "rgba.png": True}  # fmt: skip
    assert batch.has_alpha is has_alpha  # the batch planner uses the imageio one

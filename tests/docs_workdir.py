"""What a docs block finds in its working directory: the documented data layout in miniature,
photos, and a stand-in for every model file a line reads that the reader would have trained
(see test_docs_run.py). Tiny on purpose: the whole docs suite shares one box with the others."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch

GENERATOR_SUFFIXES = (".pth", ".pt", ".safetensors")
PHOTO_FOLDERS = {"photos", "inputs", "my_photos", "val_photos"}
INPUT_IMAGES = {"photo.png", "photo.jpg", "my.jpg", "big.png", "scans", *PHOTO_FOLDERS}

STAND_INS: set[Path] = set()  # generators this test put where a reader would have trained one


def _photo(path: Path, size: tuple[int, int] = (64, 64), seed: int = 0) -> Path:
    """A smooth random colour image (texture at several scales, so metrics are finite)."""
    from PIL import Image

    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, size[1] // 8, size[0] // 8, generator=g)
    x = torch.nn.functional.interpolate(x, size=(size[1], size[0]), mode="bicubic")
    x = (x + 0.15 * torch.rand(1, 3, size[1], size[0], generator=g)).clamp(0, 1)
    arr = (x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def _hr_lr(top: Path, hr_dir: str, lr_dir: str, stem: str, seed: int, size: int = 64) -> None:
    """An HR photo and its x4 LR (MATLAB bicubic) in the DIV2K / Flickr2K layout."""
    from PIL import Image

    from esrgan_lit.ops import imresize

    hr = _photo(top / hr_dir / f"{stem}.png", (size, size), seed=seed)
    t = torch.from_numpy(np.array(Image.open(hr))).permute(2, 0, 1)[None].double() / 255
    lr = imresize(t, 0.25)[0].clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy()
    out = top / lr_dir / "X4" / f"{stem}x4.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(lr).save(out)


def _data_tree(root: Path) -> Path:
    """The documented data layout, two tiny images per set, LR made with MATLAB bicubic."""
    for i in (1, 2):  # >= 480 px: `prepare extract` crops
        _hr_lr(root / "DIV2K", "DIV2K_train_HR", "DIV2K_train_LR_bicubic", f"{i:04d}", i, 512)
    for i in (1, 2):  # DF2K / DF2K+OST (experiment=realesrnet, realesrgan)
        _hr_lr(root / "Flickr2K", "Flickr2K_HR", "Flickr2K_LR_bicubic", f"{i:06d}", seed=5 + i)
        _photo(root / "OST" / "animal" / f"animal_{i:04d}.png", seed=7 + i)
    for name in ("Set5", "Set14", "B100", "Urban100"):
        for i in (1, 2):
            _photo(root / "benchmark" / name / "HR" / f"img{i}.png", seed=10 + i)
    for sub in ("Manga109/HR", "PIRM/PIRM_self-val/HR"):
        for i in (1, 2):
            _photo(root / sub / f"img{i}.png", seed=20 + i)
    return root


def _materialise(token: str, work: Path, assets: dict[str, Path], output: bool) -> None:
    """Create what a documented input path names when the reader would already have it."""
    path = work / token
    name = Path(token).name or token.rstrip("/")
    top = Path(token).parts[0] if Path(token).parts else token
    if output or path.exists():
        return
    if token.endswith(GENERATOR_SUFFIXES):
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(assets["generator"], path)
        STAND_INS.add(path.resolve())
    elif token.endswith(".ckpt"):
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(assets["ckpt"], path)
    elif name in INPUT_IMAGES or top in INPUT_IMAGES:
        if name in PHOTO_FOLDERS or top in PHOTO_FOLDERS:  # also a training set: >= gt_size
            folder = path if name in PHOTO_FOLDERS else work / top
            for i in (1, 2):
                _photo(folder / f"p{i}.png", (48, 40), seed=30 + i)
        elif top == "scans":
            _photo(work / "scans" / "a" / "s1.tif", (24, 20), seed=40)
        else:
            _photo(path, (24, 20), seed=50)
    elif token.startswith("data/sample/"):  # written by any data=sample run (the page says so)
        from esrgan_lit.data.sample import build_sample

        build_sample(work / "data" / "sample")
    elif token.startswith("datasets/") and "=" not in token:
        if token.rstrip("/") == "datasets/sr":
            shutil.copytree(assets["data"], path)
        else:
            for i in (1, 2):
                _photo(path / f"img{i}.png", seed=60 + i)


def _paths_in(tokens: list[str]) -> list[tuple[str, bool]]:
    """(path, is_output) for every path-like value on a command line."""
    found = []
    after_out = False
    for tok in tokens:
        is_out = after_out
        after_out = tok in ("-o", "--output")
        key, sep, value = tok.partition("=")
        if sep:
            is_out = key in ("output", "hydra.run.dir")
            candidates = [v.strip(" {}[]") for v in value.replace("hr:", ",").split(",")]
        else:
            candidates = [tok]
        for c in candidates:
            pathish = "/" in c or "." in Path(c).name or c in INPUT_IMAGES
            if c and not c.startswith("-") and pathish:
                found.append((c, is_out))
    return found


def _rewrite(text: str, work: Path) -> str:
    for root in ("/datasets/", "/shared/", "/path/to/"):  # the reader's own folders
        text = text.replace(root, f"{work}{root}")
    return text

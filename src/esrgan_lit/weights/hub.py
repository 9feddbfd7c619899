"""Official ESRGAN-family generators by name, fetched once into the torch hub cache and verified.

    load_generator("RealESRGAN_x4plus")          # or: esrgan-upscale --model RealESRGAN_x4plus ...

Only checkpoints with a stable, direct release address are downloaded (GitHub releases of
xinntao/Real-ESRGAN). Each is checked against its published SHA-256, or, where the authors only
put a hash prefix in the file name (BasicSR's ``NAME-<first 8 hex of SHA-256>.pth`` convention),
against that prefix. A file that fails the check is deleted and never loaded. Files land in
``torch.hub.get_dir()/checkpoints`` (``$TORCH_HOME``), the same place torchvision keeps its
weights, so one cache serves every tool; without network the error names the exact path where
a by-hand copy is picked up.

No Lightning or Hydra here: ``esrgan_lit.weights.load_generator`` resolves names through this
module. The ``esrgan-hub`` command and the public name ``esrgan_lit.hub`` live in
``esrgan_lit/hub.py``, which re-exports this module.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from esrgan_lit.utils.fetch import CHUNK, ChecksumError, DownloadError, download_resuming

__all__ = [
    "MODELS",
    "ChecksumError",
    "DownloadError",
    "HubModel",
    "cache_dir",
    "cache_path",
    "download",
    "get",
    "is_name",
    "resolve",
    "verify",
]

_REAL_ESRGAN = "https://github.com/xinntao/Real-ESRGAN/releases/download"


@dataclass(frozen=True)
class HubModel:
    """One published checkpoint: where it lives and how to recognise the right bytes."""

    name: str
    filename: str
    url: str | None  # None: no stable direct address (the error explains where to get it)
    sha256: str | None  # the full digest, where published
    size: int | None
    scale: int
    description: str
    homepage: str

    @property
    def sha256_prefix(self) -> str | None:
        """The hash prefix in the file name (``...-ff704c30.pth``), if any."""
        m = re.search(r"-([0-9a-f]{8,})\.[a-z]+$", self.filename)
        return m.group(1) if m else None


# Digests: the published release files (cross-checked in several independent packaging
# manifests); the ESRGAN files carry BasicSR's SHA-256 prefix in their names.
MODELS: dict[str, HubModel] = {
    m.name: m
    for m in [
        HubModel(
            "RealESRGAN_x4plus",
            "RealESRGAN_x4plus.pth",
            f"{_REAL_ESRGAN}/v0.1.0/RealESRGAN_x4plus.pth",
            "4fa0d38905f75ac06eb49a7951b426670021be3018265fd191d2125df9d682f1",
            67_040_989,
            4,
            "Real-ESRGAN x4 (GAN), real-world degradations; RRDBNet 64f/23b",
            "https://github.com/xinntao/Real-ESRGAN",
        ),
        HubModel(
            "RealESRNet_x4plus",
            "RealESRNet_x4plus.pth",
            f"{_REAL_ESRGAN}/v0.1.1/RealESRNet_x4plus.pth",
            "a820b9bde89a874d7599d545567308ce6c128fc8754a53208eda016d40aa81df",
            67_040_989,
            4,
            "Real-ESRNet x4 (L1 only, before the GAN stage); RRDBNet 64f/23b",
            "https://github.com/xinntao/Real-ESRGAN",
        ),
        HubModel(
            "RealESRGAN_x2plus",
            "RealESRGAN_x2plus.pth",
            f"{_REAL_ESRGAN}/v0.2.1/RealESRGAN_x2plus.pth",
            "49fafd45f8fd7aa8d31ab2a22d14d91b536c34494a5cfe31eb5d89c2fa266abb",
            67_061_725,
            2,
            "Real-ESRGAN x2 (GAN); RRDBNet 64f/23b with pixel-unshuffle input",
            "https://github.com/xinntao/Real-ESRGAN",
        ),
        HubModel(
            "ESRGAN_SRx4_DF2KOST_official",
            "ESRGAN_SRx4_DF2KOST_official-ff704c30.pth",
            f"{_REAL_ESRGAN}/v0.1.1/ESRGAN_SRx4_DF2KOST_official-ff704c30.pth",
            None,
            None,
            4,
            "ESRGAN x4 (the paper's GAN model, DF2K+OST), BasicSR layout",
            "https://github.com/XPixelGroup/BasicSR/blob/master/docs/ModelZoo.md",
        ),
        HubModel(
            "ESRGAN_PSNR_SRx4_DF2K_official",
            "ESRGAN_PSNR_SRx4_DF2K_official-150ff491.pth",
            None,  # published on Google Drive only (BasicSR model zoo): no stable direct address
            None,
            None,
            4,
            "ESRGAN x4 PSNR-oriented RRDBNet (DF2K), BasicSR layout; place it by hand",
            "https://github.com/XPixelGroup/BasicSR/blob/master/docs/ModelZoo.md",
        ),
    ]
}


def cache_dir() -> Path:
    """``torch.hub.get_dir()/checkpoints`` (follows ``$TORCH_HOME``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def get(name: str) -> HubModel:
    """The table entry for ``name`` (case-insensitive); KeyError lists the known names."""
    if name in MODELS:
        return MODELS[name]
    by_lower = {k.lower(): v for k, v in MODELS.items()}
    if name.lower() in by_lower:
        return by_lower[name.lower()]
    raise KeyError(f"unknown model name {name!r}; known: {', '.join(MODELS)}")


def cache_path(name: str) -> Path:
    """Where ``name`` is (or will be) kept; a copy placed there by hand is used if it verifies."""
    return cache_dir() / get(name).filename


def _manual_hint(model: HubModel, dst: Path) -> str:
    src = model.url or f"{model.homepage} (not downloadable automatically)"
    return f"Download {model.filename} from {src} and place it at {dst}; it is verified on use."


def verify(model: HubModel, path: Path) -> None:
    """Size, then SHA-256 (full digest or the file name's prefix); ChecksumError names both."""
    size = path.stat().st_size
    if model.size is not None and size != model.size:
        raise ChecksumError(f"{path}: {size} bytes, expected {model.size} ({model.name})")
    want = model.sha256 or model.sha256_prefix
    if not want:
        return
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    got = h.hexdigest()
    if not got.startswith(want):
        raise ChecksumError(f"{path}: sha256 {got}, expected {want}... ({model.name})")


def download(name: str, *, progress: bool = True, timeout: float = 60.0, retries: int = 2) -> Path:
    """The verified local file for ``name``, downloading it on first use (idempotent).

    Partial downloads resume (``<file>.part``, HTTP Range); bytes that fail the check are deleted.
    """
    model = get(name)
    dst = cache_dir() / model.filename
    if dst.is_file():
        try:
            verify(model, dst)
        except ChecksumError as err:
            raise ChecksumError(
                f"{err}. The cached file is not the published checkpoint: delete it and rerun "
                f"(it is downloaded again), or replace it. " + _manual_hint(model, dst)
            ) from None
        return dst
    if model.url is None:
        raise DownloadError(
            f"{model.name} cannot be downloaded automatically. " + _manual_hint(model, dst)
        )
    dst.parent.mkdir(parents=True, exist_ok=True)
    part = dst.with_name(dst.name + ".part")
    errors: list[str] = []
    if download_resuming(model.url, part, size=model.size, label=model.filename, retries=retries,
                         timeout=timeout, progress=progress, errors=errors):  # fmt: skip
        try:
            verify(model, part)
        except ChecksumError as err:
            part.unlink(missing_ok=True)  # bad bytes are never resumed from nor loaded
            raise ChecksumError(
                f"{err}; the download was deleted. " + _manual_hint(model, dst)
            ) from None
        os.replace(part, dst)
        return dst
    raise DownloadError(
        f"could not download {model.name} from {model.url}: {'; '.join(errors)}. "
        + _manual_hint(model, dst)
    )


def is_name(source: object) -> bool:
    """True for a string naming a table entry (and not an existing file of that name)."""
    if not isinstance(source, str) or os.path.exists(source):
        return False
    try:
        get(source)
    except KeyError:
        return False
    return True


def resolve(source: object, *, progress: bool = True) -> object:
    """A model name -> its verified cached path; anything else (path, dict, module) unchanged."""
    return download(source, progress=progress) if is_name(source) else source

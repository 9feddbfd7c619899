"""`Upscaler`: the Python API for upscaling images with any ESRGAN-family generator."""

from __future__ import annotations

import copy
import logging
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from esrgan_lit.archs import RRDBNet
from esrgan_lit.inference.io import array_to_pil, pil_to_array, read_image, write_image
from esrgan_lit.inference.tiling import quantise_into, upscale_tiled
from esrgan_lit.weights import load_generator

log = logging.getLogger("esrgan_lit.inference")

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
MIN_TILE = 16
_MAX = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0, np.dtype(np.float32): 1.0}


def resolve_device(device: str | torch.device) -> torch.device:
    """'auto' -> CUDA when available, else CPU; anything else as torch reads it."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {str(device)!r} requested but CUDA is not available (use --device cpu)"
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(
            f"device {str(device)!r}: no such GPU (this machine has {torch.cuda.device_count()}: "
            f"cuda:0 ... cuda:{torch.cuda.device_count() - 1})"
        )
    return dev


class Upscaler:
    """Upscale PIL images, uint8/uint16 arrays or float tensors; tiles bound the memory.

    ``tile`` is the core size of a tile in input pixels (0 = whole image at once); each patch adds
    ``tile_overlap`` context pixels per side, blended seamlessly (see ``inference.tiling``).
    Reduced precisions fall back to fp32 for any batch whose output is not finite, so fp16 never
    yields black or NaN images. ``alpha`` picks how transparency is upscaled: ``"net"`` runs it
    through the network as a grey image, ``"bicubic"`` resizes it. ``compile`` runs the
    reduced-precision or fp32 network through ``torch.compile`` (worth it on a GPU with a fixed
    tile size: uniform tiles keep one shape, so it compiles once). ``tta`` is the geometric
    self-ensemble (EDSR's "+" models, Lim et al. 2017): each patch goes through
    the network in all 8 flips/rotations and the outputs, transformed back, are averaged; 8x the
    compute for a small PSNR gain.
    """

    def __init__(
        self,
        model: nn.Module | str | Path | dict,
        *,
        device: str | torch.device = "auto",
        precision: str = "fp32",
        tile: int = 0,
        tile_overlap: int = 32,
        tile_batch: int = 1,
        alpha: str = "net",
        channels_last: bool = True,
        compile: bool = False,
        tta: bool = False,
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {sorted(PRECISIONS)}; got {precision!r}")
        if alpha not in ("net", "bicubic"):
            raise ValueError(f"alpha must be 'net' or 'bicubic'; got {alpha!r}")
        if tile < 0 or tile_overlap < 0 or tile_batch < 1:
            raise ValueError(
                f"need tile >= 0, tile_overlap >= 0, tile_batch >= 1; "
                f"got {tile}, {tile_overlap}, {tile_batch}"
            )
        if not isinstance(model, nn.Module):
            model = load_generator(model)
        model = model.eval().requires_grad_(False)
        self.scale, self.in_ch, self.out_ch = _probe(model)
        self.multiple = int(getattr(model, "unshuffle", {1: 4, 2: 2}.get(self.scale, 1)))
        self.device = resolve_device(device)
        self.dtype = PRECISIONS[precision]
        self.tile, self.tile_overlap, self.tile_batch = tile, tile_overlap, tile_batch
        self.alpha = alpha
        self.tta = bool(tta)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        fmt = {"memory_format": self.memory_format}
        if self.dtype == torch.float32:
            self.model = model.to(self.device, **fmt)
            self._fp32: nn.Module | None = self.model
        else:
            self.model = copy.deepcopy(model).to(self.device, self.dtype, **fmt)
            self._fp32 = None
            self._cpu_fp32 = model
        self.fallbacks = 0  # batches re-run in fp32 because reduced precision overflowed
        self.compiled = torch.compile(self.model, dynamic=False) if compile else None

    # ------------------------------------------------------------------ public API
    def upscale(self, image, *, outscale: float | None = None):
        """Upscale one image; returns the same kind (PIL / ndarray / tensor) as given."""
        if isinstance(image, Image.Image):
            out = self._upscale_array(pil_to_array(image), outscale)
            return array_to_pil(out)
        if isinstance(image, np.ndarray):
            if image.dtype not in (np.uint8, np.uint16):
                raise TypeError(f"NumPy images must be uint8 or uint16; got {image.dtype}")
            if image.ndim == 2:
                return self._upscale_array(image[:, :, None], outscale)[:, :, 0]
            if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4):
                raise ValueError(f"expected an (H, W) or (H, W, C<=4) array; got {image.shape}")
            return self._upscale_array(image, outscale)
        if isinstance(image, torch.Tensor):
            return self._upscale_tensor(image, outscale)
        raise TypeError(f"cannot upscale a {type(image).__name__}; give PIL, ndarray or tensor")

    def upscale_file(
        self, src: str | Path, dst: str | Path, *, outscale: float | None = None
    ) -> Path:
        """Read ``src`` (any supported format), upscale, write ``dst`` atomically."""
        out = self._upscale_array(read_image(src), outscale)
        write_image(dst, out)
        return Path(dst)

    # ------------------------------------------------------------------ internals
    def _upscale_tensor(self, x: torch.Tensor, outscale: float | None) -> torch.Tensor:
        if not x.is_floating_point() or x.dim() not in (3, 4):
            raise TypeError(
                f"tensor images must be float (C,H,W) or (N,C,H,W); got {x.dtype} {tuple(x.shape)}"
            )
        batch = x if x.dim() == 4 else x[None]
        outs = []
        for img in batch:
            arr = self._process(img.detach().float().cpu(), np.dtype(np.float32), outscale)
            outs.append(torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1))
        y = torch.stack(outs).to(x.device, x.dtype)
        return y if x.dim() == 4 else y[0]

    def _upscale_array(self, a: np.ndarray, outscale: float | None) -> np.ndarray:
        # Integer pixels stay integer in memory (a quarter of float32); patches convert on the fly.
        img = torch.from_numpy(np.array(a.transpose(2, 0, 1)))  # own, writable copy
        return self._process(img, a.dtype, outscale)

    def _process(self, img: torch.Tensor, dtype: np.dtype, outscale: float | None) -> np.ndarray:
        """(C, H, W) uint8/uint16 or float [0, 1] on CPU -> (H', W', C) of ``dtype``.

        C is colour (1 or 3) plus an optional alpha channel.
        """
        norm = 1.0 if img.is_floating_point() else _MAX[np.dtype(dtype)]
        channels, height, width = img.shape
        colour = 1 if channels in (1, 2) else 3
        if colour == 3 and self.in_ch == 1:
            raise ValueError("this model takes grey images; got a colour image")
        m, s = self.multiple, self.scale
        hp, wp = m * math.ceil(height / m), m * math.ceil(width / m)
        if (hp, wp) != (height, width):
            img = _pad_edge(img, hp - height, wp - width)
        out = np.empty((hp * s, wp * s, channels), dtype)
        self._upscale_plane(img[:colour], out[:, :, :colour], norm)
        if channels > colour:
            alpha = img[colour:]
            if bool((alpha >= norm).all()):
                out[:, :, colour:] = _MAX[dtype]
            elif self.alpha == "net":
                self._upscale_plane(alpha, out[:, :, colour:], norm)
            else:
                out[:, :, colour:] = _resize(
                    _to_dtype(alpha.float() / norm, dtype), (hp * s, wp * s)
                )
        out = out[: height * s, : width * s]
        if outscale is not None and not math.isclose(outscale, s):
            if outscale <= 0:
                raise ValueError(f"outscale must be > 0; got {outscale}")
            out = _resize(out, (round(height * outscale), round(width * outscale)))
        return out

    def _upscale_plane(self, img: torch.Tensor, out: np.ndarray, norm: float) -> None:
        """Tile ``img`` through the network into ``out``, halving the tile on out-of-memory."""
        tile = self.tile
        while True:
            try:
                upscale_tiled(
                    lambda batch: self._run(batch, norm),
                    img,
                    out,
                    scale=self.scale,
                    tile=tile,
                    overlap=self.tile_overlap,
                    tile_batch=self.tile_batch,
                    multiple=self.multiple,
                )
                return
            except (
                torch.cuda.OutOfMemoryError
            ):  # the CUDA allocator's error (torch.OutOfMemoryError)
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                current = tile or max(img.shape[1:])
                tile = self.multiple * math.ceil(current // 2 / self.multiple)
                if current <= MIN_TILE:
                    raise RuntimeError(
                        f"out of memory even with tile {current}; try --device cpu"
                    ) from None
                log.warning(
                    "out of memory with tile %s; retrying with tile %d", self.tile or "off", tile
                )
                self.tile = tile  # later images start from the size that worked

    def _run(self, batch: torch.Tensor, norm: float) -> torch.Tensor:
        """CPU batch (N, C, h, w), pixel values up to ``norm`` -> CPU float32 output in [0, 1].

        Grey batches go through a colour network as three equal channels and come back as their mean.
        """
        grey = batch.shape[1] == 1 and self.in_ch == 3
        x = batch.to(self.device, non_blocking=True).float()
        if norm != 1.0:
            x = x / norm
        if grey:
            x = x.expand(-1, 3, -1, -1)
        net = self.model if self.compiled is None else self.compiled
        y = self._ensemble(net, x.to(self.dtype))
        if self.dtype != torch.float32 and not bool(torch.isfinite(y).all()):
            self.fallbacks += 1
            if self.fallbacks == 1:
                log.warning("non-finite %s output; re-running affected tiles in fp32", self.dtype)
            if self._fp32 is None:
                self._fp32 = self._cpu_fp32.to(self.device, memory_format=self.memory_format)
            y = self._ensemble(self._fp32, x.float())
        y = y.float()
        if grey and y.shape[1] == 3:
            y = y.mean(1, keepdim=True)
        return y.cpu()

    def _ensemble(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """The network's output, or with ``tta`` the fp32 mean over the 8 dihedral transforms."""
        if not self.tta:
            return self._forward(model, x)
        total = None
        for k, flip in DIHEDRAL:
            y = undo_dihedral(self._forward(model, dihedral(x, k, flip)), k, flip).float()
            total = y if total is None else total.add_(y)
        return total.div_(len(DIHEDRAL))

    def _forward(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=self.memory_format)
        with torch.inference_mode():
            if not isinstance(model, RRDBNet):  # a compiled wrapper is not, and runs whole
                return model(x)
            if self.device.type == "cpu":
                # Dense blocks in two stripes at a 320-px patch, tail maps under glibc's 32 MiB
                # mmap ceiling: the big buffers are reused instead of faulted in afresh, and the
                # peak RSS of a --tile 256 run drops by ~200 MB (see archs.rrdbnet_striped).
                return model.striped_forward(x, stripe_pixels=3 << 15, trunk_stripe_pixels=1 << 16)
            return model.striped_forward(x, stripe_pixels=1 << 17)


# The 8 symmetries of the square: 4 quarter turns, each with and without a horizontal flip.
DIHEDRAL = [(k, flip) for flip in (False, True) for k in range(4)]


def dihedral(x: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    """Flip (last axis) then rotate ``k`` quarter turns in the (H, W) plane."""
    if flip:
        x = x.flip(-1)
    return torch.rot90(x, k, dims=(-2, -1))


def undo_dihedral(y: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    """Inverse of :func:`dihedral`: rotate back, then flip back."""
    y = torch.rot90(y, -k, dims=(-2, -1))
    return y.flip(-1) if flip else y


def _probe(model: nn.Module) -> tuple[int, int, int]:
    """(scale, input channels, output channels) from attributes, else from a tiny forward pass."""
    scale = getattr(model, "scale", None)
    in_ch = getattr(model, "num_in_ch", None)
    out_ch = getattr(model, "num_out_ch", None)
    if in_ch is None:
        conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
        in_ch = conv.in_channels if conv is not None and conv.in_channels in (1, 3) else 3
    if not isinstance(scale, int) or out_ch is None:
        p = next(model.parameters(), None)
        x = torch.zeros(1, in_ch, 16, 16, device=p.device if p is not None else "cpu")
        with torch.inference_mode():
            y = model(x)
        if y.shape[-1] % 16 or y.shape[-2] != y.shape[-1]:
            raise ValueError(f"cannot infer an integer scale: 16x16 input gave {tuple(y.shape)}")
        scale, out_ch = y.shape[-1] // 16, y.shape[1]
    return int(scale), int(in_ch), int(out_ch)


def _pad_edge(img: torch.Tensor, dh: int, dw: int) -> torch.Tensor:
    """Replicate the last row/column (integer tensors too, which F.pad does not take)."""
    return torch.from_numpy(np.pad(img.numpy(), ((0, 0), (0, dh), (0, dw)), mode="edge"))


def _to_dtype(x: torch.Tensor, dtype: np.dtype) -> np.ndarray:
    """(C, H, W) float [0, 1] -> (H, W, C) of ``dtype``."""
    out = np.empty((x.shape[1], x.shape[2], x.shape[0]), dtype)

    quantise_into(out, x)
    return out


def _resize(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize (H, W, C) to ``size`` = (H', W') channel by channel (bicubic up, Lanczos down)."""
    h, w = size
    shrink = h < a.shape[0]
    filt = Image.Resampling.LANCZOS if shrink else Image.Resampling.BICUBIC
    out = np.empty((h, w, a.shape[2]), a.dtype)
    for c in range(a.shape[2]):
        plane = np.ascontiguousarray(a[:, :, c])
        if a.dtype == np.uint8:
            out[:, :, c] = np.asarray(Image.fromarray(plane, "L").resize((w, h), filt))
        else:  # uint16 and float32 go through Pillow's 32-bit float mode
            r = np.asarray(Image.fromarray(plane.astype(np.float32), "F").resize((w, h), filt))
            r = np.clip(np.rint(r), 0, 65535) if a.dtype == np.uint16 else np.clip(r, 0.0, 1.0)
            out[:, :, c] = r
    return out

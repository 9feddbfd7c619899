"""Ma et al. (CVIU 2017) no-reference SR score and the PIRM-SR 2018 Perceptual Index.

``Ma = B0 + B1*s1 + B2*s2 + B3*s3``, where s_k is the prediction of random forest k on feature
group k (see :mod:`esrgan_lit.metrics.ma_features`); higher is better (0..10). The forests of the
authors' release are not redistributable here, so :class:`MaScore` loads them from a file in our
safe format (:mod:`esrgan_lit.metrics.ma_forest`; convert sr-metric's ``model.mat`` once) and
raises :class:`MetricUnavailableError` when there is none, so callers report ``null``, never a
made-up number. ``PI = 0.5 * ((10 - Ma) + NIQE)``, lower is better; PIRM scores the Y channel
of the uint8 image with 4 pixels shaved, which is the default here.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric

from esrgan_lit.metrics.errors import MetricUnavailableError
from esrgan_lit.metrics.ma_features import ma_features
from esrgan_lit.metrics.ma_forest import MaForests, load_forests
from esrgan_lit.metrics.niqe import load_pristine_params, niqe_from_y
from esrgan_lit.metrics.psnr_ssim import scoring_space

__all__ = [
    "MA_LINEAR",
    "MA_MODEL_ENV",
    "MA_SHA256_ENV",
    "MaScore",
    "PerceptualIndex",
    "default_model_path",
    "load_ma_model",
    "ma_from_scores",
    "ma_score",
]

# Final stage B of the authors' model.mat (``model.linear``), exact to float64: recovered by
# exact least squares from (s1, s2, s3, Ma) tuples the official code produced (residual 6e-15).
MA_LINEAR = (-0.3087780597718517, 0.1655723733585852, 0.3765637247609357, 0.5236870895529353)
MA_MODEL_ENV = "ESRGAN_LIT_MA_MODEL"
MA_SHA256_ENV = "ESRGAN_LIT_MA_SHA256"
_HOW_TO = (
    "convert sr-metric's model.mat with `python -m esrgan_lit.metrics.ma_forest convert "
    "model.mat {dst}`, or pass model_path= / set " + MA_MODEL_ENV
)


def default_model_path() -> Path:
    """``$XDG_CACHE_HOME/esrgan_lit/ma_forests.npz`` (``~/.cache/...`` when XDG is unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "esrgan_lit" / "ma_forests.npz"


def load_ma_model(
    model_path: str | os.PathLike[str] | None = None, sha256: str | None = None
) -> MaForests:
    """Find and load the forests: ``model_path``, else ``$ESRGAN_LIT_MA_MODEL``, else the cache.

    ``sha256`` (or ``$ESRGAN_LIT_MA_SHA256``) is checked when given. Any failure is a
    :class:`MetricUnavailableError` with a one-line reason that says where the file goes.
    """
    cache = default_model_path()
    if model_path is not None:
        path, origin = Path(model_path).expanduser(), "model_path"
    elif os.environ.get(MA_MODEL_ENV):
        path, origin = Path(os.environ[MA_MODEL_ENV]).expanduser(), f"${MA_MODEL_ENV}"
    else:
        path, origin = cache, "the cache"
    sha256 = sha256 or os.environ.get(MA_SHA256_ENV) or None
    if not path.is_file():
        raise MetricUnavailableError(
            f"Ma score unavailable: no forests file at {path} ({origin}); "
            + _HOW_TO.format(dst=cache)
        )
    try:
        return load_forests(path, sha256=sha256)
    except ValueError as err:
        raise MetricUnavailableError(f"Ma score unavailable: {err}") from err


def ma_from_scores(s: np.ndarray, linear: np.ndarray | tuple[float, ...] = MA_LINEAR) -> np.ndarray:
    """The linear stage: (N, 3) forest outputs -> (N,) Ma scores."""
    s = np.atleast_2d(np.asarray(s, dtype=np.float64))
    b = np.asarray(linear, dtype=np.float64)
    return b[0] + s @ b[1:]


def _ma_of_y(y: Tensor, model: MaForests) -> Tensor:
    """Ma per image of (N, 1, H, W) float64 grey levels 0..255 -> (N,) float64 (CPU)."""
    feats = [ma_features(img[0].cpu().numpy()) for img in y]
    scores = np.stack(
        [model.forests[k].predict(np.stack([f[k] for f in feats])) for k in range(3)], axis=1
    )
    linear = MA_LINEAR if model.linear is None else model.linear
    return torch.from_numpy(ma_from_scores(scores, linear))


def ma_score(x: Tensor, model: MaForests, *, crop_border: int = 4) -> Tensor:
    """Ma per image of float [0, 1] images (N, 3|1, H, W) -> (N,) float64 on CPU.

    RGB is scored on MATLAB's uint8 Y, grey on its quantised values, ``crop_border`` shaved.
    """
    return _ma_of_y(scoring_space(x, crop_border=crop_border, test_y_channel=True), model)


class MaScore(Metric):
    """Mean Ma score over images (no reference: ``update(preds)``); sum/count states for DDP.

    Features run in float64 on the CPU whatever the input's device (they are per-image
    statistics; the regression is a tree walk).
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        crop_border: int = 4,
        *,
        sha256: str | None = None,
        model: MaForests | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if crop_border < 0:
            raise ValueError(f"crop_border must be >= 0, got {crop_border}")
        self.crop_border = int(crop_border)
        self.model = model if model is not None else load_ma_model(model_path, sha256)
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Tensor) -> None:
        values = ma_score(preds, self.model, crop_border=self.crop_border)
        self.total += values.sum().to(self.total)
        self.count += values.numel()

    def compute(self) -> Tensor:
        return self.total / self.count


class PerceptualIndex(Metric):
    """PIRM-SR Perceptual Index, mean over images of ``0.5 * ((10 - Ma) + NIQE)`` (lower = better).

    Both parts are scored on the same MATLAB uint8 Y with ``crop_border`` shaved (PIRM: 4).
    ``compute()`` returns PI; ``compute_parts()`` the mean Ma and NIQE as well.
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        crop_border: int = 4,
        *,
        sha256: str | None = None,
        model: MaForests | None = None,
        niqe_params_path: str | os.PathLike[str] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)

        if crop_border < 0:
            raise ValueError(f"crop_border must be >= 0, got {crop_border}")
        self.crop_border = int(crop_border)
        self.model = model if model is not None else load_ma_model(model_path, sha256)
        self._niqe_params = load_pristine_params(niqe_params_path)
        for name in ("total_ma", "total_niqe"):
            self.add_state(name, torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Tensor) -> None:
        y = scoring_space(preds, crop_border=self.crop_border, test_y_channel=True)
        ma = _ma_of_y(y, self.model)
        nq = niqe_from_y(y, self._niqe_params)
        self.total_ma += ma.sum().to(self.total_ma)
        self.total_niqe += nq.sum().to(self.total_niqe)
        self.count += ma.numel()

    def compute_parts(self) -> dict[str, Tensor]:
        ma, nq = self.total_ma / self.count, self.total_niqe / self.count
        return {"pi": 0.5 * ((10.0 - ma) + nq), "ma": ma, "niqe": nq}

    def compute(self) -> Tensor:
        return self.compute_parts()["pi"]

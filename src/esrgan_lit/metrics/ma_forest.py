"""Regression forests for the Ma score: a safe file format, vectorised prediction, converters.

Ma et al. regress each feature group with a random forest (2000 trees each in the authors'
``model.mat``) and combine the three outputs linearly. Their file is MATLAB, so we define our own
plain-array format and convert into it once:

``ma_forests.npz`` (``numpy.savez``, read with ``allow_pickle=False``, so loading runs no code):

* ``format_version``: int, 1.
* ``linear`` (optional): float64 (4,), the final stage B; absent means the published B.
* for k in 1, 2, 3 (feature groups f1 (18), f2 (45), f3 (75)), with nodes of all trees
  concatenated tree by tree:
  ``f{k}_tree_offsets`` int64 (T+1,) starting at 0: tree t owns nodes ``[off[t], off[t+1])``;
  ``f{k}_feature`` int32 (nodes,): 0-based feature index, -1 for a leaf;
  ``f{k}_threshold`` float64: go to the left child when ``x[feature] <= threshold``;
  ``f{k}_left``/``f{k}_right`` int32: children as indices *within the tree* (-1 at leaves),
  always greater than the parent's index (this guarantees that a walk ends);
  ``f{k}_value`` float64: the prediction stored at a leaf (unused at internal nodes).
  A forest predicts the mean of its trees' leaf values.

Converters: :func:`forests_from_matlab` (the authors' ``model.mat``, randomforest-matlab
``regRF`` layout) and :func:`forest_from_sklearn` (a fitted ``RandomForestRegressor``). CLI::

    python -m esrgan_lit.metrics.ma_forest convert sr-metric/model.mat ~/.cache/esrgan_lit/ma_forests.npz
"""

from __future__ import annotations

import argparse
import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from esrgan_lit.utils.atomic import atomic_write_path

__all__ = [
    "FEATURE_DIMS",
    "MaForests",
    "RegressionForest",
    "file_sha256",
    "forest_from_sklearn",
    "forests_from_matlab",
    "load_forests",
    "save_forests",
]

FEATURE_DIMS = (18, 45, 75)
FORMAT_VERSION = 1


@dataclass
class RegressionForest:
    """Trees stored as flat arrays (see the module docstring); ``predict`` walks all at once."""

    tree_offsets: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray

    def __post_init__(self) -> None:
        self.tree_offsets = np.asarray(self.tree_offsets, dtype=np.int64)
        self.feature = np.asarray(self.feature, dtype=np.int32)
        self.threshold = np.asarray(self.threshold, dtype=np.float64)
        self.left = np.asarray(self.left, dtype=np.int32)
        self.right = np.asarray(self.right, dtype=np.int32)
        self.value = np.asarray(self.value, dtype=np.float64)

    @property
    def num_trees(self) -> int:
        return self.tree_offsets.size - 1

    def validate(self, num_features: int, where: str = "forest") -> None:
        """Raise ValueError naming ``where`` when the arrays do not describe valid trees."""
        off, n = self.tree_offsets, self.feature.size
        if off.ndim != 1 or off.size < 2 or off[0] != 0 or off[-1] != n or np.any(np.diff(off) < 1):
            raise ValueError(f"{where}: tree_offsets must rise from 0 to the node count {n}")
        for name in ("threshold", "left", "right", "value"):
            if getattr(self, name).shape != (n,):
                raise ValueError(
                    f"{where}: {name} has shape {getattr(self, name).shape}, want ({n},)"
                )
        internal = self.feature >= 0
        if np.any(self.feature[internal] >= num_features) or np.any(self.feature < -1):
            raise ValueError(f"{where}: feature index outside [-1, {num_features})")
        tree_of = np.repeat(np.arange(self.num_trees), np.diff(off))
        local = np.arange(n) - off[tree_of]
        size = np.diff(off)[tree_of]
        for name in ("left", "right"):
            child = getattr(self, name)[internal]
            if np.any(child <= local[internal]) or np.any(child >= size[internal]):
                raise ValueError(f"{where}: {name} child out of its tree or not after its parent")
        if not np.all(np.isfinite(self.value[~internal])):
            raise ValueError(f"{where}: a leaf value is not finite")

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Mean leaf value over the trees for each row of ``x`` (N, F) -> (N,)."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        roots = self.tree_offsets[:-1]
        tree_start = np.repeat(roots, np.diff(self.tree_offsets))
        left = (self.left + tree_start).astype(np.int64)
        right = (self.right + tree_start).astype(np.int64)
        node = np.broadcast_to(roots, (x.shape[0], roots.size)).copy()
        rows = np.arange(x.shape[0])[:, None]
        while True:
            feat = self.feature[node]
            active = feat >= 0
            if not active.any():
                break
            xv = x[rows, np.where(active, feat, 0)]
            nxt = np.where(xv <= self.threshold[node], left[node], right[node])
            node = np.where(active, nxt, node)
        return self.value[node].mean(axis=1)


@dataclass
class MaForests:
    """The three forests of the Ma score and (optionally) the file's own linear stage."""

    forests: tuple[RegressionForest, RegressionForest, RegressionForest]
    linear: np.ndarray | None = None


def file_sha256(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_forests(path: str | os.PathLike[str], model: MaForests) -> None:
    """Write ``model`` in the format above, atomically."""
    arrays: dict[str, np.ndarray] = {"format_version": np.array(FORMAT_VERSION)}
    if model.linear is not None:
        arrays["linear"] = np.asarray(model.linear, dtype=np.float64).reshape(4)
    for k, (forest, dims) in enumerate(zip(model.forests, FEATURE_DIMS, strict=True), start=1):
        forest.validate(dims, f"forest {k}")
        for name in ("tree_offsets", "feature", "threshold", "left", "right", "value"):
            arrays[f"f{k}_{name}"] = getattr(forest, name)
    with atomic_write_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def load_forests(path: str | os.PathLike[str], sha256: str | None = None) -> MaForests:
    """Read and validate a forests file; with ``sha256``, refuse a file whose digest differs."""
    path = Path(path)
    if sha256 is not None:
        digest = file_sha256(path)
        if digest.lower() != sha256.lower():
            raise ValueError(f"{path}: SHA-256 {digest} does not match the expected {sha256}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path}: not a readable Ma forests .npz file ({err})") from err
    version = arrays.get("format_version")
    if version is None or int(version) != FORMAT_VERSION:
        raise ValueError(f"{path}: format_version {version!r}, expected {FORMAT_VERSION}")
    forests = []
    for k, dims in enumerate(FEATURE_DIMS, start=1):
        names = ("tree_offsets", "feature", "threshold", "left", "right", "value")
        missing = [f"f{k}_{n}" for n in names if f"f{k}_{n}" not in arrays]
        if missing:
            raise ValueError(f"{path}: missing arrays {missing}")
        forest = RegressionForest(**{n: arrays[f"f{k}_{n}"] for n in names})
        forest.validate(dims, f"{path} forest {k}")
        forests.append(forest)
    linear = arrays.get("linear")
    if linear is not None and linear.shape != (4,):
        raise ValueError(f"{path}: linear has shape {linear.shape}, expected (4,)")
    return MaForests(forests=tuple(forests), linear=linear)  # type: ignore[arg-type]


def forest_from_sklearn(estimator: Any) -> RegressionForest:
    """Convert a fitted scikit-learn ``RandomForestRegressor`` (single output).

    scikit-learn compares float32-cast inputs with its thresholds, so predictions can differ
    from sklearn's own on values within float32 rounding of a threshold.
    """
    offsets, feats, thrs, lefts, rights, values = [0], [], [], [], [], []
    for tree in (e.tree_ for e in estimator.estimators_):
        leaf = tree.children_left < 0
        feats.append(np.where(leaf, -1, tree.feature))
        thrs.append(np.where(leaf, 0.0, tree.threshold))
        lefts.append(np.where(leaf, -1, tree.children_left))
        rights.append(np.where(leaf, -1, tree.children_right))
        values.append(np.asarray(tree.value, dtype=np.float64).reshape(tree.node_count, -1)[:, 0])
        offsets.append(offsets[-1] + tree.node_count)
    cat = np.concatenate
    return RegressionForest(
        np.array(offsets), cat(feats), cat(thrs), cat(lefts), cat(rights), cat(values)
    )


def _forest_from_regrf(rf: Any) -> RegressionForest:
    """randomforest-matlab ``regRF`` struct: per tree ``t`` the first ``ndtree(t)`` rows of
    ``lDau``/``rDau`` (1-based, 0 at leaves), ``mbest`` (1-based feature), ``upper`` (split value,
    left when ``x <= upper``) and ``avnode`` (leaf prediction)."""
    ndtree = np.atleast_1d(np.asarray(rf.ndtree)).astype(np.int64)
    l_dau = np.asarray(rf.lDau).reshape(-1, ndtree.size, order="F")
    r_dau = np.asarray(rf.rDau).reshape(-1, ndtree.size, order="F")
    mbest = np.asarray(rf.mbest).reshape(-1, ndtree.size, order="F")
    upper = np.asarray(rf.upper, dtype=np.float64).reshape(-1, ndtree.size, order="F")
    avnode = np.asarray(rf.avnode, dtype=np.float64).reshape(-1, ndtree.size, order="F")
    if np.any(np.asarray(getattr(rf, "coef", 0)) != 0):
        raise ValueError("regRF bias correction (coef != 0) is not supported")
    offsets, feats, thrs, lefts, rights, values = [0], [], [], [], [], []
    for t, n in enumerate(ndtree):
        leaf = l_dau[:n, t] == 0
        feats.append(np.where(leaf, -1, mbest[:n, t].astype(np.int64) - 1))
        thrs.append(np.where(leaf, 0.0, upper[:n, t]))
        lefts.append(np.where(leaf, -1, l_dau[:n, t].astype(np.int64) - 1))
        rights.append(np.where(leaf, -1, r_dau[:n, t].astype(np.int64) - 1))
        values.append(avnode[:n, t])
        offsets.append(offsets[-1] + int(n))
    cat = np.concatenate
    return RegressionForest(
        np.array(offsets), cat(feats), cat(thrs), cat(lefts), cat(rights), cat(values)
    )


def forests_from_matlab(path: str | os.PathLike[str]) -> MaForests:
    """Read the authors' ``model.mat`` (``model.rf{1..3}``, ``model.linear``) with SciPy (no pickle)."""
    from scipy.io import loadmat  # SciPy's io is slow to import; only converting .mat needs it

    mat = loadmat(str(path), squeeze_me=True, struct_as_record=False)
    if "model" not in mat:
        raise ValueError(f"{path}: no variable 'model' (expected sr-metric's model.mat)")
    model = mat["model"]
    rfs = list(np.atleast_1d(model.rf))
    if len(rfs) != 3:
        raise ValueError(f"{path}: model.rf holds {len(rfs)} forests, expected 3")
    forests = tuple(_forest_from_regrf(rf) for rf in rfs)
    for k, (forest, dims) in enumerate(zip(forests, FEATURE_DIMS, strict=True), start=1):
        forest.validate(dims, f"{path} forest {k}")
    linear = np.asarray(model.linear, dtype=np.float64).reshape(4)
    return MaForests(forests=forests, linear=linear)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m esrgan_lit.metrics.ma_forest")
    sub = parser.add_subparsers(dest="cmd", required=True)
    conv = sub.add_parser("convert", help="convert the authors' model.mat to ma_forests.npz")
    conv.add_argument("src", help="sr-metric model.mat")
    conv.add_argument("dst", help="output .npz (e.g. ~/.cache/esrgan_lit/ma_forests.npz)")
    args = parser.parse_args(argv)
    dst = Path(args.dst).expanduser()
    save_forests(dst, forests_from_matlab(args.src))
    print(f"wrote {dst} (sha256 {file_sha256(dst)})")


if __name__ == "__main__":
    main()

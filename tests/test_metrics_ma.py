"""Ma et al. (2017) score and the Perceptual Index.

Oracles: ``../shared/data/metrics/ma`` holds what the authors' MATLAB code computed (features
f1/f2/f3, forest outputs s, Ma, NIQE) for seven PIRM-form Y images, and the final linear stage.
The forests themselves are not available, so the regression plumbing is checked with small
forests built here whose predictions are worked out by hand.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from esrgan_lit.metrics.errors import MetricUnavailableError
from esrgan_lit.metrics.ma import (
    MA_LINEAR,
    MA_MODEL_ENV,
    MaScore,
    PerceptualIndex,
    ma_from_scores,
)
from esrgan_lit.metrics.ma_features import (
    block_dct_features,
    ggd_shape,
    ma_features,
    patch_singular_values,
    spatial_pyramid,
)
from esrgan_lit.metrics.ma_forest import (
    MaForests,
    RegressionForest,
    file_sha256,
    forest_from_sklearn,
    forests_from_matlab,
    load_forests,
    main,
    save_forests,
)
from esrgan_lit.ops.color import quantize_uint8, rgb_to_y

MA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "metrics" / "ma"
needs_oracle = pytest.mark.skipif(
    not (MA_DIR / "ma_reference.npz").is_file(), reason="../shared/data/metrics/ma not present"
)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Small per-image ops: on a shared 2-core machine extra threads only spin (about 3x slower)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# Measured max relative errors vs the oracle (all seven images): f1 1.5e-9, f2 9.7e-13, f3 1.8e-13.
RTOL = {"f1": 2e-8, "f2": 1e-10, "f3": 1e-10}


@functools.cache
def _reference() -> dict[str, np.ndarray]:
    with np.load(MA_DIR / "ma_reference.npz", allow_pickle=False) as d:
        return {k: d[k] for k in d.files}


@functools.cache
def _y(name: str) -> np.ndarray:
    from PIL import Image

    return np.array(Image.open(MA_DIR / name))


# f2 (the steerable pyramid, ~2 CPU-s an image) is checked on three images by default, all seven
# with ESRGAN_LIT_MA_ALL_ORACLE=1; f1 and f3 (cheap) always on all seven.
F2_IMAGES = ("chelsea_y.png", "peppers_y.png", "coffee_x4bicubic_y.png")


@functools.cache
def _features(name: str) -> dict[str, np.ndarray]:
    if name in F2_IMAGES or os.environ.get("ESRGAN_LIT_MA_ALL_ORACLE") == "1":
        return dict(zip(("f1", "f2", "f3"), ma_features(_y(name)), strict=True))
    levels = spatial_pyramid(_y(name).astype(np.float64))
    return {
        "f1": np.concatenate([block_dct_features(level) for level in levels]),
        "f3": np.concatenate([patch_singular_values(level) for level in levels]),
    }


def _names() -> list[str]:
    return (
        [str(n) for n in _reference()["names"]] if (MA_DIR / "ma_reference.npz").is_file() else []
    )


# ---------------------------------------------------------------- features vs the MATLAB oracle


@needs_oracle
@pytest.mark.parametrize("name", _names() or ["absent"])
def test_features_match_matlab_release(name: str) -> None:
    ref = _reference()
    row = [str(n) for n in ref["names"]].index(name)
    for key, value in _features(name).items():
        assert value.shape == ref[key][row].shape
        np.testing.assert_allclose(value, ref[key][row], rtol=RTOL[key], atol=0, err_msg=key)


def test_ggd_shape_recovers_gaussian_and_laplacian() -> None:
    rng = np.random.default_rng(0)
    assert abs(float(ggd_shape(rng.standard_normal(200_000))) - 2.0) < 0.03
    assert abs(float(ggd_shape(rng.laplace(size=200_000))) - 1.0) < 0.02


def test_features_reject_tiny_image() -> None:
    with pytest.raises(ValueError, match="64x64"):
        ma_features(np.zeros((40, 200)))


# ------------------------------------------------------------------------------ linear stage


@needs_oracle
def test_linear_stage_matches_oracle() -> None:
    ref = _reference()
    np.testing.assert_allclose(ma_from_scores(ref["s"]), ref["ma"], rtol=0, atol=1e-12)
    weights = json.loads((MA_DIR / "ma_linear_weights.json").read_text())["B"]
    assert tuple(weights) == MA_LINEAR


# ------------------------------------------------------------------------- forest plumbing


def _hand_forest() -> RegressionForest:
    """Tree A: x0 <= 0.5 -> 1, else (x2 <= -1 -> 2, else 3). Tree B: a single leaf 10."""
    return RegressionForest(
        tree_offsets=[0, 5, 6],
        feature=[0, -1, 2, -1, -1, -1],
        threshold=[0.5, 0, -1.0, 0, 0, 0],
        left=[1, -1, 3, -1, -1, -1],
        right=[2, -1, 4, -1, -1, -1],
        value=[0.0, 1.0, 0.0, 2.0, 3.0, 10.0],
    )


def test_forest_prediction_by_hand() -> None:
    x = np.array([[0.5, 9, 9], [0.6, 9, -1.0], [0.6, 9, -0.5], [-3, 0, 0]])
    np.testing.assert_array_equal(_hand_forest().predict(x), [5.5, 6.0, 6.5, 5.5])


def _walk(forest: RegressionForest, x: np.ndarray) -> float:
    """Reference: one tree at a time, one node at a time."""
    out = []
    for t in range(forest.num_trees):
        base, k = forest.tree_offsets[t], 0
        while forest.feature[base + k] >= 0:
            go_left = x[forest.feature[base + k]] <= forest.threshold[base + k]
            k = forest.left[base + k] if go_left else forest.right[base + k]
        out.append(forest.value[base + k])
    return float(np.mean(out))


def _random_forest(rng: np.random.Generator, n_trees: int, n_feat: int) -> RegressionForest:
    """Random trees grown breadth-first (children after parents), leaves at random depths."""
    offsets, feats, thrs, lefts, rights, values = [0], [], [], [], [], []
    for _ in range(n_trees):
        f, th, le, ri, va = [], [], [], [], []
        queue = [0]
        f.append(-1), th.append(0.0), le.append(-1), ri.append(-1), va.append(0.0)
        while queue:
            k = queue.pop(0)
            if len(f) < 30 and rng.random() < 0.7:
                f[k], th[k] = int(rng.integers(n_feat)), float(rng.normal())
                le[k], ri[k] = len(f), len(f) + 1
                for _ in range(2):
                    f.append(-1), th.append(0.0), le.append(-1), ri.append(-1)
                    va.append(float(rng.normal()))
                queue += [le[k], ri[k]]
        offsets.append(offsets[-1] + len(f))
        feats += f
        thrs += th
        lefts += le
        rights += ri
        values += va
    return RegressionForest(np.array(offsets), feats, thrs, lefts, rights, values)


def test_vectorised_prediction_equals_tree_walk() -> None:
    rng = np.random.default_rng(1)
    forest = _random_forest(rng, 40, 18)
    forest.validate(18)
    x = rng.normal(size=(25, 18))
    np.testing.assert_allclose(forest.predict(x), [_walk(forest, r) for r in x], rtol=0, atol=1e-15)


def _stub_model(linear: np.ndarray | None = None) -> MaForests:
    rng = np.random.default_rng(2)
    forests = tuple(_random_forest(rng, 5, d) for d in (18, 45, 75))
    return MaForests(forests=forests, linear=linear)  # type: ignore[arg-type]


def test_file_round_trip_and_checksum(tmp_path: Path) -> None:
    model = _stub_model(np.array([0.1, 0.2, 0.3, 0.4]))
    path = tmp_path / "ma_forests.npz"
    save_forests(path, model)
    digest = file_sha256(path)
    loaded = load_forests(path, sha256=digest)
    np.testing.assert_array_equal(loaded.linear, [0.1, 0.2, 0.3, 0.4])
    x = np.random.default_rng(3).normal(size=(4, 75))
    for a, b, d in zip(model.forests, loaded.forests, (18, 45, 75), strict=True):
        np.testing.assert_array_equal(a.predict(x[:, :d]), b.predict(x[:, :d]))
    with pytest.raises(ValueError, match="SHA-256"):
        load_forests(path, sha256="0" * 64)


def test_bad_files_are_refused_with_the_path(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    save_forests(path, _stub_model())
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(ValueError, match=r"m\.npz"):
        load_forests(path)
    arrays = {"format_version": np.array(1), "f1_value": np.array([object()], dtype=object)}
    np.savez(tmp_path / "pickled.npz", **arrays)
    with pytest.raises(ValueError, match=r"pickled\.npz"):
        load_forests(tmp_path / "pickled.npz")
    bad = _hand_forest()
    bad.left[0] = 0  # a cycle: the walk would never end
    with pytest.raises(ValueError, match="left child"):
        save_forests(tmp_path / "cycle.npz", MaForests((bad, bad, bad)))


def test_matlab_model_converter(tmp_path: Path) -> None:
    """A model.mat in randomforest-matlab's regRF layout (1-based, column per tree, padded)."""
    from scipy.io import savemat

    nr = 7  # rows per tree column (nrnodes), only the first ndtree are used
    l_dau = np.zeros((nr, 2))
    r_dau = np.zeros((nr, 2))
    mbest = np.zeros((nr, 2))
    upper = np.zeros((nr, 2))
    avnode = np.zeros((nr, 2))
    # tree 1 = the hand tree A (1-based); tree 2 = a single leaf 10
    l_dau[:5, 0], r_dau[:5, 0] = [2, 0, 4, 0, 0], [3, 0, 5, 0, 0]
    mbest[:5, 0], upper[:5, 0] = [1, 0, 3, 0, 0], [0.5, 0, -1.0, 0, 0]
    avnode[:5, 0], avnode[0, 1] = [0, 1, 0, 2, 3], 10.0
    rf = {
        "lDau": l_dau, "rDau": r_dau, "mbest": mbest, "upper": upper, "avnode": avnode,
        "ndtree": np.array([5.0, 1.0]), "ntree": 2.0, "nrnodes": float(nr), "coef": np.zeros(2),
    }  # fmt: skip
    cells = np.empty((1, 3), dtype=object)
    for i in range(3):
        cells[0, i] = rf
    src = tmp_path / "model.mat"
    savemat(src, {"model": {"rf": cells, "linear": np.array(MA_LINEAR).reshape(4, 1)}})
    model = forests_from_matlab(src)
    x = np.zeros((3, 75))
    x[:, 0], x[:, 2] = [0.5, 0.6, 0.6], [9, -1.0, -0.5]
    for forest, d in zip(model.forests, (18, 45, 75), strict=True):
        np.testing.assert_array_equal(forest.predict(x[:, :d]), [5.5, 6.0, 6.5])
    np.testing.assert_array_equal(model.linear, MA_LINEAR)
    dst = tmp_path / "cache" / "ma_forests.npz"
    main(["convert", str(src), str(dst)])
    np.testing.assert_array_equal(load_forests(dst).forests[2].predict(x), [5.5, 6.0, 6.5])


def test_sklearn_converter_layout() -> None:
    """scikit-learn's tree_ arrays (children -1 at leaves, value (nodes, 1, 1))."""
    tree = SimpleNamespace(
        node_count=5,
        children_left=np.array([1, -1, 3, -1, -1]),
        children_right=np.array([2, -1, 4, -1, -1]),
        feature=np.array([0, -2, 2, -2, -2]),
        threshold=np.array([0.5, -2.0, -1.0, -2.0, -2.0]),
        value=np.array([0.0, 1.0, 0.0, 2.0, 3.0]).reshape(5, 1, 1),
    )
    leaf = SimpleNamespace(
        node_count=1,
        children_left=np.array([-1]),
        children_right=np.array([-1]),
        feature=np.array([-2]),
        threshold=np.array([-2.0]),
        value=np.array([[[10.0]]]),
    )
    forest = forest_from_sklearn(
        SimpleNamespace(estimators_=[SimpleNamespace(tree_=tree), SimpleNamespace(tree_=leaf)])
    )
    forest.validate(3)
    np.testing.assert_array_equal(forest.predict(np.array([[0.6, 0, -1.0]])), [6.0])


# -------------------------------------------------------------- metrics and their availability


def test_unavailable_without_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MA_MODEL_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for cls in (MaScore, PerceptualIndex):
        with pytest.raises(MetricUnavailableError) as info:
            cls()
        msg = str(info.value)
        assert "\n" not in msg
        assert str(tmp_path / "cache" / "esrgan_lit" / "ma_forests.npz") in msg
        assert "esrgan_lit.metrics.ma_forest convert" in msg
    with pytest.raises(MetricUnavailableError, match=r"nowhere\.npz"):
        MaScore(model_path=tmp_path / "nowhere.npz")


def test_model_found_through_env_and_checksum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "forests.npz"
    save_forests(path, _stub_model())
    monkeypatch.setenv(MA_MODEL_ENV, str(path))
    assert MaScore(sha256=file_sha256(path)).model.forests[0].num_trees == 5
    with pytest.raises(MetricUnavailableError, match="SHA-256"):
        MaScore(sha256="f" * 64)


def _constant_model(values: tuple[float, float, float]) -> MaForests:
    forests = tuple(RegressionForest([0, 1], [-1], [0.0], [-1], [-1], [v]) for v in values)
    return MaForests(forests=forests)  # type: ignore[arg-type]


def _stump(feature: int, threshold: float, left: float, right: float) -> RegressionForest:
    return RegressionForest(
        [0, 3], [feature, -1, -1], [threshold, 0, 0], [1, -1, -1], [2, -1, -1], [0, left, right]
    )


@needs_oracle
def test_perceptual_index_end_to_end_with_stumps() -> None:
    """Image -> Y -> features -> forests -> linear stage -> PI, with outputs worked out by hand.

    Each forest is a stump on one feature of its group with its threshold 1e-6 (relative) away
    from chelsea's oracle value, so only the right feature, in the right group, reaching the
    right forest gives the expected leaf. NIQE of chelsea_y.png is 2.68931 in the MATLAB release.
    """
    ref = _reference()
    row = [str(n) for n in ref["names"]].index("chelsea_y.png")
    picks = (("f1", 1, 1 + 1e-6), ("f2", 20, 1 - 1e-6), ("f3", 0, 1 + 1e-6))
    stumps = [
        _stump(j, float(ref[key][row, j]) * m, 4.0 + k, 9.0 - k)
        for k, (key, j, m) in enumerate(picks)
    ]
    s = np.array([4.0, 8.0, 6.0])  # left (<= threshold), right, left
    ma = float(ma_from_scores(s)[0])
    niqe = float(ref["niqe"][row])
    pi = PerceptualIndex(model=MaForests(tuple(stumps)), crop_border=0)  # type: ignore[arg-type]
    # the file is already PIRM form (Y, 4 pixels shaved): score it as grey, no crop
    pi.update(torch.from_numpy(_y("chelsea_y.png")).double().div(255)[None, None])
    parts = pi.compute_parts()
    assert abs(float(parts["ma"]) - ma) < 1e-12
    assert abs(float(parts["niqe"]) - niqe) < 1e-3
    assert abs(float(pi.compute()) - 0.5 * ((10 - ma) + niqe)) < 1e-3
    assert (
        abs(float(pi.compute()) - 0.5 * ((10 - float(parts["ma"])) + float(parts["niqe"]))) < 1e-12
    )


def _constant_model(values: tuple[float, float, float]) -> MaForests:
    forests = tuple(RegressionForest([0, 1], [-1], [0.0], [-1], [-1], [v]) for v in values)
    return MaForests(forests=forests)  # type: ignore[arg-type]


def test_mascore_rgb_crop_and_ddp_style_merge() -> None:
    """RGB is scored on its uint8 Y (crop 4); sum/count states merge like two DDP ranks."""
    x = torch.rand(3, 3, 112, 112, generator=torch.Generator().manual_seed(0))
    y = quantize_uint8(x)
    y = rgb_to_y(y)[..., 4:-4, 4:-4]
    f3_first = [float(ma_features(img[0].numpy())[2][0]) for img in y]
    # forest 3 splits the image with the smallest f3[0] (of its cropped Y) from the other two
    thr = float(np.mean(sorted(f3_first)[:2]))
    model = MaForests(
        (
            _constant_model((1, 1, 1)).forests[0],
            _constant_model((2, 2, 2)).forests[1],
            _stump(0, thr, 3.0, 5.0),
        )
    )  # type: ignore[arg-type]
    s3 = np.where(np.array(f3_first) <= thr, 3.0, 5.0)
    expected = ma_from_scores(np.stack([np.ones(3), 2 * np.ones(3), s3], axis=1)).mean()
    a, b = MaScore(model=model), MaScore(model=model)
    a.update(x[:2])
    b.update(x[2:])
    a.merge_state(b)
    assert int(a.count) == 3
    assert abs(float(a.compute()) - expected) < 1e-12

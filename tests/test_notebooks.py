"""The notebooks run headless, top to bottom, on tiny settings; stored copies carry no outputs.

Each notebook's cell tagged ``parameters`` is replaced with tiny settings before it runs in a
fresh ``python3`` kernel (this interpreter's), in a temporary working directory, with the Agg
backend, one CPU thread and an empty torch hub cache (so nothing is downloaded: the GAN stage
runs without VGG19 weights, as the notebooks say). Any failing cell fails the test.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("skimage")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CELL_TIMEOUT = 300  # seconds per cell; a cell that hangs fails the test

# Tiny RRDBNet and batches for the in-notebook training runs (a few seconds each).
TINY = [
    "model.generator.num_feat=8",
    "model.generator.num_block=1",
    "model.generator.num_grow_ch=4",
    "data.batch_size=2",
    "data.gt_size=32",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]

PARAMS = {
    "01_quickstart.ipynb": {
        "CHECKPOINT": None,
        "DEMO_STEPS": 4,
        "DEMO_OVERRIDES": TINY,
        "PHOTO": "coffee",
        "OUTPUT_DIR": "out01",
        "DEVICE": "cpu",
        "TILE": 48,
    },
    "02_training.ipynb": {
        "MAX_STEPS": 6,
        "VAL_EVERY": 3,
        "EXPERIMENT": "demo",
        "OVERRIDES": TINY,
        "OUTPUT_DIR": "out02",
    },
    "03_perception_distortion.ipynb": {
        "PSNR_CHECKPOINT": None,
        "GAN_CHECKPOINT": None,
        "PSNR_STEPS": 3,
        "GAN_STEPS": 2,
        "TRAIN_OVERRIDES": TINY,
        "GAN_OVERRIDES": ["model.discriminator.num_feat=4"],
        "VGG19_WEIGHTS": None,
        "ALPHAS": [0.0, 0.5, 1.0],
        "OUTPUT_DIR": "out03",
        "DEVICE": "cpu",
    },
}

# Files each notebook must leave in its OUTPUT_DIR (relative to the working directory).
PRODUCTS = {
    "01_quickstart.ipynb": ["out01/comparison.png", "out01/coffee_x4.png"],
    "02_training.ipynb": [
        "out02/curves.png",
        "out02/generator.safetensors",
        "out02/metrics.json",
        "out02/csv/metrics.csv",
    ],
    "03_perception_distortion.ipynb": [
        "out03/tradeoff.png",
        "out03/alphas.png",
        "out03/psnr/generator.safetensors",
        "out03/gan/generator.safetensors",
    ],
}

# Text each notebook must print (its headline result).
EXPECTED_TEXT = {
    "01_quickstart.ipynb": ["PSNR-Y (dB)", "bicubic", "ESRGAN x4"],
    "02_training.ipynb": ["iterations: 6", "final validation:", "bicubic on sample"],
    "03_perception_distortion.ipynb": ["WITHOUT the perceptual loss", "a=0.5", "bicubic"],
}


def _notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def _parameters_cells(nb) -> list:
    return [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]


def test_every_notebook_is_exercised() -> None:
    names = {p.name for p in _notebooks()}
    assert names == set(PARAMS), f"notebooks without test settings: {names ^ set(PARAMS)}"


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.stem)
def test_stored_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {i} has stored outputs"
            assert cell.execution_count is None, f"{path.name} cell {i} has an execution count"
    params = _parameters_cells(nb)
    assert len(params) == 1 and params[0].cell_type == "code", (
        f"{path.name}: expected exactly one code cell tagged 'parameters'"
    )
    assert nb.cells.index(params[0]) == next(
        i for i, c in enumerate(nb.cells) if c.cell_type == "code"
    ), f"{path.name}: the parameters cell must be the first code cell"
    # every name the test sets exists in the stored parameters cell (a renamed one would be ignored)
    stored = {line.split("=")[0].strip() for line in params[0].source.splitlines() if "=" in line}
    assert set(PARAMS[path.name]) <= stored, set(PARAMS[path.name]) - stored


def _inject(nb, values: dict, data_dir: Path) -> None:
    cell = _parameters_cells(nb)[0]
    values = {**values, "DATA_DIR": str(data_dir)}
    cell.source = "\n".join(f"{k} = {v!r}" for k, v in values.items())


def _text(nb) -> str:
    chunks = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                chunks.append(out.text)
            elif "data" in out and "text/plain" in out.data:
                chunks.append(out.data["text/plain"])
    return "".join(chunks)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """One sample split shared by all notebooks (built by the first one that needs it)."""
    return tmp_path_factory.mktemp("nbdata")


@pytest.fixture
def kernel_env(tmp_path, monkeypatch) -> None:
    """The kernel inherits this environment: headless plots, one thread, no downloads."""
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MKL_NUM_THREADS", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_notebook_runs(name: str, tmp_path: Path, data_dir: Path, kernel_env) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    _inject(nb, PARAMS[name], data_dir)
    work = tmp_path / "work"
    work.mkdir()
    client = nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(work)}},
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError naming the cell on the first failure
    elapsed = time.perf_counter() - start
    print(f"{name}: {elapsed:.1f} s")

    for rel in PRODUCTS[name]:
        assert (work / rel).is_file(), f"{name} did not write {rel}"
    text = _text(nb)
    for snippet in EXPECTED_TEXT[name]:
        assert snippet in text, f"{name}: expected {snippet!r} in its printed output"
    if name == "02_training.ipynb":
        saved = json.loads((work / "out02" / "metrics.json").read_text())
        assert list(saved) == ["sample"] and saved["sample"]["psnr_y"] > 5.0
        header = (work / "out02/csv/metrics.csv").read_text().splitlines()[0]
        assert "train/l_pix" in header and "val/sample/psnr_y" in header

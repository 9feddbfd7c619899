"""The notebooks run headless, top to bottom, on tiny settings; stored copies carry no outputs.

Each notebook's cell tagged ``parameters`` is replaced with tiny settings before it runs in a
fresh kernel running this interpreter, in a temporary working directory, with the Agg
backend, one CPU thread and an empty torch hub cache (so nothing is downloaded: the GAN stage
runs without VGG19 weights, as the notebooks say). Any failing cell fails the test.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("skimage")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CELL_TIMEOUT = 300  # seconds per cell; a cell that hangs fails the test
KERNEL = (
    "esrgan-lit-notebook-test"  # a kernelspec for this interpreter, found first on JUPYTER_PATH
)

# Tiny RRDBNet and batches for the in-notebook training runs (a few seconds each).
TINY = [
    "model.generator.num_feat=8",
    "model.generator.num_block=1",
    "model.generator.num_grow_ch=4",
    "data.batch_size=2",
    "data.gt_size=32",
    # no progress-bar overrides here: the notebooks' own settings must keep their outputs clean
    "callbacks.ema.decay=0.5",  # after a few steps the EMA weights move off their near-flat init
]
CHECKPOINT = "@checkpoint@"  # replaced by a BasicSR-layout .pth the test writes

# case id -> (notebook, parameters, files it must write (globs), text it must print)
CASES: dict[str, tuple[str, dict, list[str], list[str]]] = {
    "quickstart_trains_demo": (
        "01_quickstart.ipynb",
        {
            "CHECKPOINT": None,
            "DEMO_STEPS": 4,
            "DEMO_OVERRIDES": TINY,
            "PHOTO": "coffee",
            "OUTPUT_DIR": "out",
            "DEVICE": "cpu",
            "TILE": 48,  # the 150x100 input goes through the tiled path
        },
        ["out/comparison.png", "out/coffee_x4.png", "out/demo_run/generator.safetensors"],
        ["PSNR-Y (dB)", "bicubic", "demo RRDBNet x4", "num_feat=8, num_block=1"],
    ),
    "quickstart_loads_checkpoint": (
        "01_quickstart.ipynb",
        {
            "CHECKPOINT": CHECKPOINT,
            "DEMO_STEPS": 4,
            "DEMO_OVERRIDES": TINY,
            "PHOTO": "rocket",  # 427x640: cropped to a multiple of 4 first
            "OUTPUT_DIR": "out",
            "DEVICE": "cpu",
            "TILE": 0,
        },
        ["out/comparison.png", "out/rocket_x4.png"],
        ["ESRGAN x4", "num_feat=8, num_block=1, num_grow_ch=6", "HR 640x424"],
    ),
    "training": (
        "02_training.ipynb",
        {
            "MAX_STEPS": 6,
            "VAL_EVERY": 3,
            "EXPERIMENT": "demo",
            "OVERRIDES": TINY,
            "OUTPUT_DIR": "out",
        },
        # one timestamped run directory under OUTPUT_DIR
        ["out/*/curves.png", "out/*/generator.safetensors", "out/*/csv/metrics.csv"],
        ["iterations: 6", "final validation:", "bicubic on sample"],
    ),
    "perception_distortion": (
        "03_perception_distortion.ipynb",
        {
            "PSNR_CHECKPOINT": None,
            "GAN_CHECKPOINT": None,
            "PSNR_STEPS": 8,
            "GAN_STEPS": 3,
            "TRAIN_OVERRIDES": TINY,
            "GAN_OVERRIDES": ["model.discriminator.num_feat=4"],
            "VGG19_WEIGHTS": None,
            "ALPHAS": [0.0, 0.5, 1.0],
            "OUTPUT_DIR": "out",
            "DEVICE": "cpu",
        },
        [
            "out/tradeoff.png",
            "out/alphas.png",
            "out/psnr/generator.safetensors",
            "out/gan/generator.safetensors",
        ],
        ["WITHOUT the perceptual loss", "a=0", "a=0.5", "a=1", "bicubic"],
    ),
}


def _notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def _parameters_cells(nb) -> list:
    return [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]


def test_every_notebook_is_exercised() -> None:
    names = {p.name for p in _notebooks()}
    run = {nb for nb, *_ in CASES.values()}
    assert names == run, (
        f"notebooks without a test case (or cases without a notebook): {names ^ run}"
    )


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
    first_code = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    assert nb.cells.index(params[0]) == first_code, f"{path.name}: parameters must come first"
    # every name a test case sets exists in the stored cell (a renamed one would be ignored)
    stored = {line.split("=")[0].strip() for line in params[0].source.splitlines() if "=" in line}
    for notebook, values, *_ in CASES.values():
        if notebook == path.name:
            assert set(values) <= stored, set(values) - stored


def _noise(nb) -> list[str]:
    """Outputs a reader would see as clutter: empty ones (what a progress bar leaves per refresh
    in a notebook), widgets, and Lightning's adverts."""
    found = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            text = out.get("text", "") if out.output_type == "stream" else ""
            data = out.get("data", {})
            if out.output_type == "stream" and not text.strip():
                found.append(f"cell {i}: empty {out.name} output")
            elif "application/vnd.jupyter.widget-view+json" in data:
                found.append(f"cell {i}: widget output")
            elif out.output_type in ("display_data", "execute_result") and not any(
                str(v).strip() for v in data.values()
            ):
                found.append(f"cell {i}: empty display output")
            elif "Tip:" in text or "litlogger" in text or "\r" in text:
                found.append(f"cell {i}: {text.strip()[:80]!r}")
    return found


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


@pytest.fixture(scope="module")
def jupyter_path(tmp_path_factory) -> Path:
    """A kernelspec running this interpreter (not whatever "python3" a user dir defines)."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": KERNEL, "language": "python"})
    )
    return root


@pytest.fixture
def kernel_env(tmp_path, monkeypatch, jupyter_path) -> None:
    """The kernel inherits this environment: headless plots, one thread, no downloads."""
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MKL_NUM_THREADS", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _basicsr_checkpoint(path: Path) -> Path:
    """A random tiny RRDBNet (gc 6, not the usual 32) in BasicSR's {"params_ema": ...} layout."""
    from esrgan_lit.archs import RRDBNet
    from esrgan_lit.weights import save_generator

    save_generator(RRDBNet(num_feat=8, num_block=1, num_grow_ch=6), path)
    return path


@pytest.mark.parametrize("case", sorted(CASES))
def test_notebook_runs(case: str, tmp_path: Path, data_dir: Path, kernel_env) -> None:
    name, values, products, expected = CASES[case]
    if values.get("CHECKPOINT") == CHECKPOINT:
        values = {**values, "CHECKPOINT": str(_basicsr_checkpoint(tmp_path / "RRDB_x4.pth"))}
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    cell = _parameters_cells(nb)[0]
    cell.source = "\n".join(
        f"{k} = {v!r}" for k, v in {**values, "DATA_DIR": str(data_dir)}.items()
    )
    work = tmp_path / "work"
    work.mkdir()
    client = nbclient.NotebookClient(
        nb, timeout=CELL_TIMEOUT, kernel_name=KERNEL, resources={"metadata": {"path": str(work)}}
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError naming the cell on the first failure
    print(f"{case} ({name}): {time.perf_counter() - start:.1f} s")

    for pattern in products:
        found = [p for p in work.glob(pattern) if p.is_file()]
        assert len(found) == 1, f"{name}: expected one file {pattern}, found {found}"
    text = _text(nb)
    noise = _noise(nb)
    assert not noise, f"{name}: noisy outputs:\n" + "\n".join(noise)
    for snippet in expected:
        assert snippet in text, f"{name}: expected {snippet!r} in its printed output"
    if case == "training":
        (run_dir,) = (work / "out").iterdir()
        saved = json.loads((run_dir / "metrics.json").read_text())
        assert list(saved) == ["sample"] and 5.0 < saved["sample"]["psnr_y"] < 60.0
        header = (run_dir / "csv" / "metrics.csv").read_text().splitlines()[0]
        assert "train/l_pix" in header and "val/sample/psnr_y" in header


def test_quick_settings_are_the_demo_settings() -> None:
    """The notebooks' default training lengths are ``make demo``'s (verified to beat bicubic with
    natural colours), not shorter ones that look broken (400 steps: far below bicubic, tinted)."""
    from omegaconf import OmegaConf

    from esrgan_lit.config import config_dir

    demo = OmegaConf.load(config_dir() / "experiment" / "demo.yaml").trainer.max_steps
    allowed = {"DEMO_STEPS": (None,), "PSNR_STEPS": (None,), "GAN_STEPS": (None,)}
    allowed["MAX_STEPS"] = (None, demo)
    for path in _notebooks():
        cell = _parameters_cells(nbformat.read(path, as_version=4))[0]
        values: dict = {}
        exec(compile(cell.source, str(path), "exec"), {}, values)  # literals only
        for key, ok in allowed.items():
            if key in values:
                assert values[key] in ok, f"{path.name}: {key} = {values[key]!r}, expected {ok}"

"""A non-editable install must carry the Hydra configs and the metric resources."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def unpacked_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(REPO),
        ],
        check=True,
    )
    (wheel,) = out.glob("esrgan_lit-*.whl")
    site = out / "site"
    zipfile.ZipFile(wheel).extractall(site)
    return site


def test_wheel_carries_configs_and_resources(unpacked_wheel: Path) -> None:
    pkg = unpacked_wheel / "esrgan_lit"
    assert (pkg / "conf" / "train.yaml").is_file()
    assert (pkg / "conf" / "evaluate.yaml").is_file()
    assert (pkg / "conf" / "experiment" / "psnr_pretrain.yaml").is_file()
    assert (pkg / "resources" / "niqe_pris_params.npz").is_file()
    assert (pkg / "py.typed").is_file()


def test_installed_package_composes_configs_from_anywhere(
    unpacked_wheel: Path, tmp_path: Path
) -> None:
    code = (
        "from hydra import compose, initialize_config_dir\n"
        "from esrgan_lit.config import config_dir\n"
        "d = config_dir()\n"
        "with initialize_config_dir(config_dir=str(d), version_base='1.3'):\n"
        "    cfg = compose('train', overrides=['experiment=psnr_pretrain'])\n"
        "print(d)\n"
        "print(cfg.model._target_)\n"
    )
    # Run from an unrelated directory with only the unpacked wheel first on the path.
    res = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"PYTHONPATH": str(unpacked_wheel), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    conf_dir, target = res.stdout.split()[-2:]
    assert Path(conf_dir).is_relative_to(unpacked_wheel)
    assert target.startswith("esrgan_lit.lit.")

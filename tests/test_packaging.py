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


# ---------------------------------------------------------------------------------------------
# Metadata: one version, a LICENSE that matches, every import declared


def _pyproject() -> dict:
    import tomllib

    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def test_version_lives_in_one_place() -> None:
    import esrgan_lit

    project = _pyproject()["project"]
    assert "version" not in project and "version" in project.get("dynamic", [])
    attr = _pyproject()["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "esrgan_lit.__version__" and esrgan_lit.__version__.count(".") >= 2


def test_license_file_matches_the_declared_license() -> None:
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert _pyproject()["project"]["license"] == {"text": "Apache-2.0"}
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text and len(text.splitlines()) > 150


def test_wheel_carries_license_and_version(unpacked_wheel: Path) -> None:
    import esrgan_lit

    (info,) = unpacked_wheel.glob("esrgan_lit-*.dist-info")
    assert info.name == f"esrgan_lit-{esrgan_lit.__version__}.dist-info"
    assert list(info.rglob("LICENSE")), "LICENSE missing from the wheel"
    meta = (info / "METADATA").read_text(encoding="utf-8")
    for label in ("Documentation", "Source", "Issues"):
        assert f"Project-URL: {label}, https://" in meta


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level module -> files importing it, for every non-stdlib, non-package import in src."""
    import ast

    found: dict[str, set[str]] = {}
    for path in (REPO / "src" / "esrgan_lit").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("esrgan_lit", "__future__"):
                    found.setdefault(top, set()).add(path.name)
    return found


def test_every_import_is_a_declared_dependency() -> None:
    import re
    from importlib.metadata import packages_distributions

    project = _pyproject()["project"]
    specs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        specs += extra
    declared = {re.split(r"[<>=!~\[; ]", s, maxsplit=1)[0].lower().replace("_", "-") for s in specs}
    dists = packages_distributions()
    undeclared = {}
    for module, files in _third_party_imports().items():
        names = {d.lower().replace("_", "-") for d in dists.get(module, [module])}
        if not names & declared:
            undeclared[module] = sorted(files)
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"


def test_plugin_guard_skips_when_the_extra_is_absent(monkeypatch) -> None:
    import _extras

    monkeypatch.setitem(
        _extras.PLUGIN_OVERRIDES, "hydra/launcher=nowhere", ("hydra_plugins.no_such", "nowhere")
    )
    with pytest.raises(pytest.skip.Exception, match=r"esrgan-lit\[nowhere\]"):
        _extras.skip_without_plugins(["experiment=demo", "hydra/launcher=nowhere"])
    _extras.skip_without_plugins(["experiment=demo"])  # nothing needed: no skip

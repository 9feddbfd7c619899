"""Dependency floors in pyproject.toml are at least what the code needs (issue 12, item 4).

NEEDS is the table "feature the code uses -> first release that has it"; a floor below it would
let pip install a version on which that feature fails at run time.
"""

from __future__ import annotations

import inspect
import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

tomllib = pytest.importorskip("tomllib")

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"

# distribution -> (minimum version, the feature that needs it, where it was introduced)
NEEDS: dict[str, tuple[str, str]] = {
    "lightning": ("2.6", "Trainer.fit(..., weights_only=True) in train.py (Lightning PR #21072)"),
    "torchvision": ("0.20", "decode_png of 16-bit PNG to torch.uint16 (pytorch/vision PR #8524)"),
    "torch": ("2.5", "the torch torchvision 0.20 is built against (torch.uint16 itself: 2.3)"),
    "torchmetrics": ("1.2", "Metric.update_count, sum/count states with dist_reduce_fx"),
    "hydra-core": ("1.3", "@hydra.main(version_base='1.3')"),
    "omegaconf": ("2.3", "what hydra-core 1.3 requires"),
    "safetensors": ("0.4", "safetensors.torch save_file / load_file / safe_open"),
}


def _requirements(extra: str | None = None) -> dict[str, Requirement]:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    lines = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    return {Requirement(line).name.lower(): Requirement(line) for line in lines}


def _floor(req: Requirement) -> Version | None:
    floors = [Version(s.version) for s in req.specifier if s.operator in (">=", "==", "~=")]
    return max(floors) if floors else None


@pytest.mark.parametrize("dist", sorted(NEEDS))
def test_floor_is_not_below_what_the_code_needs(dist: str) -> None:
    need, feature = NEEDS[dist]
    req = _requirements().get(dist)
    assert req is not None, f"{dist} is used ({feature}) but not declared in pyproject.toml"
    floor = _floor(req)
    assert floor is not None and floor >= Version(need), (
        f"pyproject.toml declares {req}, but the code needs {dist}>={need}: {feature}"
    )


def test_installed_versions_satisfy_the_declared_floors() -> None:
    for name, req in _requirements().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            pytest.fail(f"{name} is a declared dependency but is not installed")
        assert req.specifier.contains(installed, prereleases=True), f"{name} {installed}: {req}"


def test_the_features_exist_in_the_installed_versions() -> None:
    """The table's claims, checked where they can be: the installed releases have the features."""
    import torch
    from lightning import Trainer

    assert "weights_only" in inspect.signature(Trainer.fit).parameters
    assert hasattr(torch, "uint16")
    from torchmetrics import Metric

    assert hasattr(Metric, "update_count")


def test_sweep_extra_keeps_sqlalchemy_1() -> None:
    """hydra-optuna-sweeper pins optuna < 3, whose SQL storage fails with SQLAlchemy 2."""
    sweep = _requirements("sweep")
    assert "sqlalchemy" in sweep and not sweep["sqlalchemy"].specifier.contains("2.0.0")


def test_deprecations_from_our_code_are_errors() -> None:
    """pytest turns Deprecation/FutureWarnings attributed to esrgan_lit into errors."""
    filters = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["pytest"]["ini_options"][
        "filterwarnings"
    ]
    for category in ("DeprecationWarning", "FutureWarning"):
        errors = [f for f in filters if re.fullmatch(rf"error::{category}:esrgan_lit.*", f)]
        assert errors and filters.index(errors[-1]) > max(
            (i for i, f in enumerate(filters) if f.startswith(f"ignore::{category}")), default=-1
        ), f"{category}: the esrgan_lit error filter must come after the ignores"


def test_the_filter_is_live() -> None:
    """A DeprecationWarning attributed to esrgan_lit raises; a third-party-internal one does not."""
    import warnings

    with pytest.raises(DeprecationWarning):
        warnings.warn_explicit("old", DeprecationWarning, "x.py", 1, module="esrgan_lit.data.io")
    with pytest.raises(FutureWarning):
        warnings.warn_explicit("old", FutureWarning, "x.py", 1, module="esrgan_lit")
    warnings.warn_explicit("old", DeprecationWarning, "x.py", 1, module="lightning.pytorch")

"""One metric registry: validation and evaluation build metrics from it, the direction is the class's."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from torchmetrics import Metric

from esrgan_lit.callbacks.val_metrics import build_metric as val_build
from esrgan_lit.callbacks.wandb_summary import better
from esrgan_lit.evaluation.suite import METRIC_KEYS
from esrgan_lit.metrics import LPIPS, NIQE, PSNR, RMSE, SSIM, MaScore, PerceptualIndex
from esrgan_lit.metrics.registry import METRICS, build_metric, lower_is_better, metric_spec

PKG = Path(__file__).resolve().parents[1] / "src" / "esrgan_lit"
METRIC_CLASSES = {"LPIPS", "NIQE", "PSNR", "RMSE", "SSIM", "MaScore", "PerceptualIndex"}


def _names_used(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
    }


@pytest.mark.parametrize(
    "rel",
    [
        "callbacks/val_metrics.py",
        "callbacks/wandb_summary.py",
        "callbacks/wandb_artifacts.py",
        "evaluation/suite.py",
    ],
)
def test_consumers_have_no_table_of_their_own(rel: str) -> None:
    """No metric class is named and no direction set is kept outside the registry."""
    path = PKG / rel
    used = _names_used(path)
    assert not used & METRIC_CLASSES, f"{rel} names metric classes {used & METRIC_CLASSES}"
    assert not used & {"LOWER_IS_BETTER", "FULL_REFERENCE", "_NO_REFERENCE", "_BUILDERS"}
    text = path.read_text(encoding="utf-8")
    assert "esrgan_lit.metrics.registry" in text, f"{rel} does not ask the registry"


def test_callbacks_do_not_import_evaluation() -> None:
    for path in (PKG / "callbacks").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("esrgan_lit.evaluation"), path.name


def test_direction_is_each_class_attribute() -> None:
    expected = {PSNR: True, SSIM: True, RMSE: False, NIQE: False, LPIPS: False}
    expected |= {MaScore: True, PerceptualIndex: False}
    for name, spec in METRICS.items():
        assert issubclass(spec.cls, Metric)
        assert spec.higher_is_better is expected[spec.cls] is spec.cls.higher_is_better, name
        assert lower_is_better(f"val/Set5/{name}") is not spec.cls.higher_is_better
    assert lower_is_better("val/Set5/l_pix") is False  # unknown names: higher is better
    assert better("val/Set5/lpips", 0.1, 0.2) and better("val/Set5/psnr_y", 30.0, 29.0)


def test_direction_follows_the_class(monkeypatch: pytest.MonkeyPatch) -> None:
    """Flip the class attribute: the registry and the W&B summary follow (no second table)."""
    monkeypatch.setattr(RMSE, "higher_is_better", True)
    assert not lower_is_better("rmse")
    assert better("val/Set5/rmse", 2.0, 1.0)


def test_every_evaluation_column_and_reference_kind() -> None:
    assert set(METRIC_KEYS) <= set(METRICS)
    no_ref = {k for k, s in METRICS.items() if not s.full_reference}
    assert no_ref == {"niqe", "ma", "pi"}


def test_build_options_and_unknown_names() -> None:
    m = build_metric("psnr_rgb", 2)
    assert isinstance(m, PSNR) and m.crop_border == 2 and not m.test_y_channel
    assert build_metric("ssim_y", 3, {"crop_border": 0}).crop_border == 0  # options override
    assert val_build("psnr_y", 4).test_y_channel
    assert val_build("niqe", 4).crop_border == 4
    with pytest.raises(ValueError, match=r"unknown metric 'psnr'.*psnr_y"):
        metric_spec("psnr")
    with pytest.raises(ValueError, match="unknown validation metric 'bogus'"):
        val_build("bogus", 4)

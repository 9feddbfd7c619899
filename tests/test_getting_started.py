"""docs/getting-started.md (issue 18, item 2): linked first, and its training-time table is the
arithmetic of the measured step times it cites, so a new measurement cannot leave it stale."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "getting-started.md"


def _max_steps(experiment: str) -> int:
    path = ROOT / "conf" / "experiment" / f"{experiment}.yaml"
    return int(yaml.safe_load(path.read_text())["trainer"]["max_steps"])


def test_linked_first_from_readme_and_index():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    first_link = re.search(r"\]\(([^)#]+\.md)", readme).group(1)
    assert first_link == "docs/getting-started.md"
    table_rows = [line for line in index.splitlines() if line.startswith("| [")]
    assert table_rows[0].startswith("| [getting-started.md](getting-started.md)")


def test_gan_hours_follow_from_the_measured_h200_steps():
    bench = (ROOT / "benchmarks" / "results" / "2026-11-26-train-step-cuda.md").read_text()
    steps = [float(m) for m in re.findall(r"\| Lightning Trainer \| \d+ \| ([\d.]+) \|", bench)]
    assert len(steps) == 2  # fp32, bf16-cl
    page = PAGE.read_text(encoding="utf-8")
    gan_steps = _max_steps("esrgan")
    assert f"| {gan_steps:,} |" in page
    for ms in steps:
        hours = gan_steps * ms / 1000 / 3600
        assert f"{ms} ms = {1000 / ms:.1f} it/s (measured) | {hours:.1f} h" in page, (ms, hours)


def test_psnr_range_follows_from_the_measured_phases():
    bench = (ROOT / "benchmarks" / "results" / "2026-11-26-train-step-cuda.md").read_text()
    fp32 = bench.split("## bf16")[0]
    phase = {
        m.group(1): float(m.group(2))
        for m in re.finditer(
            r"^\| (G fwd|G bwd|D fwd|D bwd|VGG fwd|VGG bwd) \| ([\d.]+) \|", fp32, re.M
        )
    }
    whole = float(re.search(r"\| hand, per-phase timers \| \d+ \| ([\d.]+) \|", fp32).group(1))
    low = phase["G fwd"] + phase["G bwd"]
    high = whole - sum(phase[k] for k in ("D fwd", "D bwd", "VGG fwd", "VGG bwd"))
    page = PAGE.read_text(encoding="utf-8")
    assert f"{low:.0f}–{high:.0f} ms = {1000 / high:.1f}–{1000 / low:.1f} it/s (derived" in page
    psnr_steps = _max_steps("psnr_pretrain")
    assert f"| {psnr_steps:,} |" in page
    assert f"{psnr_steps * low / 1000 / 3600:.0f}–{psnr_steps * high / 1000 / 3600:.0f} h" in page


def test_div2k_size_is_the_archives_sum():
    spec = yaml.safe_load((ROOT / "conf" / "data" / "archives" / "div2k.yaml").read_text())
    total = sum(a["size"] for a in spec["archives"])
    assert f"{total / 1e9:.2f} GB" in PAGE.read_text(encoding="utf-8")

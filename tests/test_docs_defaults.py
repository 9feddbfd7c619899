"""docs/configuration.md's documented defaults equal the composed configs (issue 18, item 7).

A parenthesis right after a key, ``\\`resume\\` (null)``, states that key's default; each one that
is a plain value (number, true/false/null, a single word) is compared with the config it
describes. Descriptions in parentheses (``\\`cache\\` (decode ...)``) and mappings are skipped.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, ListConfig, OmegaConf

from esrgan_lit.config import config_dir

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
PAIR = re.compile(r"`(\w+)` \(([^)]*)\)")
WORD = re.compile(r"^[A-Za-z_][\w.-]*$")


def _literal(text: str) -> tuple[bool, Any]:
    parts = re.split(r"[:;,=]| - ", text.replace("`", ""), maxsplit=1)
    head, rest = parts[0].strip(), (parts[1].strip() if len(parts) > 1 else "")
    if not head or "$" in head or rest.startswith(("{", "[")):  # a shape: `name: {root}`
        return False, None
    low = head.lower()
    if low in ("true", "false", "null"):
        return True, {"true": True, "false": False, "null": None}[low]
    try:
        return True, int(head.replace(",", ""))
    except ValueError:
        pass
    try:
        return True, float(head)
    except ValueError:
        pass
    if WORD.match(head) and " " not in head:
        return True, head
    return False, None


def _block(text: str, start: str) -> str:
    """The table row starting with ``start``, or the paragraph from it to the next blank line."""
    i = text.index(start)
    j = text.find("\n" if start.startswith("|") else "\n\n", i)
    return text[i : j if j != -1 else len(text)]


def _cfg(name: str, *overrides: str) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose(name, overrides=list(overrides))


def _cases() -> list[tuple[str, str, str, Any]]:
    text = DOC.read_text(encoding="utf-8")
    blocks = [
        ("train", "", "| `train.yaml`"),
        ("evaluate", "", "| `evaluate.yaml`"),
        ("tradeoff", "", "| `tradeoff.yaml`"),
        ("interpolate", "", "| `interpolate.yaml`"),
        ("train", "data", "Fields (defaults from `data=div2k`)"),
        ("train model=psnr", "model", "| `model=psnr`"),
        ("train model=esrgan", "model", "| `model=esrgan`"),
        ("train model=psnr", "model", "Both modules also take"),
        ("train model=esrgan", "model", "Both modules also take"),
    ]
    cases = []
    for config, node, start in blocks:
        for key, paren in PAIR.findall(_block(text, start)):
            ok, value = _literal(paren)
            if ok:
                cases.append((config, node, key, value))
    return cases


@pytest.mark.parametrize(("config", "node", "key", "documented"), _cases())
def test_documented_default_is_the_config_value(config, node, key, documented):
    name, *overrides = config.split()
    cfg = _cfg(name, *overrides)
    section = OmegaConf.select(cfg, node) if node else cfg
    if documented == "required":
        assert OmegaConf.is_missing(section, key), f"`{key}` (required) has a default in {config}"
        return
    if key not in section:
        pytest.skip(f"{key} is not a key of {config} {node}")
    value = OmegaConf.to_container(section, resolve=False)[key]
    if isinstance(section[key], (DictConfig, ListConfig)):
        pytest.skip("a mapping or list: described, not a default value")
    if isinstance(value, str) and "${" in value:
        pytest.skip("an interpolation")
    assert value == documented, (
        f"docs/configuration.md: `{key}` ({documented!r}), {config}: {value!r}"
    )

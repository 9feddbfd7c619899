"""The rules of docs/architecture.md, read from the source files' syntax trees (nothing imported).

- the low layers never import Lightning, Hydra or OmegaConf, not even inside a function;
- the low layers import no esrgan_lit package above them, the middle layers no entry point;
- no import cycle between esrgan_lit modules, counting imports inside functions too (a lazy
  import that closes a cycle only hides it; ``if TYPE_CHECKING:`` imports never run and are
  ignored);
- no source file over 400 lines, apart from the listed ones, which may not grow.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "src" / "esrgan_lit"

LOW = {"archs", "weights", "ops", "losses", "metrics", "degradations", "utils", "imageio"}
MIDDLE = {
    "config",
    "run_summary",
    "data",
    "inference",
    "lit",
    "callbacks",
    "evaluation",
    "cli_errors",
    "loggers",
    "run_dir",
}
ENTRY = {
    "train",
    "evaluate",
    "tradeoff",
    "interpolate",
    "upscale",
    "export",
    "convert",
    "demo",
    "hub",
}
TRAINING_STACK = {"lightning", "pytorch_lightning", "hydra", "omegaconf"}
MAX_LINES = 400
# Files already over the limit when the rule was written, with their length then: they may
# shrink but not grow; a new file over the limit fails.
LONG_FILES = {
    "ops/imresize.py": 407,
}


@cache
def modules() -> dict[str, Path]:
    """Dotted module name -> source file, for every module of the package."""
    found = {}
    for path in sorted(PKG.rglob("*.py")):
        parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _skip_type_checking(tree: ast.AST) -> Iterator[ast.AST]:
    """All nodes of ``tree`` except those under ``if TYPE_CHECKING:``."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            test = child.test if isinstance(child, ast.If) else None
            if isinstance(test, ast.Name | ast.Attribute) and "TYPE_CHECKING" in ast.unparse(test):
                todo.extend(child.orelse)
                continue
            todo.append(child)


@cache
def imports(module: str) -> tuple[tuple[str, int], ...]:
    """(imported module, line) for every import statement in ``module``, functions included."""
    path = modules()[module]
    return parse_imports(path.read_text(encoding="utf-8"), module, path.name == "__init__.py")


def parse_imports(source: str, module: str, is_package: bool) -> tuple[tuple[str, int], ...]:
    """``from pkg import name`` counts as importing ``pkg.name`` when that is a module of ours;
    relative imports are resolved against ``module``."""
    here = module.split(".") if is_package else module.split(".")[:-1]
    found = []
    for node in _skip_type_checking(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here[: len(here) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append((sub if sub in modules() else base, node.lineno))
    return tuple(sorted(found, key=lambda item: item[1]))


def package(module: str) -> str:
    """``esrgan_lit.weights.io`` -> ``weights``; ``esrgan_lit.train`` -> ``train``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def where(module: str, line: int) -> str:
    return f"{modules()[module].relative_to(ROOT).as_posix()}:{line}"


def test_the_import_reader_sees_what_the_rules_need() -> None:
    assert {"esrgan_lit.archs.rrdbnet", "esrgan_lit.weights.io", "esrgan_lit.train"} <= set(
        modules()
    )
    source = (
        "from typing import TYPE_CHECKING\n"
        "from esrgan_lit.archs import rrdbnet_striped, RRDBNet\n"
        "from . import keymaps\n"
        "from ..weights import io\n"
        "if TYPE_CHECKING:\n"
        "    import lightning\n"
        "def f():\n"
        "    import hydra\n"
    )
    assert parse_imports(source, "esrgan_lit.archs.rrdbnet", is_package=False) == (
        ("typing", 1),
        ("esrgan_lit.archs.rrdbnet_striped", 2),
        ("esrgan_lit.archs", 2),
        ("esrgan_lit.archs.keymaps", 3),
        ("esrgan_lit.weights.io", 4),
        ("hydra", 8),
    )


def test_low_layers_never_import_the_training_stack() -> None:
    bad = [
        f"{where(m, line)} imports {name}"
        for m in modules()
        if package(m) in LOW
        for name, line in imports(m)
        if name.split(".")[0] in TRAINING_STACK
    ]
    assert not bad, "low layers must not import Lightning/Hydra/OmegaConf:\n" + "\n".join(bad)


def test_no_upward_imports() -> None:
    bad = []
    for m in modules():
        layer = package(m)
        for name, line in imports(m):
            if not name.startswith("esrgan_lit."):
                continue
            target = package(name)
            if layer in LOW and target not in LOW:
                bad.append(f"{where(m, line)}: low layer {layer} imports {name}")
            elif layer in MIDDLE and target in ENTRY:
                bad.append(f"{where(m, line)}: {layer} imports the entry point {name}")
    assert not bad, "\n".join(bad)


def test_every_package_is_in_a_layer() -> None:
    # A new package must be placed in docs/architecture.md's layers (and here) explicitly.
    packages = {package(m) for m in modules()} - {""}
    assert packages <= LOW | MIDDLE | ENTRY, sorted(packages - (LOW | MIDDLE | ENTRY))


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that returns to its start, or None (iterative DFS)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    for start in sorted(graph):
        if start in state:
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return None


def test_find_cycle_reports_the_loop() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles() -> None:
    graph = {
        m: {name for name, _ in imports(m) if name in modules() and name != m} for m in modules()
    }
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_source_file_over_the_line_limit() -> None:
    too_long, grew = [], []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG).as_posix()
        n = len(path.read_text(encoding="utf-8").splitlines())
        if rel in LONG_FILES:
            if n > LONG_FILES[rel]:
                grew.append(f"{rel}: {n} lines (was {LONG_FILES[rel]}; split it, do not grow it)")
        elif n > MAX_LINES:
            too_long.append(f"{rel}: {n} lines (limit {MAX_LINES})")
    assert not too_long and not grew, "\n".join(too_long + grew)


def test_private_lightning_imports_only_in_the_compat_seam() -> None:
    # lit/compat.py holds every private Lightning API, each with a test in test_lightning_compat.
    bad = []
    for m, path in modules().items():
        if m == "esrgan_lit.lit.compat":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                ("lightning", "pytorch_lightning")
            ):
                private = [a.name for a in node.names if a.name.startswith("_")]
                private += [p for p in (node.module or "").split(".") if p.startswith("_")]
                if private:
                    bad.append(f"{where(m, node.lineno)} imports {node.module}: {private}")
    assert not bad, "use esrgan_lit.lit.compat:\n" + "\n".join(bad)

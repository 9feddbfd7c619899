"""The signature listings of docs/api.md match the code: every name listed exists in its
package and takes the listed parameters (names, order, keyword-only marker)."""

from __future__ import annotations

import ast
import importlib
import inspect
import re

from docs_blocks import Block, blocks, rule_for


def _statements(code: str) -> list[str]:
    """Listing lines, joined while brackets are open; comments and ``-> ...`` dropped."""
    out, cur, depth = [], "", 0
    for raw in code.splitlines():
        line = re.sub(r"\s+#.*$", "", raw).rstrip()
        if not line.strip():
            continue
        cur += " " + line.strip()
        depth += line.count("(") - line.count(")")
        if depth <= 0:
            out.append(re.sub(r"\)\s*->.*$", ")", cur.strip()))
            cur, depth = "", 0
    return out


def _params(sig_text: str) -> list[str]:
    """Parameter names (``*`` kept as a marker) of ``name(<params>)``."""
    args = sig_text[sig_text.index("(") :]
    fn = ast.parse(f"def f{args}: pass").body[0].args
    names = [a.arg for a in fn.posonlyargs + fn.args]
    if fn.vararg:
        names.append("*" + fn.vararg.arg)
    elif fn.kwonlyargs:
        names.append("*")
    names += [a.arg for a in fn.kwonlyargs]
    if fn.kwarg:
        names.append("**" + fn.kwarg.arg)
    return names


def _real_params(obj) -> list[str]:
    sig = inspect.signature(obj)
    names, star = [], False
    for p in sig.parameters.values():
        if p.name == "self":
            continue
        if p.kind is p.VAR_POSITIONAL:
            names.append("*" + p.name)
            star = True
        elif p.kind is p.KEYWORD_ONLY and not star:
            names.append("*")
            star = True
            names.append(p.name)
        elif p.kind is p.VAR_KEYWORD:
            names.append("**" + p.name)
        else:
            names.append(p.name)
    return names


def check_signatures(block: Block, package: str) -> None:
    mod = importlib.import_module(f"esrgan_lit.{package}")
    problems = []
    for stmt in _statements(block.code):
        if stmt.startswith(("from ", "import ")):
            continue
        attr = re.match(r"^(\w+)\s*:\s*(\w+)", stmt)  # a listed attribute: NAME: type[...]
        if attr and "(" not in stmt:
            name, kind = attr.groups()
            value = getattr(mod, name, AttributeError)
            if value is AttributeError:
                problems.append(f"{name}: not in esrgan_lit.{package}")
            elif kind in ("dict", "list", "tuple", "set") and type(value).__name__ != kind:
                problems.append(f"{name}: documented {kind}, code {type(value).__name__}")
            continue
        if "(" not in stmt:
            problems.append(f"{stmt!r}: neither a call signature nor NAME: type")
            continue
        dotted = stmt[: stmt.index("(")].strip()
        obj = mod
        try:
            for part in dotted.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            problems.append(f"{dotted}: not in esrgan_lit.{package}")
            continue
        documented, real = _params(stmt), _real_params(obj)
        if real and real[-1].startswith("**") and documented[-1:] != real[-1:]:
            real = real[:-1]  # a pass-through **kwargs (torchmetrics options) may go unlisted
        if documented != real:
            problems.append(
                f"{dotted}: documented ({', '.join(documented)}), code ({', '.join(real)})"
            )
    assert not problems, f"{block.where}: stale signatures:\n  " + "\n  ".join(problems)


def test_every_api_listing_has_a_package() -> None:
    listings = [b for b in blocks() if (r := rule_for(b)) and r.action == "signatures"]
    assert listings, "no signature listings found in docs/api.md"
    for block in listings:
        importlib.import_module(f"esrgan_lit.{rule_for(block).why}")


def test_stale_signature_is_caught() -> None:
    stale = Block("docs/api.md", 1, "python", "RRDBNet(num_in_ch=3, scale=4, num_feats=64)")
    try:
        check_signatures(stale, "archs")
    except AssertionError as err:
        assert "RRDBNet" in str(err)
    else:
        raise AssertionError("a renamed parameter went unnoticed")


def test_listed_attributes_are_checked() -> None:
    """``NAME: type`` lines (``hub.MODELS``) are checked too, and unparsable lines are reported."""
    check_signatures(Block("docs/api.md", 1, "python", "MODELS: dict[str, HubModel]"), "hub")
    for code, expected in [
        ("MODEL_TABLE: dict[str, HubModel]", "MODEL_TABLE: not in"),
        ("MODELS: list[HubModel]", "documented list, code dict"),
        ("MODELS / the table", "neither a call signature"),
    ]:
        try:
            check_signatures(Block("docs/api.md", 1, "python", code), "hub")
        except AssertionError as err:
            assert expected in str(err), err
        else:
            raise AssertionError(f"{code!r} went unnoticed")

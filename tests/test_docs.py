"""Every command in the docs parses: Hydra entry points compose, argparse CLIs accept their arguments.

Commands are the lines of fenced ```bash blocks in docs/*.md and README.md that start with
``python -m esrgan_lit.<module>`` or an ``esrgan-<name>`` console script (after optional
``VAR=value`` environment assignments; ``\\`` continuations joined, ``#`` comments dropped).

- Hydra entry points (train, evaluate, tradeoff, interpolate) are composed in-process with the same
  overrides; a ``-m`` line is split into its jobs the way Hydra's basic sweeper does, and each job is
  composed. The composed config must resolve with no missing mandatory value (``???``), so a
  documented command that forgets e.g. ``model.pretrained_generator`` fails here.
- argparse CLIs (upscale, convert, export, data.prepare, metrics.ma_forest, demo) get their ``main(argv)``
  called with ``ArgumentParser.parse_args`` patched to stop right after a successful parse.

Also: every config group option and experiment under conf/ is named in docs/configuration.md,
and relative links in the docs point at files that exist.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import tomllib

from _extras import skip_without_plugins

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DOC_FILES = [*sorted(DOCS.glob("*.md")), ROOT / "README.md"]

HYDRA = {
    "train": "train",
    "evaluate": "evaluate",
    "tradeoff": "tradeoff",
    "interpolate": "interpolate",
}
ARGPARSE = {
    "upscale": "esrgan_lit.upscale",
    "convert": "esrgan_lit.convert",
    "export": "esrgan_lit.export",
    "data.prepare": "esrgan_lit.data.prepare",
    "data.degraded": "esrgan_lit.data.degraded",
    "metrics.ma_forest": "esrgan_lit.metrics.ma_forest",
    "demo": "esrgan_lit.demo",
    "hub": "esrgan_lit.hub",
}
# Entry points the contracts name: the docs must show each at least once.
REQUIRED = set(HYDRA) | (set(ARGPARSE) - {"demo"})

_FENCE = re.compile(r"^```(\w*)\s*$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=\S*$")


@dataclass(frozen=True)
class Command:
    where: str  # file:line
    entry: str  # key of HYDRA or ARGPARSE
    args: tuple[str, ...]


def _console_scripts() -> dict[str, str]:
    """``esrgan-x`` -> module, from pyproject's [project.scripts]."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    scripts = data.get("project", {}).get("scripts", {})
    return {name: target.split(":")[0] for name, target in scripts.items()}


def _bash_lines(path: Path) -> list[tuple[int, str]]:
    """Logical lines (continuations joined) of the ```bash / ```sh blocks of a Markdown file."""
    out: list[tuple[int, str]] = []
    in_block = False
    pending, start = "", 0
    for no, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fence = _FENCE.match(raw.strip())
        if fence:
            in_block = not in_block and fence.group(1) in ("bash", "sh", "shell", "console")
            continue
        if not in_block:
            continue
        line = raw.rstrip()
        if not pending:
            start = no
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        out.append((start, pending + line))
        pending = ""
    return out


def _entry_for(tokens: list[str], scripts: dict[str, str]) -> tuple[str, list[str]] | None:
    """(entry key, remaining args) when the tokens run one of our commands, else None."""
    while tokens and _ENV.match(tokens[0]):
        tokens = tokens[1:]
    if len(tokens) >= 3 and tokens[0] in ("python", "python3") and tokens[1] == "-m":
        mod = tokens[2]
        if not mod.startswith("esrgan_lit."):
            return None
        return mod.removeprefix("esrgan_lit."), tokens[3:]
    if tokens and tokens[0].startswith("esrgan-"):
        name = tokens[0]
        if name not in scripts:
            return f"<unknown console script {name}>", tokens[1:]
        return scripts[name].removeprefix("esrgan_lit."), tokens[1:]
    return None


def collect_commands() -> list[Command]:
    scripts = _console_scripts()
    found: list[Command] = []
    for path in DOC_FILES:
        if not path.is_file():
            continue
        for no, line in _bash_lines(path):
            try:
                tokens = shlex.split(line, comments=True)
            except ValueError as err:
                raise AssertionError(f"{path.name}:{no}: cannot split {line!r}: {err}") from err
            hit = _entry_for(tokens, scripts)
            if hit is not None:
                entry, args = hit
                found.append(Command(f"{path.relative_to(ROOT)}:{no}", entry, tuple(args)))
    return found


COMMANDS = collect_commands()


def test_docs_exist_and_cover_every_entry_point():
    assert DOCS.is_dir() and len(list(DOCS.glob("*.md"))) >= 8, "docs/ is missing pages"
    shown = {c.entry for c in COMMANDS}
    missing = REQUIRED - shown
    assert not missing, f"no documented command for: {sorted(missing)}"


def test_every_command_is_a_known_entry_point():
    unknown = [f"{c.where}: {c.entry}" for c in COMMANDS if c.entry not in HYDRA | ARGPARSE]
    assert not unknown, "commands with no parse check (or no such console script):\n" + "\n".join(
        unknown
    )


# ------------------------------------------------------------------------------------ Hydra


def _hydra_jobs(cmd: Command) -> list[list[str]]:
    """Override lists, one per job the command would run (one for a plain run)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    multirun = False
    overrides: list[str] = []
    args = list(cmd.args)
    while args:
        a = args.pop(0)
        if a in ("-m", "--multirun"):
            multirun = True
        elif a in ("--cfg", "-c"):
            assert args and args.pop(0) in ("job", "hydra", "all"), f"{cmd.where}: bad --cfg"
        elif a == "--resolve":
            pass
        elif a.startswith("-"):
            raise AssertionError(f"{cmd.where}: flag {a!r} is not checked by this test")
        else:
            overrides.append(a)
    parsed = OverridesParser.create().parse_overrides(overrides)
    sweeps = [o.input_line for o in parsed if o.is_sweep_override()]
    if sweeps and not multirun:
        raise AssertionError(f"{cmd.where}: sweep overrides {sweeps} need -m")
    if not multirun or any(o.startswith("hparams_search=") for o in overrides):
        return [overrides]
    batches = BasicSweeper.split_arguments(parsed, None)
    return [job for batch in batches for job in batch]


@pytest.fixture(scope="module")
def hydra_ready(tmp_path_factory):
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    from esrgan_lit.config import config_dir

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        yield tmp_path_factory.mktemp("hydra_out")
    GlobalHydra.instance().clear()
    HydraConfig.instance().cfg = None  # leave no run config behind for other tests


def _compose_and_resolve(config_name: str, overrides: list[str], out: Path) -> None:
    from hydra import compose
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, open_dict

    cfg = compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(out)
        cfg.hydra.runtime.cwd = str(out)
        cfg.hydra.job.name = config_name
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    for key in cfg:
        if key == "hydra":
            continue
        node = cfg[key]
        if OmegaConf.is_config(node):
            OmegaConf.to_container(node, resolve=True, throw_on_missing=True)


HYDRA_COMMANDS = [c for c in COMMANDS if c.entry in HYDRA]


@pytest.mark.parametrize("cmd", HYDRA_COMMANDS, ids=[c.where for c in HYDRA_COMMANDS])
def test_hydra_command_composes(cmd: Command, hydra_ready: Path):
    jobs = _hydra_jobs(cmd)
    assert jobs
    for job in jobs:
        skip_without_plugins(job)
        try:
            _compose_and_resolve(HYDRA[cmd.entry], job, hydra_ready)
        except Exception as err:  # report which documented line and which job broke
            raise AssertionError(f"{cmd.where}: {cmd.entry} {' '.join(job)}\n{err}") from err


# --------------------------------------------------------------------------------- argparse


class _Parsed(Exception):
    def __init__(self, namespace: argparse.Namespace) -> None:
        super().__init__("parsed")
        self.namespace = namespace


ARGPARSE_COMMANDS = [c for c in COMMANDS if c.entry in ARGPARSE]


def _module_file(name: str) -> Path:
    """``esrgan_lit.a.b`` -> .../esrgan_lit/a/b.py, found without importing ``esrgan_lit.a``."""
    import esrgan_lit

    return Path(esrgan_lit.__file__).parent.joinpath(*name.split(".")[1:]).with_suffix(".py")


_LOADED: dict[str, object] = {}


def _load_standalone(name: str):
    """Load a CLI module from its file without running its package's ``__init__`` (e.g.
    ``esrgan_lit.metrics`` would import torchmetrics and lpips just to parse arguments)."""
    if name not in _LOADED:
        path = _module_file(name)
        assert path.is_file(), f"no module {name} ({path})"
        alias = f"_docs_cli_{name.replace('.', '_')}"
        standalone = importlib.util.spec_from_file_location(alias, path)
        module = importlib.util.module_from_spec(standalone)
        sys.modules[alias] = module  # dataclasses look their module up while it executes
        standalone.loader.exec_module(module)
        _LOADED[name] = module
    return _LOADED[name]


@pytest.mark.parametrize("cmd", ARGPARSE_COMMANDS, ids=[c.where for c in ARGPARSE_COMMANDS])
def test_argparse_command_parses(cmd: Command, monkeypatch: pytest.MonkeyPatch, capsys, request):
    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        raise _Parsed(original(self, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    module = _load_standalone(ARGPARSE[cmd.entry])
    with pytest.raises(_Parsed) as parsed:
        try:
            module.main(list(cmd.args))
        except SystemExit as exit_:
            err = capsys.readouterr().err
            raise AssertionError(f"{cmd.where}: arguments rejected: {err.strip()}") from exit_
    if cmd.entry == "demo":  # its trailing arguments are Hydra overrides for both stages
        out = request.getfixturevalue("hydra_ready")
        extra = list(parsed.value.namespace.overrides)
        _compose_and_resolve("train", ["experiment=demo", *extra], out)
        _compose_and_resolve(
            "train", ["experiment=demo_gan", "model.pretrained_generator=g", *extra], out
        )


def test_parse_check_rejects_a_bad_line(monkeypatch: pytest.MonkeyPatch, capsys):
    """The argparse check is not vacuous: an unknown option fails it."""
    bad = Command("<test>", "upscale", ("in.png", "--no-such-option"))
    with pytest.raises(AssertionError, match="arguments rejected"):
        test_argparse_command_parses(bad, monkeypatch, capsys, None)


def test_compose_check_rejects_missing_mandatory(hydra_ready: Path):
    """The Hydra check is not vacuous: interpolation without its output file fails, and so does
    an override of a key that does not exist."""
    with pytest.raises(Exception, match="output"):
        _compose_and_resolve("interpolate", ["psnr=a.pth", "gan=b.pth"], hydra_ready)
    with pytest.raises(Exception, match="no_such_key"):
        _compose_and_resolve("train", ["data.no_such_key=1"], hydra_ready)


# ------------------------------------------------------------------ reference completeness


def test_configuration_reference_lists_every_config():
    """docs/configuration.md names every config: ``group=option`` or ``group/option`` for group
    options, ``experiment=NAME`` for experiments, ``NAME.yaml`` for the primary configs."""
    from esrgan_lit.config import config_dir

    conf = config_dir()
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    missing = []
    for yaml in sorted(conf.rglob("*.yaml")):
        rel = yaml.relative_to(conf).with_suffix("").as_posix()
        if "/" not in rel:  # a primary config: train, evaluate, tradeoff, interpolate
            forms = [f"{rel}.yaml"]
        elif rel.startswith("experiment/"):
            forms = [f"experiment={rel.removeprefix('experiment/')}"]
        else:
            group, option = rel.rsplit("/", 1)
            forms = [f"{group}={option}", rel]
        if not any(f in text for f in forms):
            missing.append(forms[0])
    assert not missing, f"docs/configuration.md does not mention: {missing}"


_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchors(path: Path) -> set[str]:
    """GitHub's heading slugs: lower case, punctuation dropped, spaces to hyphens."""
    slugs = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            slugs.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return slugs


def test_relative_links_resolve():
    broken = []
    for path in DOC_FILES:
        for link in _LINK.findall(path.read_text(encoding="utf-8")):
            if re.match(r"^[a-z]+:", link):
                continue
            target, _, anchor = link.partition("#")
            dest = path.parent / target if target else path
            if not dest.exists():
                broken.append(f"{path.relative_to(ROOT)} -> {link}")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                broken.append(f"{path.relative_to(ROOT)} -> {link} (no such heading)")
    assert not broken, f"broken links: {broken}"


def test_documented_modules_exist():
    """Each documented ``python -m esrgan_lit.X`` module is a file of the package."""
    for entry in {c.entry for c in COMMANDS} & (set(HYDRA) | set(ARGPARSE)):
        assert _module_file(f"esrgan_lit.{entry}").is_file(), entry

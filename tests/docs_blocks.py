"""What ``test_docs_run.py`` runs: the code blocks of README.md and docs/*.md, and the table of
blocks that cannot run here (network, GPU, cluster) or are known to be broken.

To add an exception, append a :class:`Rule` to ``RULES``: the page, a piece of text unique to the
line (bash) or block (python), what to do, and why. A rule that matches nothing fails the suite
(a stale table), and so does a block that fails without a rule (with its file:line).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^```(\w*)\s*$")
BASH = ("bash", "sh", "shell", "console")
# A python block whose first line is "# some/path.py" is a file the reader saves, not a snippet.
FILE_HEADER = re.compile(r"^#\s*([\w./-]+\.py)\s*$")


@dataclass(frozen=True)
class Block:
    page: str  # path relative to the repository root
    line: int  # first line of the code (bash: of this logical line)
    lang: str  # "bash" (one logical line) or "python" (the whole block)
    code: str

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def file_name(self) -> str | None:
        """``mypkg/nets.py`` for a block that starts with ``# mypkg/nets.py``."""
        first = self.code.splitlines()[0] if self.code else ""
        m = FILE_HEADER.match(first.strip()) if self.lang == "python" else None
        return m.group(1) if m else None


@dataclass(frozen=True)
class Rule:
    page: str  # e.g. "docs/training.md"
    match: str  # a substring of the bash line / python block
    action: str  # "skip" | "fails" | "xfail" | "signatures" | "after" | "stand-in"
    # the reason; "fails": a regex the error must match; "signatures": the package to check;
    # "after": text of the page's earlier bash lines to run first in the same directory;
    # "stand-in": "PATH <- pkg.mod.Class(args)": the page trains that network in a step that
    # cannot run as written; its export (save_any_generator, untrained) is put at PATH first
    why: str


# ---------------------------------------------------------------------------- the exceptions
GPU = "needs CUDA GPUs (trainer=ddp / --device cuda); covered by tests/test_cuda.py on a GPU box"
CLUSTER = "needs a SLURM cluster / several nodes"
# offline, data.download=true must name the archive, its address and where to put it by hand
OFFLINE_DOWNLOAD = r"DownloadError: could not download .*Download \S+ from https://.* place it at"
SETUP = "installs the environment itself (the CI job that runs this suite did just that)"
# offline (the suite always is: test_docs_run refuses outside connections), an official model name
# must say which file failed, from where, and the exact hub-cache path to place a copy by hand
HUB_OFFLINE = (
    r"could not download (\w+) from https://github\.com/xinntao/Real-ESRGAN/releases/\S+: .*"
    r"Download (\1[\w-]*\.pth) from https://\S+ and place it at \S+/torch_home/hub/checkpoints/\2"
)
# a wandb: reference without W&B online must say how to get the artifact (docs/wandb.md)
WANDB_OFFLINE = (
    r"cannot fetch W&B artifact 'my-team/esrgan-lit/generator-1a2b3c4d:\w+' \(WANDB_MODE is "
    r"offline: set WANDB_MODE=online, or download it and pass the path\)"
)
WANDB_SWEEP = (
    "W&B Sweeps need a W&B account and the network; tests/test_wandb_sweep.py composes "
    "sweeps/wandb_sweep.yaml's command and joins an agent's run offline"
)
RULES: list[Rule] = [
    Rule(
        "README.md",
        "make demo",
        "skip",
        "the full 6-minute demo; tests/test_train_demo.py runs it tiny",
    ),
    Rule("README.md", "make test", "skip", "runs this suite"),
    Rule(
        "docs/getting-started.md",
        "make demo",
        "skip",
        "the full demo; tests/test_train_demo.py runs it tiny",
    ),
    Rule("docs/getting-started.md", "pip install -e '.[sample]'", "skip", SETUP),
    Rule(
        "docs/install.md",
        "make demo",
        "skip",
        "the full demo; tests/test_train_demo.py runs it tiny",
    ),
    Rule("docs/install.md", "make test", "skip", "runs this suite"),
    Rule(
        "docs/index.md", "make demo", "skip", "the full demo; tests/test_train_demo.py runs it tiny"
    ),
    Rule("docs/install.md", "python3 -m venv", "skip", SETUP),
    Rule("docs/install.md", "pip install -e .  ", "skip", SETUP),
    Rule("docs/install.md", "pip install -e '.[lmdb,sweep]'", "skip", SETUP),
    # network: the data module downloads before training; offline it must say what failed
    Rule("README.md", "data.download=true", "fails", OFFLINE_DOWNLOAD),
    Rule("docs/getting-started.md", "data.download=true", "fails", OFFLINE_DOWNLOAD),
    Rule(
        "docs/index.md",
        "data.download=true",
        "fails",
        OFFLINE_DOWNLOAD,
    ),
    Rule(
        "docs/training.md",
        "data.download=true",
        "fails",
        OFFLINE_DOWNLOAD,
    ),
    Rule("docs/wandb.md", "wandb login", "skip", "needs a W&B account and the network"),
    Rule("docs/wandb.md", "wandb sync", "skip", "uploads to W&B over the network"),
    Rule(
        "docs/wandb.md", "logger.wandb.name=psnr_x4", "skip", "online W&B run: needs `wandb login`"
    ),
    Rule("docs/evaluation.md", "ma_forest convert", "fails", r"sr-metric/model\.mat"),
    # official models by name: fetched from GitHub releases on first use
    Rule("README.md", "-n RealESRGAN_x4plus", "fails", HUB_OFFLINE),
    Rule("docs/inference.md", "--model RealESRGAN_x4plus --tta", "fails", HUB_OFFLINE),
    Rule("docs/inference.md", "-n RealESRGAN_x4plus -s 3.5", "fails", HUB_OFFLINE),
    Rule("docs/inference.md", "esrgan-hub download RealESRGAN_x4plus", "fails", HUB_OFFLINE),
    Rule("docs/inference.md", "hub download RealESRNet_x4plus", "fails", HUB_OFFLINE),
    Rule("docs/getting-started.md", "--model RealESRGAN_x4plus", "fails", HUB_OFFLINE),
    Rule("docs/getting-started.md", "-n ESRGAN_SRx4_DF2KOST_official", "fails", HUB_OFFLINE),
    # the page trains TinyNet with a placeholder search path (a text block, not run);
    # tests/test_export_any_generator.py runs that training and export for real
    Rule(
        "docs/extending.md",
        'load_file("outputs/tiny/generator.safetensors")',
        "stand-in",
        "outputs/tiny/generator.safetensors <- mypkg.nets.TinyNet(scale=4, num_feat=32)",
    ),
    # W&B artifacts by reference
    Rule("README.md", "wandb:my-team/esrgan-lit/generator-", "fails", WANDB_OFFLINE),
    Rule("docs/wandb.md", "wandb:my-team/esrgan-lit/generator-", "fails", WANDB_OFFLINE),
    Rule("docs/scale-out.md", "wandb sweep sweeps/", "skip", WANDB_SWEEP),
    Rule("docs/scale-out.md", "wandb agent my-team/", "skip", WANDB_SWEEP),
    # GPU / cluster
    Rule("docs/scale-out.md", "trainer=ddp trainer.devices=4", "skip", GPU),
    Rule("docs/scale-out.md", "hydra/launcher=slurm", "skip", CLUSTER),
    Rule("docs/scale-out.md", "MASTER_ADDR=", "skip", CLUSTER),
    Rule("docs/inference.md", "--device cuda", "skip", GPU),
    # API reference: signature listings, checked against the code instead of run
    Rule("docs/api.md", "RRDBNet(num_in_ch=3", "signatures", "archs"),
    Rule("docs/api.md", "load_generator(source", "signatures", "weights"),
    Rule("docs/api.md", "imresize(x, scale=None", "signatures", "ops"),
    Rule("docs/api.md", "PSNR(crop_border=4", "signatures", "metrics"),
    Rule("docs/api.md", "PixelLoss(criterion", "signatures", "losses"),
    Rule("docs/api.md", "SRDataModule(*", "signatures", "data"),
    Rule("docs/api.md", "PSNRModule(generator", "signatures", "lit"),
    Rule("docs/api.md", "Upscaler(model, *", "signatures", "inference"),
    Rule("docs/api.md", "probe_image(path, *", "signatures", "imageio"),
    Rule("docs/api.md", "MODELS: dict[str, HubModel]", "signatures", "hub"),
    Rule(
        "docs/scale-out.md",
        "trainer=ddp_cpu",
        "skip",
        "spawns DDP worker processes, which take a pytest-xdist worker down; "
        "tests/test_train.py covers trainer=ddp_cpu",
    ),
    # lines that build on an earlier line of their page: that line runs first, same directory
    Rule("docs/training.md", "div2k.hr=data/DIV2K/DIV2K_train_HR_sub", "after", "prepare extract"),
    Rule(
        "docs/training.md", "lmdb --input data/DIV2K/DIV2K_train_HR_sub", "after", "prepare extract"
    ),
    Rule("docs/training.md", "lmdb --input data/DIV2K/DIV2K_train_LR", "after", "prepare extract"),
    Rule("docs/realesrgan.md", "data.val_sets.sample_degraded", "after", "data.degraded data/"),
    Rule("docs/realesrgan.md", "test_dirs=[data/sample_degraded]", "after", "data.degraded data/"),
]


def blocks(paths: list[Path] = DOC_FILES) -> list[Block]:
    """Bash blocks as logical lines (``\\`` continuations joined), python blocks whole."""
    out: list[Block] = []
    for path in paths:
        if not path.is_file():
            continue
        page = path.relative_to(ROOT).as_posix()
        lang, body, start = None, [], 0
        for no, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            fence = _FENCE.match(raw.strip())
            if fence and lang is None:
                lang = "bash" if fence.group(1) in BASH else fence.group(1) or "text"
                body, start = [], no + 1
                continue
            if fence:
                if lang == "python":
                    out.append(Block(page, start, "python", "\n".join(body)))
                lang = None
                continue
            body.append(raw)
    return out + _bash_lines(paths)  # bash: one Block per logical line, with its own line


def _bash_lines(paths: list[Path]) -> list[Block]:
    out: list[Block] = []
    for path in paths:
        if not path.is_file():
            continue
        page = path.relative_to(ROOT).as_posix()
        in_bash, pending, start = False, "", 0
        for no, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            fence = _FENCE.match(raw.strip())
            if fence:
                in_bash = not in_bash and fence.group(1) in BASH
                continue
            if not in_bash or (not pending and not raw.strip()):
                continue
            if not pending and raw.lstrip().startswith("#"):
                continue  # a comment line: prose for the reader, nothing to run
            if not pending:
                start = no
            if raw.rstrip().endswith("\\"):
                pending += raw.rstrip()[:-1] + " "
                continue
            out.append(Block(page, start, "bash", pending + raw.rstrip()))
            pending = ""
    return out


def rule_for(block: Block) -> Rule | None:
    hits = [r for r in RULES if r.page == block.page and r.match in block.code]
    assert len(hits) <= 1, f"{block.where}: several rules match: {hits}"
    return hits[0] if hits else None

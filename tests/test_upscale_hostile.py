"""Hostile paths at the upscale command line: nothing is overwritten, nothing loops, nothing is
re-upscaled, and bad options are refused before the network runs (issues 12.2, 17.4/11/12, 18.6).

Hostile inputs tried here: 19 (-o = input folder, -o linking to it, an output that is a symlink
and one that is a hard link to an input, a.png+a.jpg with --ext png, b.PNG+b.png, a rerun into the
input folder, -o inside it, an orphan temp file, one name in two glob folders, symlink loops in a
recursive glob, --outscale nan/inf/0.001/100000/-2, -o a file, -o under a file, -o read-only).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from esrgan_lit.archs import RRDBNet
from esrgan_lit.upscale import collect_inputs, main
from esrgan_lit.weights import save_generator

RNG = np.random.default_rng(3)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "g.safetensors"
    torch.manual_seed(0)
    save_generator(RRDBNet(scale=2, num_feat=8, num_block=1, num_grow_ch=8).eval(), path)
    return str(path)


def img(path, size=(6, 5), alpha=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    a = RNG.integers(0, 256, size=(size[1], size[0], 4 if alpha else 3), dtype=np.uint8)
    Image.fromarray(a).save(path)
    return path


def digest(folder):
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def run(model, *args):
    return main([*map(str, args), "--model", model, "--device", "cpu"])


# ---------------------------------------------------------------- 12.2: never overwrite inputs
def test_output_folder_equal_to_input_is_refused_before_any_work(tmp_path, model, capsys):
    photos = tmp_path / "photos"
    img(photos / "a.png")
    img(photos / "sub" / "b.jpg")
    before = digest(photos)
    assert run(model, photos, "-o", photos) == 2
    err = capsys.readouterr().err
    assert "refusing to overwrite" in err and str(photos / "a.png") in err
    assert digest(photos) == before and len(list(photos.rglob("*.*"))) == 2


def test_output_reaching_an_input_through_symlinks_is_refused(tmp_path, model, capsys):
    photos = tmp_path / "photos"
    img(photos / "a.png")
    before = digest(photos)
    link = tmp_path / "link_to_photos"
    link.symlink_to(photos, target_is_directory=True)
    assert run(model, photos, "-o", link) == 2  # the output folder is the input folder
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").symlink_to(photos / "a.png")  # an output file that points at an input
    assert run(model, photos / "a.png", "-o", out) == 2
    (out / "a.png").unlink()
    os.link(photos / "a.png", out / "a.png")  # a hard link is the same file too
    assert run(model, photos / "a.png", "-o", out) == 2
    err = capsys.readouterr().err
    assert err.count("refusing to overwrite") == 3
    assert digest(photos) == before


def test_two_inputs_one_output_is_refused_naming_both(tmp_path, model, capsys):
    src = tmp_path / "in"
    img(src / "a.png")
    img(src / "a.jpg")
    out = tmp_path / "out"
    assert run(model, src / "a.png", src / "a.jpg", "--ext", "png", "-o", out) == 2
    err = capsys.readouterr().err
    assert str(src / "a.png") in err and str(src / "a.jpg") in err and "both" in err
    assert not out.exists()
    img(src / "b.PNG")
    img(src / "b.png")
    assert run(model, src / "b.PNG", src / "b.png", "-o", out) == 2  # one output name b.png
    assert not out.exists()


def test_rerun_into_the_input_folder_skips_own_outputs_and_skip_existing_holds(tmp_path, model):
    photos = tmp_path / "photos"
    img(photos / "a.png")
    assert run(model, photos, "-o", photos, "--suffix", "_x2") == 0
    first = (photos / "a_x2.png").stat().st_mtime_ns
    assert run(model, photos, "-o", photos, "--suffix", "_x2", "--skip-existing") == 0
    assert (photos / "a_x2.png").stat().st_mtime_ns == first  # left alone
    assert not (photos / "a_x2_x2.png").exists()  # its own output was not upscaled again
    # -o inside the input folder: the second run reads only the real photo
    assert run(model, photos, "-o", photos / "up") == 0
    assert run(model, photos, "-o", photos / "up") == 0
    assert sorted(p.name for p in (photos / "up").rglob("*")) == ["a.png", "a_x2.png"]
    assert not (photos / "up" / "up").exists()


# ---------------------------------------------------------------- 17.12: the tool's own temporaries
def test_orphan_temp_files_are_not_inputs(tmp_path, model):
    photos = tmp_path / "photos"
    img(photos / "a.png")
    (photos / ".a.k3j_9xq2.tmp.png").write_bytes(b"\x89PNG half written")  # a killed run's leftover
    pairs, errors = collect_inputs([str(photos)])
    assert [p.name for p, _ in pairs] == ["a.png"] and not errors
    pairs, _ = collect_inputs([str(photos / "*.png")])
    assert [p.name for p, _ in pairs] == ["a.png"]
    assert run(model, photos, "-o", tmp_path / "out") == 0


# ---------------------------------------------------------------- 18.6 / 17.4: globs
def test_glob_keeps_relative_folders(tmp_path, model):
    coll = tmp_path / "coll"
    img(coll / "x" / "img.png")
    img(coll / "y" / "img.png", size=(4, 4))
    out = tmp_path / "up"
    assert run(model, f"{coll}/**/*.png", "-o", out) == 0
    assert Image.open(out / "x" / "img.png").size == (12, 10)
    assert Image.open(out / "y" / "img.png").size == (8, 8)
    pairs, _ = collect_inputs([f"{coll}/*/img.png"])
    assert sorted(str(r) for _, r in pairs) == ["x/img.png", "y/img.png"]


def test_recursive_glob_with_symlink_loops_ends_and_dedupes(tmp_path):
    coll = tmp_path / "coll"
    img(coll / "x" / "a.png")
    for i in range(3):  # each loop multiplies the paths a link-following glob walks
        (coll / "x" / f"loop{i}").symlink_to(coll, target_is_directory=True)
    (coll / "same.png").symlink_to(coll / "x" / "a.png")  # one real file, two names
    code = (
        "import sys; from esrgan_lit.upscale import collect_inputs;"
        "pairs, _ = collect_inputs([sys.argv[1]]); print(len(pairs), pairs[0][1])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, f"{coll}/**/*.png"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "same.png"] or done.stdout.split() == ["1", "x/a.png"]


# ---------------------------------------------------------------- 17.11: options checked up front
@pytest.mark.parametrize("outscale", ["nan", "inf", "0.001", "100000", "-2"])
def test_bad_outscale_is_refused_before_the_network_runs(tmp_path, model, capsys, outscale):
    img(tmp_path / "a.png")
    assert run(model, tmp_path / "a.png", "-o", tmp_path / "o", "--outscale", outscale) == 2
    assert "--outscale" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_output_that_is_a_file_or_read_only_is_refused_up_front(
    tmp_path, model, capsys, monkeypatch
):
    img(tmp_path / "a.png")
    (tmp_path / "file").write_text("x")
    assert run(model, tmp_path / "a.png", "-o", tmp_path / "file") == 2
    assert run(model, tmp_path / "a.png", "-o", tmp_path / "file" / "sub") == 2
    ro = tmp_path / "ro"
    ro.mkdir()
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, m, **k: False if str(p) == str(ro) else real_access(p, m, **k)
    )
    assert run(model, tmp_path / "a.png", "-o", ro) == 2
    err = capsys.readouterr().err
    assert "not a folder" in err and "is a file" in err and "not writable" in err
    assert (tmp_path / "file").read_text() == "x"

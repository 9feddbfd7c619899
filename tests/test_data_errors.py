"""One DataNotFoundError (data/errors.py) and one help text; train.py no longer guesses from the
word "data" in a message which errors are about the data."""

from __future__ import annotations

import pytest

from esrgan_lit import train as train_module
from esrgan_lit.data import errors, sources
from esrgan_lit.data.datamodule import SRDataModule
from esrgan_lit.data.lmdb_io import LmdbReader

pytest.importorskip("skimage")
from train_helpers import compose_cfg


def test_one_class_everywhere(tmp_path) -> None:
    assert sources.DataNotFoundError is errors.DataNotFoundError
    assert train_module.DataNotFoundError is errors.DataNotFoundError
    assert issubclass(errors.DataNotFoundError, FileNotFoundError)  # old except clauses still work
    with pytest.raises(errors.DataNotFoundError, match="not an LMDB directory"):
        LmdbReader(tmp_path)
    assert not hasattr(errors, "how_to_get_data")  # the one help text lives in data.hints


def test_train_passes_other_file_errors_through_unchanged(tmp_path, monkeypatch) -> None:
    # Before: any FileNotFoundError mentioning "data" became a DataNotFoundError with the data
    # help appended, e.g. this one about a metadata file.
    def setup(self, stage=None):
        raise FileNotFoundError("/runs/x/metadata.json: no such file")

    monkeypatch.setattr(SRDataModule, "setup", setup)
    cfg = compose_cfg(tmp_path / "run", ["experiment=psnr_pretrain", "logger=none"], str(tmp_path))
    with pytest.raises(FileNotFoundError) as info:
        train_module.train(cfg)
    assert not isinstance(info.value, errors.DataNotFoundError)
    assert str(info.value) == "/runs/x/metadata.json: no such file"

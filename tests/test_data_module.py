"""SRDataModule: configs, the sample split, DDP sharding, worker determinism and exact resume."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import numpy as np
import pytest
import torch
from PIL import Image

from esrgan_lit.data import SRDataModule
from esrgan_lit.data.sample import MARKER, TRAIN_PHOTOS, VAL_PHOTOS, build_sample
from esrgan_lit.data.sources import DataNotFoundError
from esrgan_lit.ops import imresize

SET5 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "benchmarks" / "Set5"
CONFIGS = ["div2k", "df2k", "df2k_ost", "folder", "sample", "benchmarks"]


def _compose(name: str, data_dir: Path, *overrides: str):
    from hydra import compose, initialize_config_dir

    from esrgan_lit.config import config_dir

    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose(overrides=[f"+data={name}", f"+paths.data_dir={data_dir}", *overrides])


def _fake_trainer(rank: int, world: int) -> SimpleNamespace:
    return SimpleNamespace(
        world_size=world,
        global_rank=rank,
        training=False,
        _accelerator_connector=SimpleNamespace(use_distributed_sampler=False),
    )


@pytest.mark.parametrize("name", CONFIGS)
def test_every_data_config_instantiates(name: str, tmp_path: Path) -> None:
    from hydra.utils import instantiate

    extra = ["data.train_sets.folder.hr=/x"] if name == "folder" else []
    cfg = _compose(name, tmp_path, *extra)
    assert cfg.data.gt_size == 128 and cfg.data.batch_size == 16 and cfg.data.download is False
    dm = instantiate(cfg.data)
    assert isinstance(dm, SRDataModule) and dm.scale == 4
    expected_val = {
        "div2k": ["Set5", "Set14"],
        "df2k": ["Set5", "Set14"],
        "df2k_ost": ["Set5", "Set14"],
        "folder": [],
        "sample": ["sample"],
        "benchmarks": ["Set5", "Set14", "BSD100", "Urban100", "Manga109", "PIRM"],
    }[name]
    assert dm.val_set_names == expected_val


def test_default_data_absent_says_how_to_get_it(tmp_path: Path) -> None:
    from hydra.utils import instantiate

    dm = instantiate(_compose("div2k", tmp_path / "nowhere").data)
    with pytest.raises(DataNotFoundError) as info:
        dm.setup("fit")
    msg = str(info.value)
    assert "nowhere/DIV2K/DIV2K_train_HR does not exist" in msg
    for hint in ("data.download=true", "data.train_sets.div2k.hr", "data=sample"):
        assert hint in msg


def test_sample_split_is_built_once_atomically(tmp_path: Path) -> None:
    root = build_sample(tmp_path / "sample")
    train = sorted(p.stem for p in (root / "train").iterdir())
    val = sorted(p.stem for p in (root / "val").iterdir())
    assert train == sorted(TRAIN_PHOTOS) and val == sorted(VAL_PHOTOS) and not set(train) & set(val)
    import skimage.data

    assert np.array_equal(
        np.asarray(Image.open(root / "val" / "coffee.png")), skimage.data.coffee()
    )
    stamp = (root / "train" / "astronaut.png").stat().st_mtime_ns
    build_sample(root)  # idempotent: nothing rewritten
    assert (root / "train" / "astronaut.png").stat().st_mtime_ns == stamp
    (root / MARKER).unlink()  # an interrupted build (no marker) is redone
    (root / "val" / "rocket.png").unlink()
    build_sample(root)
    assert (root / "val" / "rocket.png").is_file() and (root / MARKER).is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dirs left


def test_sample_config_end_to_end(tmp_path: Path) -> None:
    from hydra.utils import instantiate

    cfg = _compose("sample", tmp_path, "data.batch_size=4", "data.gt_size=32")
    dm = instantiate(cfg.data)
    dm.prepare_data()
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["lq"].shape == (4, 3, 8, 8) and batch["gt"].shape == (4, 3, 32, 32)
    assert len(dm.train_dataloader()) == 5 * 160 // 4
    (val,) = dm.val_dataloader()
    names = [b["name"][0] for b in val]
    assert names == ["coffee", "rocket"]
    # Hydra hands over DictConfigs; nothing of them may reach a checkpoint (weights_only loads)
    assert type(dm.cfg.train_sets) is dict and not dict(dm.hparams)
    # data.rgb_permute reaches the loader: the same patches, channels reordered per sample
    cfg = _compose(
        "sample", tmp_path, "data.batch_size=4", "data.gt_size=32", "data.rgb_permute=true"
    )
    perm = instantiate(cfg.data)
    perm.setup("fit")
    other = next(iter(perm.train_dataloader()))
    sums, other_sums = batch["gt"].sum((2, 3)), other["gt"].sum((2, 3))
    torch.testing.assert_close(sums.sort(1).values, other_sums.sort(1).values)
    assert not torch.equal(sums, other_sums)


@pytest.mark.skipif(not SET5.is_dir(), reason="shared Set5 absent")
def test_validation_on_two_ranks_equals_single_process() -> None:
    """Set5 on 2 ranks: every image exactly once, so summed metrics equal one process's."""

    def psnr_sums(rank: int, world: int) -> tuple[float, int, list[str]]:
        dm = SRDataModule(scale=4, val_sets={"Set5": str(SET5)}, num_workers=0)
        dm.trainer = _fake_trainer(rank, world)
        dm.setup("validate")
        total, count, names = 0.0, 0, []
        for batch in dm.val_dataloader()[0]:
            up = imresize(batch["lq"].double(), 4).clamp(0, 1)
            mse = torch.mean((up - batch["gt"].double()) ** 2).item()
            total += 10 * math.log10(1 / mse)
            count += 1
            names += batch["name"]
        return total, count, names

    single = psnr_sums(0, 1)
    r0, r1 = psnr_sums(0, 2), psnr_sums(1, 2)
    assert single[1] == 5 and r0[1] + r1[1] == 5
    assert sorted(r0[2] + r1[2]) == sorted(single[2])
    assert (r0[0] + r1[0]) / 5 == pytest.approx(single[0] / 5, abs=1e-12)


def _tiny_set(root: Path, n: int = 5) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        arr = np.random.default_rng(i).integers(0, 256, size=(40, 44, 3), dtype=np.uint8)
        Image.fromarray(arr).save(root / f"{i:04d}.png")
    return root


def test_workers_do_not_change_the_stream(tmp_path: Path) -> None:
    hr = _tiny_set(tmp_path / "hr")

    def batches(workers: int) -> list[torch.Tensor]:
        dm = SRDataModule(
            scale=4,
            gt_size=16,
            batch_size=2,
            num_workers=workers,
            seed=5,
            train_sets={"t": str(hr)},
            enlarge_ratio=2,
            persistent_workers=False,
        )
        dm.setup("fit")
        return [b["lq"] for b in dm.train_dataloader()]

    a, b = batches(0), batches(2)
    assert len(a) == 5
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


class _Recorder(L.LightningModule):
    """Records a fingerprint of every training batch it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.seen: list[list[float]] = []

    def training_step(self, batch, batch_idx):
        self.seen.append([round(float(v), 6) for v in batch["gt"].sum(dim=(1, 2, 3))])
        return (self.w * batch["gt"].mean()).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(
    hr: Path, steps: int, ckpt_dir: Path | None = None, ckpt_path: str | None = None, every: int = 0
) -> list[list[float]]:
    from lightning.pytorch.callbacks import ModelCheckpoint

    dm = SRDataModule(
        scale=4,
        gt_size=16,
        batch_size=2,
        num_workers=0,
        seed=11,
        train_sets={"t": str(hr)},
        enlarge_ratio=1,
    )  # 5 images -> 2 batches/epoch
    callbacks = (
        [ModelCheckpoint(dirpath=ckpt_dir, every_n_train_steps=every, save_last=True)]
        if ckpt_dir
        else []
    )
    trainer = L.Trainer(
        max_steps=steps,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=bool(ckpt_dir),
        callbacks=callbacks,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,
    )
    model = _Recorder()
    trainer.fit(model, datamodule=dm, ckpt_path=ckpt_path)
    return model.seen


@pytest.mark.parametrize("first", [3, 4])  # mid-epoch and exactly at an epoch end
def test_resume_continues_the_exact_stream(tmp_path: Path, first: int) -> None:
    hr = _tiny_set(tmp_path / "hr")
    straight = _fit(hr, 7)
    assert len(straight) == 7 and len({str(s) for s in straight}) > 3
    head = _fit(hr, first, ckpt_dir=tmp_path / "ckpt", every=first)
    assert head == straight[:first]
    ckpt = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True)
    assert ckpt["SRDataModule"]["batches_done"] == (first - 1) % 2 + 1  # 2 batches per epoch
    tail = _fit(hr, 7, ckpt_path=str(tmp_path / "ckpt" / "last.ckpt"))
    assert tail == straight[first:]


def test_prepare_data_downloads_only_when_asked(tmp_path: Path, monkeypatch) -> None:
    from hydra.utils import instantiate

    from esrgan_lit.data import download

    calls = []
    monkeypatch.setattr(
        download, "fetch_all", lambda specs, root, **kw: calls.append((specs, root, kw))
    )
    instantiate(_compose("df2k", tmp_path).data, _convert_="all").prepare_data()
    assert calls == []
    dm = instantiate(_compose("df2k", tmp_path, "data.download=true").data, _convert_="all")
    dm.prepare_data()
    assert calls == [
        (["div2k", "flickr2k", "benchmarks"], str(tmp_path), {"allow_unverified": False})
    ]

"""``SRDataModule``: training patches, named validation/test sets and prediction inputs.

Sets are given as ``name -> spec``; a spec is an HR path string or a mapping with ``hr`` and
optionally ``lr`` (folder, sub-image folder or LMDB), or ``root`` (a folder of HR images, or a
benchmark folder laid out as ``root/HR`` + ``root/LR_bicubic/X{scale}``). Every file is checked
in ``setup`` (sizes, partners, truncation) so a bad dataset fails before training starts.

The module shards data itself (the trainer must run with ``use_distributed_sampler=False``):
training through ``TrainSampler`` (a pure function of seed, epoch and position, resumable
mid-epoch through ``state_dict``/``load_state_dict``), evaluation through ``ShardSampler``
(no padding, so DDP metrics equal single-process ones).
"""

from __future__ import annotations

import logging
import os
import random
import warnings
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from esrgan_lit.data.datasets import (
    EvalDataset,
    PredictDataset,
    TrainDataset,
    eval_collate,
    train_collate,
)
from esrgan_lit.data.degrade import build_degrader, crop_pad_size
from esrgan_lit.data.pairs import Pair
from esrgan_lit.data.samplers import ShardSampler, TrainSampler
from esrgan_lit.data.set_specs import as_set_dict, plain, set_pairs, spec_hr, whole_number
from esrgan_lit.data.sources import DataNotFoundError, open_source

log = logging.getLogger(__name__)


def _worker_init(worker_id: int) -> None:
    """Seed NumPy/random in each worker from torch's per-worker seed (itself from the loader's
    generator), for any user code that draws from the global generators."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


class SRDataModule(L.LightningDataModule):
    """DIV2K / Flickr2K / OST / any folder for training, benchmark sets for validation and test.

    Batches: train ``{"lq": (B,3,p,p), "gt": (B,3,p*s,p*s)}``; val/test ``{"lq": (1,C,h,w),
    "gt": (1,C,H,W), "name": [stem], "grey": [bool]}`` (C = 1 for grey images); predict
    ``{"lq", "name", "grey"}``. ``val_dataloader()`` returns one loader per set, named by
    ``val_set_names`` (same for test and predict).
    """

    def __init__(
        self,
        *,
        scale: int = 4,
        gt_size: int = 128,
        batch_size: int = 16,
        num_workers: int = 4,
        pin_memory: bool = True,
        persistent_workers: bool = False,
        prefetch_factor: int | None = None,
        train_sets: Any = None,
        val_sets: Any = None,
        test_sets: Any = None,
        predict_sets: Any = None,
        enlarge_ratio: int = 1,
        samples_per_epoch: int | None = None,
        use_hflip: bool = True,
        use_rot: bool = True,
        rgb_permute: bool = False,
        cache: bool = False,
        cache_threads: int = 4,
        check_files: str = "quick",
        skip_bad_files: bool = False,
        val_batch_size: int = 1,
        val_num_workers: int | None = None,
        seed: int = 0,
        download: bool = False,
        downloads: Any = None,
        data_dir: str | None = None,
        allow_unverified: bool = False,
        sample_dir: str | None = None,
        degradation: Any = None,
    ) -> None:
        super().__init__()
        if check_files not in ("quick", "full", "none"):
            raise ValueError(f"data.check_files must be quick|full|none, got {check_files!r}")
        scale, gt_size = whole_number("scale", scale), whole_number("gt_size", gt_size)
        batch_size, num_workers = (
            whole_number("batch_size", batch_size),
            whole_number("num_workers", num_workers, 0),
        )
        enlarge_ratio, val_batch_size = (
            whole_number("enlarge_ratio", enlarge_ratio),
            whole_number("val_batch_size", val_batch_size),
        )
        samples_per_epoch = whole_number("samples_per_epoch", samples_per_epoch, optional=True)
        if gt_size % scale:
            raise ValueError(f"data.gt_size={gt_size} must be a multiple of scale {scale}")
        # plain containers only (no DictConfig): nothing of ours in a checkpoint needs unpickling
        # beyond ints, so checkpoints load with weights_only=True
        args = {k: plain(v) for k, v in locals().items() if k not in ("self", "__class__")}
        self.cfg = SimpleNamespace(**args)
        self.scale, self.gt_size, self.batch_size = int(scale), int(gt_size), int(batch_size)
        self.num_workers = int(num_workers)
        self.train_specs = as_set_dict(self.cfg.train_sets)
        self.val_specs = as_set_dict(self.cfg.val_sets)
        self.test_specs = as_set_dict(self.cfg.test_sets) if test_sets is not None else None
        self.predict_specs = as_set_dict(self.cfg.predict_sets)
        self.train_set: TrainDataset | None = None
        self.val_sets: list[EvalDataset] = []
        self.test_sets: list[EvalDataset] = []
        self.predict_datasets: list[PredictDataset] = []
        self._sampler: TrainSampler | None = None
        self._progress = {"epoch": 0, "batches_done": 0}
        self._pending_resume: dict[str, int] | None = None
        # Evaluation shards are unpadded (ShardSampler), so a set smaller than the number of
        # processes leaves some ranks an empty share (Set5 on 8 GPUs): allowed, and SRMetrics
        # computes every set on every rank. Training shares are always equal (TrainSampler).
        self.allow_zero_length_dataloader_with_multiple_devices = True
        # data/degradation=realesrgan: LR synthesised on the training device (data/degrade.py)
        self._degrader = build_degrader(self.cfg.degradation, self.scale, int(seed), self.gt_size)
        # data.degradation.crop_pad_size: the loader crops bigger patches for the degrader to cut
        self.crop_size = (
            crop_pad_size(self.cfg.degradation, self.scale, self.gt_size)
            if self._degrader
            else None
        )

    # ----------------------------------------------------------------------------- names
    @property
    def val_set_names(self) -> list[str]:
        return list(self.val_specs)

    @property
    def test_set_names(self) -> list[str]:
        return list(self.val_specs if self.test_specs is None else self.test_specs)

    @property
    def predict_set_names(self) -> list[str]:
        return list(self.predict_specs)

    # ----------------------------------------------------------------------------- setup
    def _rank_world(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0, 1
        world = int(trainer.world_size)
        if world > 1:
            connector = getattr(trainer, "_accelerator_connector", None)
            if getattr(connector, "use_distributed_sampler", False):
                raise RuntimeError(
                    "SRDataModule shards the data across ranks itself: run the trainer with "
                    "use_distributed_sampler=False (trainer.use_distributed_sampler=false)"
                )
        return int(trainer.global_rank), world

    def prepare_data(self) -> None:
        """Build the sample split and/or download archives (Lightning: once per node)."""
        hp = self.cfg
        if hp.sample_dir:
            from esrgan_lit.data.sample import build_sample

            build_sample(hp.sample_dir)
        if hp.download:
            if not hp.downloads:
                raise ValueError("data.download=true but data.downloads lists no archives")
            from esrgan_lit.data.download import fetch_all

            root = hp.data_dir or os.environ.get("ESRGAN_LIT_DATA_DIR", "data")
            fetch_all(hp.downloads, root, allow_unverified=hp.allow_unverified)

    def _pairs(self, name: str, spec: Any, field: str, min_size: int) -> list[Pair]:
        hp = self.cfg
        return set_pairs(
            name,
            spec,
            field,
            scale=self.scale,
            min_size=min_size,
            check_files=hp.check_files,
            skip_bad_files=hp.skip_bad_files,
            data_dir=hp.data_dir or os.environ.get("ESRGAN_LIT_DATA_DIR", "data"),
            downloads=hp.downloads,
        )

    def _eval_sets(self, specs: dict[str, Any], field: str) -> list[EvalDataset]:
        """The named sets; an absent one marked ``optional: true`` (the default Set5/Set14) is
        dropped from ``specs`` with one warning, so training on your own data needs no benchmarks."""
        sets, skipped = [], []
        for n, s in list(specs.items()):
            try:
                sets.append(EvalDataset(self._pairs(n, s, field, 0), scale=self.scale, name=n))
            except DataNotFoundError as err:
                if not (isinstance(s, Mapping) and s.get("optional")):
                    raise
                skipped.append(f"{n} ({str(err).split('. To fix')[0]})")
                del specs[n]
        if skipped and self._rank_world()[0] == 0:  # once, not once per DDP rank
            log.warning(
                "%s skipped: optional validation data not found; validation runs on the remaining "
                "%d set(s). Fetch the benchmarks with data.download=true, or point "
                "data.%s.NAME.root=PATH at a copy.",
                ", ".join(skipped),
                len(sets),
                field,
            )
        return sets

    def setup(self, stage: str | None = None) -> None:
        hp = self.cfg
        if hp.sample_dir:
            from esrgan_lit.data.sample import build_sample

            build_sample(hp.sample_dir)  # no-op when prepare_data already built it
        if stage in (None, "fit") and self.train_set is None:
            if not self.train_specs:
                raise ValueError("data.train_sets is empty: nothing to train on")
            pairs = [
                p
                for n, s in self.train_specs.items()
                for p in self._pairs(n, s, "train_sets", self.gt_size)
            ]
            self.train_set = TrainDataset(
                pairs,
                scale=self.scale,
                gt_size=self.gt_size,
                crop_size=self.crop_size,
                use_hflip=hp.use_hflip,
                use_rot=hp.use_rot,
                rgb_permute=hp.rgb_permute,
                skip_bad_files=hp.skip_bad_files,
                make_lr=self._degrader is None,  # a degrader replaces the loader's LR
            )
            if hp.cache:
                nbytes = self.train_set.fill_cache(hp.cache_threads)
                log.info("cached %d training images (%.1f MiB)", len(pairs), nbytes / 2**20)
        if stage in (None, "fit", "validate") and not self.val_sets:
            self.val_sets = self._eval_sets(self.val_specs, "val_sets")
        if stage in (None, "test") and not self.test_sets:
            if self.test_specs is None:
                self.test_sets = self.val_sets or self._eval_sets(self.val_specs, "val_sets")
            else:
                self.test_sets = self._eval_sets(self.test_specs, "test_sets")
        if stage in (None, "predict") and not self.predict_datasets:
            self.predict_datasets = [
                PredictDataset(open_source(spec_hr(s), what=f"{n}: input folder"))
                for n, s in self.predict_specs.items()
            ]

    # ----------------------------------------------------------------------------- loaders
    def _pin(self) -> bool:
        return bool(self.cfg.pin_memory) and torch.cuda.is_available()

    def train_dataloader(self) -> DataLoader:
        if self.train_set is None:
            self.setup("fit")
        assert self.train_set is not None
        hp = self.cfg
        rank, world = self._rank_world()
        total = hp.samples_per_epoch or len(self.train_set) * int(hp.enlarge_ratio)
        self._sampler = TrainSampler(
            len(self.train_set),
            batch_size=self.batch_size,
            samples_per_epoch=total,
            seed=hp.seed,
            rank=rank,
            world_size=world,
        )
        if self._pending_resume is not None:
            self._sampler.resume(**self._pending_resume)
            self._pending_resume = None
        workers = self.num_workers
        return DataLoader(
            self.train_set,
            batch_size=self.batch_size,
            sampler=self._sampler,
            drop_last=True,
            collate_fn=train_collate,
            num_workers=workers,
            pin_memory=self._pin(),
            persistent_workers=bool(hp.persistent_workers) and workers > 0,
            prefetch_factor=hp.prefetch_factor if workers > 0 else None,
            worker_init_fn=_worker_init,
            # a private generator: creating iterators never consumes the global torch RNG
            generator=torch.Generator().manual_seed(int(hp.seed) * 1000 + rank),
        )

    def _eval_loaders(self, sets: list[Any]) -> list[DataLoader]:
        rank, world = self._rank_world()
        hp = self.cfg
        workers = self.num_workers if hp.val_num_workers is None else int(hp.val_num_workers)
        return [
            DataLoader(
                ds,
                batch_size=int(hp.val_batch_size),
                sampler=ShardSampler(len(ds), rank=rank, world_size=world),
                num_workers=workers,
                pin_memory=self._pin(),
                collate_fn=eval_collate,
                generator=torch.Generator().manual_seed(0),
            )
            for ds in sets
        ]

    def val_dataloader(self) -> list[DataLoader]:
        if not self.val_sets and self.val_specs:
            self.setup("validate")
        return self._eval_loaders(self.val_sets)

    def test_dataloader(self) -> list[DataLoader]:
        if not self.test_sets:
            self.setup("test")
        return self._eval_loaders(self.test_sets)

    def predict_dataloader(self) -> list[DataLoader]:
        if not self.predict_datasets:
            self.setup("predict")
        return self._eval_loaders(self.predict_datasets)

    # ----------------------------------------------------------------------------- resume
    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Count training batches actually handed to the model (not prefetched ones)."""
        trainer = getattr(self, "trainer", None)
        if trainer is not None and trainer.training and self._sampler is not None:
            epoch = self._sampler.epoch
            if self._progress["epoch"] != epoch:
                self._progress = {"epoch": epoch, "batches_done": 0}
            self._progress["batches_done"] += 1
        return batch

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Training batches: synthesise LR on the device (``data.degradation``); eval untouched."""
        trainer = getattr(self, "trainer", None)
        if self._degrader is not None and trainer is not None and trainer.training:
            self._degrader.rank = int(trainer.global_rank)
            return self._degrader(batch)
        return batch

    def state_dict(self) -> dict[str, Any]:
        """Position of the training stream: epoch and batches consumed in it (plus what makes
        the positions comparable). Lightning stores it in every checkpoint."""
        _, world = self._rank_world() if getattr(self, "trainer", None) else (0, 1)
        state = {
            "epoch": int(self._progress["epoch"]),
            "batches_done": int(self._progress["batches_done"]),
            "seed": int(self.cfg.seed),
            "batch_size": self.batch_size,
            "world_size": world,
        }
        if self._degrader is not None:
            state["degradation"] = self._degrader.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume the training stream right after the last batch the checkpoint had trained on."""
        for key in ("seed", "batch_size", "world_size"):
            if key in state and key != "world_size" and state[key] != self.state_dict()[key]:
                log.warning(
                    "resuming with data.%s=%s, checkpoint had %s: the data order differs",
                    key,
                    self.state_dict()[key],
                    state[key],
                )
        resume = {"epoch": int(state["epoch"]), "batches_done": int(state["batches_done"])}
        # Lightning warns that a plain DataLoader cannot resume mid-epoch; ours does (above)
        warnings.filterwarnings(
            "ignore", message="You're resuming from a checkpoint that ended before"
        )
        self._progress = dict(resume)
        if self._degrader is not None:
            self._degrader.load_state_dict(state.get("degradation") or {})
        if self._sampler is not None:
            self._sampler.resume(**resume)
        else:
            self._pending_resume = resume

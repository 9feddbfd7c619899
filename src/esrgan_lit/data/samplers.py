"""Samplers that make the data stream a pure function of (seed, epoch, position).

``TrainSampler`` yields ``(index, sample_seed)`` pairs: the order of an epoch comes from
``(seed, epoch)`` and each sample's crop/flip randomness from ``(seed, epoch, position)``, so the
stream does not depend on worker count, prefetching or process restarts, and a resumed run can
skip exactly the batches it already trained on (``resume``). Under DDP each rank takes a strided
share (equal, tail dropped). ``ShardSampler`` splits evaluation sets across ranks without padding
or duplicates, so per-rank sums add up to the single-process metric.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


_MASK64 = (1 << 64) - 1


def sample_seed(seed: int, epoch: int, position: int) -> int:
    """Independent 64-bit seed for one training sample (a SplitMix64 hash chain: cheap, and
    well mixed even for neighbouring positions)."""
    return _splitmix64(_splitmix64(_splitmix64(seed & _MASK64) ^ epoch) ^ position)


class TrainSampler(Sampler[tuple[int, int]]):
    """Shuffled, enlarged, rank-split, resumable training order.

    ``samples_per_epoch`` samples (all ranks together) are drawn per epoch by concatenating
    permutations of the dataset; each rank gets ``len(self)`` of them, a multiple of
    ``batch_size`` so every rank runs the same number of full batches.
    """

    def __init__(
        self,
        num_items: int,
        *,
        batch_size: int,
        samples_per_epoch: int | None = None,
        seed: int = 0,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if num_items <= 0:
            raise ValueError("TrainSampler needs a non-empty dataset")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        self.num_items = num_items
        self.batch_size = batch_size
        self.total = int(samples_per_epoch or num_items)
        self.seed = int(seed)
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.batches_per_epoch = self.total // (world_size * batch_size)
        if self.batches_per_epoch == 0:
            raise ValueError(
                f"{self.total} samples per epoch cannot fill one batch of {batch_size} on each of "
                f"{world_size} rank(s): raise data.enlarge_ratio or data.samples_per_epoch"
            )
        self.epoch = 0
        self._skip: tuple[int, int] | None = None  # (epoch, batches) still to skip

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch."""
        self.epoch = int(epoch)

    def resume(self, epoch: int, batches_done: int) -> None:
        """Make the next pass over ``epoch`` start after its first ``batches_done`` batches."""
        self.epoch = int(epoch)
        self._skip = (int(epoch), int(batches_done))

    def order(self, epoch: int) -> np.ndarray:
        """Dataset indices of the whole epoch (all ranks), position by position."""
        if not self.shuffle:
            return np.arange(self.total) % self.num_items
        rng = np.random.default_rng([self.seed & 0xFFFFFFFF, epoch])
        reps = -(-self.total // self.num_items)
        return np.concatenate([rng.permutation(self.num_items) for _ in range(reps)])[: self.total]

    def __len__(self) -> int:
        return self.batches_per_epoch * self.batch_size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        start = 0
        if self._skip is not None:
            if self._skip[0] == epoch:
                start = min(self._skip[1], self.batches_per_epoch) * self.batch_size
            self._skip = None
        order = self.order(epoch)
        for i in range(start, len(self)):
            position = i * self.world_size + self.rank
            yield int(order[position]), sample_seed(self.seed, epoch, position)


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world_size, ...``: every sample exactly once over all ranks."""

    def __init__(self, num_items: int, *, rank: int = 0, world_size: int = 1) -> None:
        self.indices = list(range(rank, num_items, world_size))

    def set_epoch(self, epoch: int) -> None:  # Lightning calls it on every sampler
        pass

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

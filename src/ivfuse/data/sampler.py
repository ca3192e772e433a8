"""Seeded, resumable, shardable sampling: which pair, and which augmentation seed, at each step."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data.distributed import DistributedSampler

__all__ = ["PairSampler", "sample_seed"]


def sample_seed(seed: int, epoch: int, position: int) -> int:
    """The augmentation seed of the sample at ``position`` of ``epoch`` (a 63-bit int)."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 0x5EED, int(epoch), int(position)])
               .generate_state(2, np.uint64)[0] >> np.uint64(1))


class PairSampler(DistributedSampler):
    """Seeded, resumable, shardable sampler yielding ``(index, sample_seed)``.

    Each epoch shuffles the indices with ``seed + epoch`` (like :class:`DistributedSampler`) and
    wraps the permutation around so that every process gets a whole number of batches
    (``steps_per_epoch = ceil(N / (batch_size * world_size))``); process ``rank`` takes positions
    ``rank, rank + world_size, ...``. :meth:`set_start` skips the first batches of the epoch,
    which is how a resumed run continues mid-epoch without reading the skipped images.

    Args:
        dataset: the dataset (only its length is used).
        batch_size: samples per step per process.
        num_replicas, rank: the process group (default: one process).
        seed: the run's seed.
        shuffle: shuffle each epoch.
    """

    def __init__(
        self, dataset, batch_size: int, num_replicas: int = 1, rank: int = 0, seed: int = 0, shuffle: bool = True
    ):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=False)
        self.batch_size = int(batch_size)
        n = len(dataset)
        self.steps_per_epoch = max(1, math.ceil(n / (self.batch_size * self.num_replicas)))
        self.num_samples = self.steps_per_epoch * self.batch_size
        self.total_size = self.num_samples * self.num_replicas
        self.start_batch = 0

    def set_start(self, batch: int) -> None:
        """Begin the current epoch at this batch (0 <= batch < steps_per_epoch)."""
        if not 0 <= batch < self.steps_per_epoch:
            raise ValueError(f"start batch {batch} outside [0, {self.steps_per_epoch})")
        self.start_batch = int(batch)

    def _positions(self) -> list[tuple[int, int]]:
        n = len(self.dataset)
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed + self.epoch)
            perm = torch.randperm(n, generator=g).tolist()
        else:
            perm = list(range(n))
        reps = math.ceil(self.total_size / n)
        full = (perm * reps)[: self.total_size]
        pos = list(range(self.rank, self.total_size, self.num_replicas))
        return [(full[p], p) for p in pos]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        items = self._positions()[self.start_batch * self.batch_size :]
        for idx, p in items:
            yield idx, sample_seed(self.seed, self.epoch, p)

    def __len__(self) -> int:
        return self.num_samples - self.start_batch * self.batch_size

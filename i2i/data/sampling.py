"""Data order: the epoch sampler (shuffled ``(epoch, index)`` keys, rank shards, mid-epoch
resume) and the per-sample seed augmentation draws from, so batches are pure functions of
``(seed, epoch, index)`` whatever the worker count."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """Deterministic 31-bit seed for one sample's augmentation."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0] & 0x7FFFFFFF)


class EpochSampler(Sampler[tuple[int, int]]):
    """Shuffled (or ordered) ``(epoch, index)`` keys for one epoch, sharded across ranks, resumable mid-epoch.

    The order of epoch ``e`` is a permutation seeded by ``(seed, e)``; rank ``r`` of ``w``
    takes every ``w``-th index starting at ``r`` (padding by wrap-around so ranks get
    equal counts), like ``DistributedSampler``. ``set_epoch(e, start)`` skips the first
    ``start`` indices of this rank's share, which is how a resumed run continues with the
    exact batch it would have seen.
    """

    def __init__(self, size: int, *, shuffle: bool = True, seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        self.size, self.shuffle, self.seed = size, shuffle, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.start = 0, 0
        self.per_rank = math.ceil(size / world_size)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def indices(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.size, generator=g).tolist()
        else:
            order = list(range(self.size))
        total = self.per_rank * self.world_size
        order += order[: total - len(order)]
        return order[self.rank : total : self.world_size]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter([(self.epoch, i) for i in self.indices()[self.start :]])

    def __len__(self) -> int:
        return max(0, self.per_rank - self.start)

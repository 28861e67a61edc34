"""What feeds a training run: the training dataset, its epoch sampler and loader, the fixed
preview batch, and the length of an epoch and of the run."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader

from .. import dist
from ..config import Config
from ..data.cache import CacheTooLarge
from ..data.datasets import DataError
from ..data.io import ImageReadError
from ..data.sampling import EpochSampler
from .memory import available_bytes


class TrainingFeed:
    """The data of a run on rank ``rank`` of ``world``. Batches are pure functions of
    ``(seed, epoch, index)``; the loader gets a private generator, so creating its iterators
    does not consume the global RNG (a resumed run would otherwise draw other dropout masks)."""

    def __init__(self, cfg: Config, pipe: type, *, rank: int, world: int, pin_memory: bool) -> None:
        self.dataset = pipe.make_dataset(cfg, train=True)
        if cfg.data.cache == "memory":  # before the loader's workers start: they share the arrays
            free = available_bytes(torch.device("cpu"))
            try:
                self.dataset.cache_in_memory(budget=free // 2 if free else None)
            except CacheTooLarge as e:
                raise DataError(str(e)) from None
        try:
            preview = pipe.make_dataset(cfg, train=False, root=cfg.data.val_root or None)
        except DataError as e:
            raise DataError(f"data.val_root: {e}" if cfg.data.val_root else str(e)) from None
        self.preview_batch = torch.utils.data.default_collate([preview[i] for i in range(min(4, len(preview)))])
        self.sampler = EpochSampler(len(self.dataset), shuffle=True, seed=cfg.seed, rank=rank, world_size=world)
        bs, workers = cfg.data.batch_size, cfg.data.num_workers
        self.steps_per_epoch = math.ceil(self.sampler.per_rank / bs)
        self.total_steps = cfg.train.steps if cfg.train.steps is not None else cfg.train.epochs * self.steps_per_epoch
        if workers > 0:
            dist.kill_workers_at_exit()
        self.loader = DataLoader(self.dataset, batch_size=bs, sampler=self.sampler, num_workers=workers, pin_memory=pin_memory,
                                 persistent_workers=workers > 0, generator=torch.Generator().manual_seed(cfg.seed),
                                 worker_init_fn=dist.die_with_parent if workers > 0 else None)

    def close(self) -> None:
        """Let the loader's persistent workers exit now (they ignore stop signals, so they are
        told through their queues rather than left for the exit handlers)."""
        iterator = getattr(self.loader, "_iterator", None)
        if iterator is not None and hasattr(iterator, "_shutdown_workers"):
            iterator._shutdown_workers()
            self.loader._iterator = None


def data_errors_in_one_line(loader: DataLoader) -> Iterator[Any]:
    """The loader's batches; a worker's ImageReadError / DataError comes back with the worker's
    traceback in its message: re-raise it as the one line that names the file."""
    try:
        yield from loader
    except (ImageReadError, DataError) as e:
        line = str(e).strip().splitlines()[-1]
        raise type(e)(line.split(": ", 1)[1] if line.startswith(("i2i.", type(e).__name__)) else line) from None

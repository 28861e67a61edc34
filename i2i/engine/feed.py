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
from ..data.base import DataError
from ..data.cache import CacheTooLarge, estimated_bytes, format_bytes
from ..data.device import DeviceBatches, DeviceImages
from ..data.io import ImageReadError
from ..data.sampling import EpochSampler
from ..dist import available_bytes


class TrainingFeed:
    """The data of a run on rank ``rank`` of ``world``. Batches are pure functions of
    ``(seed, epoch, index)``; the loader gets a private generator, so creating its iterators
    does not consume the global RNG (a resumed run would otherwise draw other dropout masks)."""

    def __init__(self, cfg: Config, pipe: type, *, rank: int, world: int, device: torch.device) -> None:
        self.dataset = pipe.make_dataset(cfg, train=True)
        try:
            preview = pipe.make_dataset(cfg, train=False, root=cfg.data.val_root or None)
        except DataError as e:
            raise DataError(f"data.val_root: {e}" if cfg.data.val_root else str(e)) from None
        self.preview_batch = torch.utils.data.default_collate([preview[i] for i in range(min(4, len(preview)))])
        self.sampler = EpochSampler(len(self.dataset), shuffle=True, seed=cfg.seed, rank=rank, world_size=world)
        bs, workers = cfg.data.batch_size, cfg.data.num_workers
        self.steps_per_epoch = math.ceil(self.sampler.per_rank / bs)
        self.total_steps = cfg.train.steps if cfg.train.steps is not None else cfg.train.epochs * self.steps_per_epoch
        self.cache, self.cache_reason = self._choose_cache(cfg.data.cache, device)
        self.on_device: DeviceImages | None = None
        if self.cache in ("memory", "device"):  # before the loader's workers start: they share the arrays
            try:
                self.dataset.cache_in_memory(budget=self._budget(torch.device("cpu"), "memory"))
            except ImageReadError as e:
                raise type(e)(f"{e} (found while decoding the training images for data.cache: {self.cache}"
                              f"{' (auto)' if self.auto else ''}, before any step; nothing was written: fix or "
                              "remove the "
                              "file, or set data.cache: none to train until the loader meets it)") from None
            except CacheTooLarge as e:
                if not self.auto:
                    raise DataError(str(e)) from None
                self.dataset.cache, self.dataset.read = None, type(self.dataset).read  # the files, as without a cache
                self.cache, self.cache_reason = "none", f"auto: {e}"
        if self.cache == "device":
            try:
                self.on_device = DeviceImages(self.dataset.device_keys(), self.dataset.device_image, device,
                                              budget=self._budget(device, "device"))
            except CacheTooLarge as e:
                if not self.auto:
                    raise DataError(str(e)) from None
                self.cache, self.cache_reason = "memory", f"auto: {e}"
        self.loader: DataLoader | DeviceBatches
        if self.on_device is not None:
            self.loader = DeviceBatches(self.dataset, self.sampler, bs, self.on_device)
            return
        if workers > 0:
            dist.kill_workers_at_exit()
        self.loader = DataLoader(self.dataset, batch_size=bs, sampler=self.sampler, num_workers=workers,
                                 pin_memory=device.type == "cuda", persistent_workers=workers > 0,
                                 generator=torch.Generator().manual_seed(cfg.seed),
                                 worker_init_fn=dist.die_with_parent if workers > 0 else None)

    def _budget(self, device: torch.device, cache: str) -> int | None:
        """What ``cache`` (memory, device) may take on ``device``: half the memory free now when
        asked for by name, a quarter when chosen by ``auto``."""
        free = available_bytes(device)
        return None if not free else free // (4 if self.auto else 2)

    def _choose_cache(self, asked: str, device: torch.device) -> tuple[str, str]:
        """``(cache, why)``: ``asked`` itself, or for ``auto``: ``device`` on CUDA when the dataset
        can augment there and is estimated to fit a quarter of the free GPU memory, else ``memory``
        when it fits a quarter of the RAM available, else ``none`` (the loader reads the files)."""
        self.auto = asked == "auto"
        if asked == "device" and not self.dataset.on_device:
            raise DataError(f"data.cache: device is not supported by {type(self.dataset).__name__}"
                            + (" with whole images (data.full_images)" if hasattr(self.dataset, "full") else "")
                            + "; use data.cache: memory")
        if not self.auto:
            return asked, ""
        files = self.dataset.image_files()  # none: arrays in memory already (torchvision datasets)
        size = estimated_bytes(files) if files else len(self.dataset) * self.dataset[0]["image"].numel()
        ram = available_bytes(torch.device("cpu")) or 0
        if device.type == "cuda" and self.dataset.on_device:
            gpu = available_bytes(device) or 0
            if size <= gpu // 4:
                return (
                    "device",
                    f"auto: about {format_bytes(size)} of images, within a quarter of the {format_bytes(gpu)} free on "
                    f"{device}",
                )
        if files and size <= ram // 4:
            return (
                "memory",
                f"auto: about {format_bytes(size)} of images, within a quarter of the {format_bytes(ram)} of RAM "
                "available",
            )
        if not files:
            return "none", "auto: the images are in memory already"
        return (
            "none",
            f"auto: about {format_bytes(size)} of images, more than a quarter of the {format_bytes(ram)} of RAM "
            "available",
        )

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

"""Decode each training image once (``data.cache: memory``).

Every dataset reads its files through :attr:`ImageFiles.read`; :meth:`ImageFiles.cache_in_memory`
decodes all of them up front, in the training process, into read-only arrays, and points
``read`` at them. Loader workers started afterwards share the arrays (fork: copy-on-write
pages that are never written), so no worker decodes a file again and every epoch's
augmentation (still drawn from ``(seed, epoch, index)``) sees the same pixels as without the
cache. What is cached is what :func:`~i2i.data.io.read_image` returns (EXIF orientation
applied, uint8 or uint16, H x W x C), before any channel conversion or augmentation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from .io import read_image, to_channels
from .plan import DeviceItem


class DataError(ValueError):
    """The data on disk does not fit what the config asks; the message names the folder or file."""


def require_dir(path: Path, what: str) -> None:
    if not path.exists():
        raise DataError(f"{what} '{path}' does not exist; check the path (see datasets/README.md for the layouts)")
    if not path.is_dir():
        raise DataError(f"{what} '{path}' is not a folder")


def first_items(count: int, limit: int | None, labels: Sequence[int] | None = None) -> list[int]:
    """The indices ``data.max_items`` keeps of ``count`` items in their sorted order: all of them
    (``limit`` None or at least ``count``), else the first ``limit``; with ``labels`` (one class
    per item) spread over the classes, round robin in class order, each class's first items
    first, so that every class keeps about ``limit / classes`` items (a class with fewer keeps
    all of its own and the rest go to the others). Returned in ascending order."""
    if limit is None or limit >= count:
        return list(range(count))
    if labels is None:
        return list(range(limit))
    by_class: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        by_class.setdefault(int(label), []).append(i)
    queues = [by_class[c] for c in sorted(by_class)]
    kept: list[int] = []
    rank = 0
    while len(kept) < limit:
        kept += [q[rank] for q in queues if rank < len(q)][: limit - len(kept)]
        rank += 1
    return sorted(kept)


class CacheTooLarge(ValueError):
    """The decoded images would not fit in the memory the cache may use."""


def format_bytes(n: float) -> str:
    """``n`` bytes in GiB, MiB or KiB with one decimal."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} bytes"


def estimated_bytes(paths: list[Path], sample: int = 32) -> int:
    """About how many bytes ``paths`` decode to (as ``read_image`` returns them), from the
    headers of up to ``sample`` evenly spaced files: a quick look before deciding to cache."""
    from PIL import Image

    if not paths:
        return 0
    picked = paths[:: max(1, len(paths) // sample)][:sample]
    total = 0
    for p in picked:
        try:
            with Image.open(p) as im:
                total += im.width * im.height * len(im.getbands()) * (2 if im.mode.startswith("I;16") or im.mode == "I" else 1)
        except OSError:
            continue  # unreadable: named when it is read
    return total * len(paths) // len(picked)


class DecodedImages:
    """The decoded pixels of ``paths`` (each read once with :func:`read_image`), at most
    ``budget`` bytes in all (None: no limit). Decoding stops with :class:`CacheTooLarge` as
    soon as the total passes the budget, naming the size so far and what to set instead."""

    def __init__(self, paths: Iterable[Path], *, budget: int | None = None, what: str = "the training images") -> None:
        unique = list(dict.fromkeys(str(p) for p in paths))
        self.images: dict[str, np.ndarray] = {}
        self.nbytes = 0
        for i, p in enumerate(unique):
            img = read_image(p)
            self.nbytes += img.nbytes
            if budget is not None and self.nbytes > budget:
                raise CacheTooLarge(
                    f"data.cache: memory cannot hold {what}: the first {i + 1} of {len(unique)} images alone decode to "
                    f"{format_bytes(self.nbytes)} (about {format_bytes(self.nbytes / (i + 1) * len(unique))} for all), over the "
                    f"{format_bytes(budget)} it may use (half of the memory available now); set data.cache: none")
            img.setflags(write=False)  # shared by every epoch and worker: nothing may change it
            self.images[p] = img

    def __len__(self) -> int:
        return len(self.images)

    def read(self, path: str | Path) -> np.ndarray:
        """The cached pixels of ``path`` (read from disk when it was not cached)."""
        img = self.images.get(str(path))
        return img if img is not None else read_image(path)


class ImageFiles(Dataset):
    """What every image dataset shares: reads go through :attr:`read` (the file by default, the
    cache after :meth:`cache_in_memory`), and :meth:`image_files` lists every file an epoch may read."""

    read: Callable[[str | Path], np.ndarray] = staticmethod(read_image)
    cache: DecodedImages | None = None
    #: How many items there were before ``data.max_items`` kept fewer (None: all are used).
    limited_from: int | None = None

    def keep_first(self, items: list, limit: int | None, labels: Sequence[int] | None = None) -> list:
        """``items`` as ``data.max_items`` leaves them (see :func:`first_items`); notes the count before."""
        keep = first_items(len(items), limit, labels)
        if len(keep) < len(items):
            self.limited_from = len(items)
        return [items[i] for i in keep]

    def image_files(self) -> list[Path]:
        """Every image file this dataset reads (override: the default is none)."""
        return []

    #: Whether :meth:`device_item` is implemented (``data.cache: device``).
    on_device: bool = False

    def device_keys(self) -> list[tuple[str, int]]:
        """``(path, channels)`` of every image :meth:`device_item` refers to (``data.cache: device``)."""
        raise NotImplementedError

    def device_image(self, key: tuple[str, int]) -> np.ndarray:
        """The ``(H, W, C)`` pixels cached on the device for ``key``: the file as read, in its channels."""
        return to_channels(self.read(key[0]), key[1])

    def device_item(self, key: tuple[int, int]) -> DeviceItem:
        """Item ``(epoch, index)`` as sources and geometries (see :mod:`i2i.data.device`)."""
        raise NotImplementedError

    def cache_in_memory(self, budget: int | None = None) -> DecodedImages:
        """Decode every file of :meth:`image_files` once and read from memory from now on."""
        self.cache = DecodedImages(self.image_files(), budget=budget, what=f"the images of '{getattr(self, 'root', '?')}'")
        self.read = self.cache.read
        return self.cache

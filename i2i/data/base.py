"""What every dataset kind shares: :class:`ImageFiles` (reads through one function, the memory
cache, the files an epoch may read, ``data.max_items``, the device-cache hooks), :class:`DataError`,
and :class:`CropDataConfig`, the crop-and-augment keys of the image-to-image kinds.

A dataset kind is one file of :mod:`i2i.data` holding its config section (a dataclass: the keys,
their defaults and ranges, written once) and its dataset, which takes that section
(:mod:`i2i.data.template` is the file a new kind copies).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from torch.utils.data import Dataset

from ..config import DataConfig
from ..options import Pixels, Range
from .cache import DecodedImages
from .io import read_image, to_channels
from .plan import DeviceItem


class DataError(ValueError):
    """The data on disk does not fit what the config asks; the message names the folder or file."""


def require_dir(path: Path, what: str) -> None:
    """A :class:`DataError` naming ``path`` (``what`` it should be) unless it is a folder."""
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


#: A jitter strength: 0 (off) up to, not including, 1.
Jitter = Annotated[float, Range(0, 1, high_open=True)]


@dataclass
class CropDataConfig(DataConfig):
    """Image-to-image data: ``preprocess`` resizes to ``load_size`` and/or crops ``crop_size``
    (random crops and ``flip`` when training, centre crops otherwise). ``rotate90`` (off):
    random quarter turns in training, the same for both images of a pair; with ``flip`` all 8
    rotations and reflections of the square crop (for data with no up, e.g. aerial or
    microscope images; not with ``preprocess: none``). ``scale_jitter`` = s (0: off): in
    training the resize before the crop is scaled by a factor from [1 - s, 1 + s] (never below
    ``crop_size``; ``preprocess`` resize_and_crop or crop). ``color_jitter`` = s (0: off):
    brightness, contrast and saturation factors from [1 - s, 1 + s] (torchvision's
    ``ColorJitter`` without hue), one draw for both images of a pair (not for label maps, whose
    colours are classes)."""

    preprocess: Literal["resize_and_crop", "crop", "resize", "none"] = "resize_and_crop"
    load_size: Pixels = 286
    crop_size: Pixels = 256
    flip: bool = True
    rotate90: bool = False
    scale_jitter: Jitter = 0.0
    color_jitter: Jitter = 0.0

    def problems(self) -> list[str]:
        """Quarter turns need square crops; scale jitter scales before a crop; the resize before a crop is no
        smaller than it."""
        out = super().problems()
        if self.rotate90 and self.preprocess == "none":
            out.append("data.rotate90 needs square training images; with data.preprocess: none they keep their own "
                       "shapes: use "
                       "data.preprocess crop, resize or resize_and_crop")
        if self.scale_jitter and self.preprocess not in ("resize_and_crop", "crop"):
            out.append(f"data.scale_jitter scales the image before its crop; with data.preprocess: {self.preprocess} "
                       "there is no "
                       "crop: use resize_and_crop or crop, or set data.scale_jitter: 0")
        if self.preprocess == "resize_and_crop" and self.load_size < self.crop_size:
            out.append(f"data.load_size={self.load_size} is smaller than data.crop_size={self.crop_size} with "
                       "preprocess "
                       f"'resize_and_crop' (resize to load_size, then crop); set data.load_size >= {self.crop_size}")
        return out

    def transform_args(self) -> dict[str, Any]:
        """The keywords of :func:`~i2i.data.transforms.paired_transform` these keys set."""
        return {"preprocess": self.preprocess, "load_size": self.load_size, "crop_size": self.crop_size,
                "flip": self.flip,
                "rotate90": self.rotate90, "scale_jitter": self.scale_jitter}



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
        self.cache = DecodedImages(self.image_files(), budget=budget,
                                   what=f"the images of '{getattr(self, 'root', '?')}'")
        self.read = self.cache.read
        return self.cache

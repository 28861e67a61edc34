"""Decode each training image once (``data.cache: memory``).

Every dataset reads its files through :attr:`~i2i.data.base.ImageFiles.read`;
:meth:`~i2i.data.base.ImageFiles.cache_in_memory` decodes all of them up front, in the training
process, into read-only arrays, and points ``read`` at them. Loader workers started afterwards
share the arrays (fork: copy-on-write pages that are never written), so no worker decodes a file
again and every epoch's augmentation (still drawn from ``(seed, epoch, index)``) sees the same pixels as without the
cache. What is cached is what :func:`~i2i.data.io.read_image` returns (EXIF orientation
applied, uint8 or uint16, H x W x C), before any channel conversion or augmentation.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .io import read_image


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
                total += (
                    im.width
                    * im.height
                    * len(im.getbands())
                    * (2 if im.mode.startswith("I;16") or im.mode == "I" else 1)
                )
        except (OSError, Image.DecompressionBombError):
            continue  # unreadable or a decompression bomb: refused by name when it is read
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
                    f"{format_bytes(self.nbytes)} (about {format_bytes(self.nbytes / (i + 1) * len(unique))} for all), "
                    "over the "
                    f"{format_bytes(budget)} it may use (half of the memory available now); set data.cache: none")
            img.setflags(write=False)  # shared by every epoch and worker: nothing may change it
            self.images[p] = img

    def __len__(self) -> int:
        return len(self.images)

    def read(self, path: str | Path) -> np.ndarray:
        """The cached pixels of ``path`` (read from disk when it was not cached)."""
        img = self.images.get(str(path))
        return img if img is not None else read_image(path)

"""How one training item is made from cached images (``data.cache: device``): which image
each field comes from and the geometry drawn for it. Plain records: the datasets write them
(the dataset kinds of :mod:`i2i.data`), :mod:`i2i.data.device` carries them out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: What a cached image is known by: ``(path, channels)``; a :class:`Source` may select a region of it.
ImageKey = tuple[str, int]


@dataclass(frozen=True)
class Geometry:
    """One image's augmentation, applied in this order: resize to ``resize`` = (H, W) (None: as
    is), crop ``box`` = (y, x, h, w), flip left-right when ``flip``, ``quarter_turns`` x 90 degrees
    counter-clockwise (``np.rot90``'s sense); then colour jitter by ``color`` = (brightness,
    contrast, saturation) factors (None: none; :func:`i2i.data.transforms.jitter_colors`)."""

    box: tuple[int, int, int, int]
    resize: tuple[int, int] | None = None
    flip: bool = False
    quarter_turns: int = 0
    color: tuple[float, float, float] | None = None


@dataclass(frozen=True)
class Source:
    """A cached image (``key``), or its ``region`` = (y, x, h, w) (the halves of an aligned AB image)."""

    key: ImageKey
    region: tuple[int, int, int, int] | None = None


@dataclass
class DeviceItem:
    """One training item: field -> (source, geometry) for its images, ``extras`` for the rest
    (names, labels), collated as the loader collates them."""

    images: dict[str, tuple[Source, Geometry]]
    extras: dict[str, Any] = field(default_factory=dict)

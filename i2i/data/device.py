"""Decoded images on the training device, augmented there in batches (``data.cache: device``).

Every training image is decoded once (:class:`~i2i.data.cache.DecodedImages`), converted to
the channels its dataset reads it with, and uploaded as one ``(C, H, W)`` tensor. A dataset
that supports it describes each item as a :class:`DeviceItem`: which cached image each field
comes from and the :class:`Geometry` drawn for it from ``(seed, epoch, index)``, the same draw
its loader path makes (the paired and unpaired datasets ask their albumentations transform for
its parameters on a one-channel stand-in of the image's size). :class:`DeviceBatches` then
makes a batch with a handful of batched tensor operations on the device: resize (bicubic,
as ``cv2.INTER_CUBIC``, rounded to the image's levels as the uint8 path rounds), crop, flip,
quarter turns, colour jitter, scaling to [-1, 1]. Crops, flips and turns equal the loader path's; resized
pixels agree within one level (the loader resizes with cv2's fixed-point cubic).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Sampler

from .cache import CacheTooLarge, format_bytes
from .io import max_value
from .plan import Geometry, ImageKey, Source
from .transforms import jitter_colors


class DeviceImages:
    """The images of ``keys`` as ``(C, H, W)`` tensors on ``device`` (uint8, or int32 for 16-bit
    images), each as ``load(key)`` gives it (``(H, W, C)``), at most ``budget`` bytes in all
    (None: no limit; past it: :class:`~i2i.data.cache.CacheTooLarge`, naming the sizes)."""

    def __init__(self, keys: list[ImageKey], load: Callable[[ImageKey], np.ndarray], device: torch.device, *,
                 budget: int | None = None) -> None:
        self.tensors: dict[ImageKey, torch.Tensor] = {}
        self.max_value: dict[ImageKey, float] = {}
        self.nbytes = 0
        unique = list(dict.fromkeys(keys))
        for i, key in enumerate(unique):
            img = load(key)
            arr = np.ascontiguousarray(img.transpose(2, 0, 1))
            arr = arr if arr.dtype == np.uint8 else arr.astype(np.int32)
            # a view of the read-only memory cache: torch wants its own
            arr = arr if arr.flags.writeable else arr.copy()
            self.nbytes += arr.nbytes
            if budget is not None and self.nbytes > budget:
                whole = self.nbytes / (i + 1) * len(unique)
                raise CacheTooLarge(
                    f"data.cache: device cannot hold the training images: about {format_bytes(whole)} for all "
                    f"{len(unique)}, over "
                    f"the {format_bytes(budget)} it may use on {device}; set data.cache: memory (they are held in RAM "
                    "then) or none")
            self.tensors[key], self.max_value[key] = torch.from_numpy(arr).to(device), max_value(img.dtype)

    def __len__(self) -> int:
        return len(self.tensors)

    def get(self, source: Source) -> torch.Tensor:
        t = self.tensors[source.key]
        if source.region is None:
            return t
        y, x, h, w = source.region
        return t[:, y : y + h, x : x + w]


def apply_geometries(images: list[torch.Tensor], geometries: list[Geometry], peaks: list[float]) -> torch.Tensor:
    """``images`` (``(C, H, W)`` integer tensors on one device, values up to ``peaks``) augmented
    by their ``geometries`` -> float32 ``(N, C, h, w)`` in [-1, 1]. Every crop must have the same
    size after its turns. Items with the same source size and resize are resized in one call."""
    n = len(images)
    out: torch.Tensor | None = None
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, (img, g) in enumerate(zip(images, geometries)):
        groups[(tuple(img.shape), g.resize, g.box[2:], peaks[i])].append(i)
    for (shape, size, (ch, cw), peak), idx in groups.items():
        device = images[idx[0]].device
        x = torch.stack([images[i] for i in idx]).float()
        if size is not None and tuple(size) != tuple(shape[-2:]):
            x = F.interpolate(x, size=size, mode="bicubic", align_corners=False).round_().clamp_(0, peak)
        boxes = [geometries[i].box for i in idx]
        if device.type == "cuda":  # one gather kernel
            ys = torch.tensor([b[0] for b in boxes], device=device)
            xs = torch.tensor([b[1] for b in boxes], device=device)
            rows = (ys[:, None] + torch.arange(ch, device=device))[:, None, :, None]
            cols = (xs[:, None] + torch.arange(cw, device=device))[:, None, None, :]
            batch = torch.arange(len(idx), device=device)[:, None, None, None]
            chans = torch.arange(x.shape[1], device=device)[None, :, None, None]
            x = x[batch, chans, rows, cols]
        else:  # on a CPU, slices copied by one stack are ~10x faster than the gather
            x = torch.stack([x[j, :, y : y + ch, xx : xx + cw] for j, (y, xx, _, _) in enumerate(boxes)])
        flips = torch.tensor([geometries[i].flip for i in idx], device=device)[:, None, None, None]
        x = torch.where(flips, x.flip(-1), x)
        turns = [geometries[i].quarter_turns % 4 for i in idx]
        if any(turns):
            turned = [torch.rot90(x[j], k, dims=(-2, -1)) if k else x[j] for j, k in enumerate(turns)]
            x = torch.stack(turned)
        colors = [geometries[i].color for i in idx]
        if any(c is not None for c in colors):
            x = jitter_colors(x, torch.tensor([c or (1.0, 1.0, 1.0) for c in colors]), peak)
        x = x / (peak / 2) - 1.0
        if out is None:
            out = x.new_empty((n, *x.shape[1:]))
        out[idx] = x
    assert out is not None
    return out


def collate_extras(values: list[Any]) -> Any:
    """Extras as the default collate makes them: numbers -> a tensor, anything else -> a list."""
    if values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return torch.tensor(values)
    return list(values)


class DeviceBatches:
    """Training batches made on the device: the ``sampler``'s keys in chunks of ``batch_size``,
    each item planned by ``dataset.device_item(key)`` and its images made from ``store`` by
    :func:`apply_geometries`; ``finish`` (the dataset's ``device_finish``) adds fields made from
    others (e.g. SR's low-resolution input). Used where a ``DataLoader`` would be."""

    def __init__(self, dataset: Any, sampler: Sampler, batch_size: int, store: DeviceImages) -> None:
        self.dataset, self.sampler, self.batch_size, self.store = dataset, sampler, batch_size, store

    def __len__(self) -> int:
        return (len(self.sampler) + self.batch_size - 1) // self.batch_size  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        keys = list(iter(self.sampler))
        for start in range(0, len(keys), self.batch_size):
            yield self.batch(keys[start : start + self.batch_size])

    def batch(self, keys: list[Any]) -> dict[str, Any]:
        """The batch of the dataset's items ``keys``."""
        items = [self.dataset.device_item(k) for k in keys]
        out: dict[str, Any] = {}
        for name in items[0].images:
            sources = [it.images[name][0] for it in items]
            out[name] = apply_geometries([self.store.get(s) for s in sources], [it.images[name][1] for it in items],
                                         [self.store.max_value[s.key] for s in sources])
        for name in items[0].extras:
            out[name] = collate_extras([it.extras[name] for it in items])
        finish = getattr(self.dataset, "device_finish", None)
        return finish(out) if finish is not None else out

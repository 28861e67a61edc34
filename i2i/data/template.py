"""The file a new dataset kind copies: a complete, working kind with every part explained.

What it reads: one folder of images (sub-folders searched). Each item is a pair made from one
image: the target is a crop of it, the input the same crop in gray with Gaussian noise of
``data.noise`` (a colourisation-and-denoising task from photos alone). Any paired pipeline can
train on it; ``tests/test_registry.py`` trains the pipeline template on it through every
registry test (one step, exact resume, validation, every command), which is what a new kind gets.

To add a kind: copy this file to ``i2i/data/<kind>.py``, rename the section and the dataset,
change the section's keys (each with its default and range, written here once) and
:meth:`TemplateDataset.__getitem__`; a pipeline uses it by declaring ``DataConfig =
<Kind>DataConfig`` and returning the dataset from ``make_dataset``. Draw every random decision
from ``(seed, epoch, index)``, so that resume is exact and any number of loader workers agrees.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import torch

from ..options import Range
from .base import CropDataConfig, DataError, ImageFiles, require_dir
from .io import list_images, to_channels, to_tensor
from .sampling import sample_seed
from .transforms import apply_color, apply_single, draw_color, paired_transform


@dataclass
class TemplateDataConfig(CropDataConfig):
    """The ``data`` section: the shared keys (``root``, ``val_root``, ``batch_size``, ``cache``,
    ``max_items``, ...), the crop-and-augment keys of :class:`~.base.CropDataConfig`, and this
    kind's own: ``noise``, the standard deviation of the Gaussian noise added to the gray input
    (in [0, 1] units of the image; 0: none). Numeric keys declare their range in the annotation."""

    noise: Annotated[float, Range(0, 1)] = 0.0

    def problems(self) -> list[str]:
        """Checks across this section's keys, one message each naming the keys (the loader raises the
        first); the crop-and-augment keys' own come from the base. This kind adds none: ``noise`` is
        checked by its range alone."""
        return super().problems()


class TemplateDataset(ImageFiles):
    """Items ``{"input", "target"}``: float ``(C, H, W)`` in [-1, 1] (the input in ``in_channels``,
    gray repeated; the target in ``out_channels``), and ``"name"``, the image's path under ``root``.
    Training crops, flips, quarter turns, scale and colour jitter come from the section, drawn
    from ``(seed, epoch, index)``; the noise too. ``data.max_items`` applies in training only."""

    def __init__(self, root: str | Path, data: TemplateDataConfig | None = None, *, in_channels: int = 3,
                 out_channels: int = 3,
                 train: bool = True, seed: int = 0) -> None:
        data = data or TemplateDataConfig()  # the defaults live in the section, nowhere else
        self.root = Path(root).expanduser()
        require_dir(self.root, "data folder")
        files = list_images(self.root)
        if not files:
            raise DataError(f"data folder '{self.root}' holds no images; the template kind reads one folder of photos")
        self.files = self.keep_first(files, data.max_items if train else None)
        self.in_channels, self.out_channels, self.seed = in_channels, out_channels, seed
        self.transform = paired_transform(**data.transform_args(), train=train)
        self.color_jitter = data.color_jitter if train else 0.0
        self.noise = data.noise

    def __len__(self) -> int:
        return len(self.files)

    def image_files(self) -> list[Path]:
        """Every file an epoch may read (what ``data.cache: memory`` decodes once)."""
        return list(self.files)

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        """Item ``index`` for epoch 0, or for ``epoch`` when ``key`` is ``(epoch, index)`` (what the
        epoch sampler yields)."""
        epoch, index = key if isinstance(key, tuple) else (0, key)
        seed = sample_seed(self.seed, epoch, index)
        target = to_channels(self.read(self.files[index]), self.out_channels)  # reads go through self.read: the cache
        if self.transform.transforms:
            target = apply_single(self.transform, target, seed)
        target = apply_color(target, draw_color(self.color_jitter, seed))
        x = to_tensor(np.ascontiguousarray(to_channels(to_channels(target, 1), self.in_channels)))
        if self.noise:
            g = torch.Generator().manual_seed(seed)  # the item's own generator: never the global one
            x = (x + 2 * self.noise * torch.randn(x.shape, generator=g)).clamp_(-1, 1)
        return {"input": x, "target": to_tensor(np.ascontiguousarray(target)),
                "name": self.files[index].relative_to(self.root).as_posix()}

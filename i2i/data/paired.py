"""Paired images (pix2pix): ``A/`` + ``B/`` folders matched by name, or side-by-side AB images;
the ``data`` section of paired pipelines and the dataset that reads it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np

from .base import CropDataConfig, DataError, ImageFiles, require_dir
from .io import ImageReadError, list_images, to_channels, to_tensor
from .plan import DeviceItem, Source
from .sampling import sample_seed
from .transforms import apply_color, apply_paired, draw_color, draw_geometry, paired_transform


@dataclass
class PairedDataConfig(CropDataConfig):
    """Paired data (:class:`PairedDataset`): ``root`` holds ``A/`` + ``B/`` folders matched by file
    stem or side-by-side AB images (``layout: auto`` picks by looking); ``direction`` says
    which side is the input."""

    layout: Literal["auto", "folders", "aligned"] = "auto"
    direction: Literal["a_to_b", "b_to_a"] = "a_to_b"



class PairedDataset(ImageFiles):
    """Paired images for pix2pix.

    Layouts: ``folders`` — ``root/A/`` and ``root/B/`` matched by file stem (sub-folders
    allowed: the relative path without suffix is the key); ``aligned`` — each file holds A
    and B side by side (A left). ``auto`` picks ``folders`` when ``root/A`` exists.
    Items: ``{"input", "target"}`` float ``(C, H, W)`` in [-1, 1] oriented by ``direction``,
    and ``"name"`` (relative path of the A file). Training augmentation (the ``data`` section's
    crops, flips, ``rotate90``, ``scale_jitter``, ``color_jitter``) is drawn once per pair and applied
    to both images alike; ``data.max_items`` applies in training only.
    """

    def __init__(self, root: str | Path, data: PairedDataConfig | None = None, *, in_channels: int = 3,
                 out_channels: int = 3,
                 train: bool = True, seed: int = 0, folders: tuple[str, str] = ("A", "B")) -> None:
        data = data or PairedDataConfig()
        self.root = Path(root).expanduser()
        require_dir(self.root, "data folder")
        self.folders = folders
        layout = data.layout
        if layout == "auto":
            layout = "folders" if (self.root / folders[0]).is_dir() else "aligned"
        elif layout == "aligned" and (self.root / folders[0]).is_dir() and (self.root / folders[1]).is_dir():
            raise DataError(f"data.layout is 'aligned' (side-by-side AB images) but '{self.root}' holds "
                            f"{folders[0]}/ and "
                            f"{folders[1]}/ folders; set data.layout: folders (or auto)")
        self.layout = layout
        self.pairs: list[tuple[Path, Path | None]] = self.keep_first(self._find_pairs(),
                                                                     data.max_items if train else None)
        self.direction = data.direction
        self.in_channels, self.out_channels = in_channels, out_channels
        self.transform = paired_transform(**data.transform_args(), train=train)
        self.color_jitter = data.color_jitter if train else 0.0
        self.train = train
        self.seed = seed

    def _find_pairs(self) -> list[tuple[Path, Path | None]]:
        if self.layout == "aligned":
            files = list_images(self.root)
            if not files:
                raise DataError(f"data folder '{self.root}' holds no images; expected side-by-side AB images or A/ and "
                                "B/ folders")
            return [(f, None) for f in files]
        a_dir, b_dir = self.root / self.folders[0], self.root / self.folders[1]
        require_dir(a_dir, "folder")
        require_dir(b_dir, "folder")
        a = {p.relative_to(a_dir).with_suffix("").as_posix(): p for p in list_images(a_dir)}
        b = {p.relative_to(b_dir).with_suffix("").as_posix(): p for p in list_images(b_dir)}
        if not a or not b:
            empty = a_dir if not a else b_dir
            raise DataError(f"folder '{empty}' holds no images; put the paired images in {a_dir.name}/ and "
                            f"{b_dir.name}/ "
                            "with matching names")
        only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
        if only_a or only_b:
            def show(names: list[str]) -> str:
                return ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")

            parts = []
            if only_a:
                parts.append(f"in {a_dir.name}/ but not {b_dir.name}/: {show(only_a)}")
            if only_b:
                parts.append(f"in {b_dir.name}/ but not {a_dir.name}/: {show(only_b)}")
            raise DataError(f"unmatched images under '{self.root}' (pairs are matched by file name without "
                            "suffix); " + "; ".join(parts))
        return [(a[k], b[k]) for k in sorted(a)]

    def __len__(self) -> int:
        return len(self.pairs)

    def image_files(self) -> list[Path]:
        return [p for pair in self.pairs for p in pair if p is not None]

    def load_pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Raw ``(A, B)`` arrays of pair ``index`` (no transform)."""
        pa, pb = self.pairs[index]
        img = self.read(pa)
        if pb is None:
            w = img.shape[1]
            if w < 2:
                raise ImageReadError(f"aligned image '{pa}' is too narrow to hold A and B side by side")
            return img[:, : w // 2], img[:, w // 2 : 2 * (w // 2)]
        b = self.read(pb)
        if img.shape[:2] != b.shape[:2]:
            raise ImageReadError(f"paired images differ in size: '{pa}' is {img.shape[1]}x{img.shape[0]}, "
                                 f"'{pb}' is {b.shape[1]}x{b.shape[0]}")
        return img, b

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        """Item ``index`` augmented for epoch 0, or for ``epoch`` when ``key`` is
        ``(epoch, index)`` (what :class:`EpochSampler` yields, so that persistent loader
        workers see the right epoch)."""
        epoch, index = key if isinstance(key, tuple) else (0, key)
        a, b = self.load_pair(index)
        src, dst = (a, b) if self.direction == "a_to_b" else (b, a)
        src, dst = to_channels(src, self.in_channels), to_channels(dst, self.out_channels)
        seed = sample_seed(self.seed, epoch, index)
        if self.transform.transforms:
            src, dst = apply_paired(self.transform, src, dst, seed)
        color = draw_color(self.color_jitter, seed)  # one draw for both images, as their geometry
        src, dst = apply_color(src, color), apply_color(dst, color)
        return {"input": to_tensor(src), "target": to_tensor(dst), "name": self._name(index)}

    def _name(self, index: int) -> str:
        return (
            self.pairs[index][0]
            .relative_to(self.root / self.folders[0] if self.layout == "folders" else self.root)
            .as_posix()
        )

    on_device = True

    def device_keys(self) -> list[tuple[str, int]]:
        keys = []
        for pa, pb in self.pairs:
            if pb is None:
                keys.append((str(pa), self.in_channels))
                if self.out_channels != self.in_channels:
                    keys.append((str(pa), self.out_channels))
            else:
                a, b = (self.in_channels, self.out_channels) if self.direction == "a_to_b" else (self.out_channels,
                                                                                                 self.in_channels)
                keys += [(str(pa), a), (str(pb), b)]
        return keys

    def device_item(self, key: tuple[int, int]) -> DeviceItem:
        epoch, index = key
        pa, pb = self.pairs[index]
        h, w = self.read(pa).shape[:2]
        if pb is None:  # the halves of one side-by-side image
            half = w // 2
            a, b = Source((str(pa), 0), (0, 0, h, half)), Source((str(pa), 0), (0, half, h, half))
            w = half
        else:
            a, b = Source((str(pa), 0)), Source((str(pb), 0))
        src, dst = (a, b) if self.direction == "a_to_b" else (b, a)
        src = Source((src.key[0], self.in_channels), src.region)
        dst = Source((dst.key[0], self.out_channels), dst.region)
        seed = sample_seed(self.seed, epoch, index)
        g = replace(draw_geometry(self.transform, h, w, seed), color=draw_color(self.color_jitter, seed))
        return DeviceItem({"input": (src, g), "target": (dst, g)}, {"name": self._name(index)})

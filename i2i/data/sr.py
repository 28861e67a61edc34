"""Super-resolution data: HR images and their LR versions (MATLAB bicubic made on the fly, or a
matched ``lr_root``); the ``data`` section of super-resolution pipelines and the dataset that reads it."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image

from ..config import DataConfig
from ..options import Pixels
from .base import DataError, ImageFiles, require_dir
from .degradations import RealESRGANDegradation
from .io import ImageReadError, list_images, max_value, to_channels, to_tensor
from .plan import DeviceItem, Geometry, Source
from .resize import imresize
from .sampling import sample_seed


@dataclass
class SRDataConfig(DataConfig):
    """Super-resolution data (:class:`SRDataset`): ``root`` is a folder of HR images; LR images
    are made with MATLAB-style bicubic unless ``lr_root`` holds them (matched by name);
    ``crop_size`` is the HR crop; ``flip`` and ``rotate90`` (random quarter turns) augment.
    ``degradation: realesrgan`` makes the training inputs with Real-ESRGAN's second-order model
    instead, on the training device, with the ranges of ``realesrgan``
    (:class:`~i2i.data.degradations.RealESRGANDegradation`); validation stays bicubic."""

    crop_size: Pixels = 96
    lr_root: str | None = None
    flip: bool = True
    rotate90: bool = False
    degradation: Literal["bicubic", "realesrgan"] = "bicubic"
    realesrgan: RealESRGANDegradation = field(default_factory=RealESRGANDegradation)

    def problems(self) -> list[str]:
        """Real-ESRGAN's degradation makes the LR images (so no ``lr_root``), within ranges that hold together."""
        out = super().problems()
        if self.degradation == "realesrgan":
            if self.lr_root is not None:
                out.append("data.lr_root holds ready LR images, data.degradation: realesrgan makes them: choose one")
            out += ["data.realesrgan." + p for p in self.realesrgan.problems()]
        return out



class SRDataset(ImageFiles):
    """High-resolution images and their low-resolution versions for super-resolution.

    LR images are made on the fly with MATLAB-style antialiased bicubic downscaling
    (:func:`i2i.data.resize.imresize`) and rounded to 8-bit levels, as if saved, unless
    ``lr_root`` holds them (matched by relative path without suffix; sizes checked).
    Training items are random HR crops of ``data.crop_size`` (a multiple of ``scale``) with
    flips and, with ``data.rotate90``, quarter turns, drawn from ``(seed, epoch, index)``.
    Non-training items are centre crops of ``crop_size`` (fixed-size previews), or whole
    images cropped to a multiple of ``scale`` with ``full_images``.
    Images smaller than the crop are skipped with a warning naming them (an error when
    none remain). Items: ``{"input": LR, "target": HR}`` in [-1, 1] and ``"name"``; without
    ``make_input``, HR only (the pipeline degrades it on the device, e.g. Real-ESRGAN's model).
    """

    def __init__(self, root: str | Path, data: SRDataConfig | None = None, *, scale: int, channels: int = 3,
                 train: bool = True,
                 seed: int = 0, full_images: bool = False, make_input: bool = True) -> None:
        data = data or SRDataConfig()
        crop_size, lr_root, max_items = data.crop_size, data.lr_root, data.max_items if train else None
        self.root = Path(root).expanduser()
        self.make_input = make_input or lr_root is not None
        require_dir(self.root, "HR image folder")
        if crop_size % scale:
            raise DataError(f"data.crop_size={crop_size} must be a multiple of the scale {scale}")
        self.scale, self.crop_size, self.channels = scale, crop_size, channels
        self.train, self.flip, self.rotate90, self.full = train, data.flip, data.rotate90, full_images
        self.seed = seed
        files = list_images(self.root)
        if not files:
            raise DataError(f"HR image folder '{self.root}' holds no images")
        keep, small = [], []
        # whole images are scored with a `scale`-pixel border removed: 3 x scale leaves pixels to score
        smallest = 3 * scale if full_images else crop_size
        for f in files:
            try:
                with Image.open(f) as im:  # header only
                    w, h = im.size
            except OSError:
                keep.append(f)  # unreadable: reported with its name when loaded
                continue
            (keep if min(w, h) >= smallest else small).append(f)
        what = f"{smallest} pixels (3 x the scale, for scoring without the border)" if full_images else \
            f"data.crop_size={crop_size}"
        if small:
            warnings.warn(f"skipping {len(small)} images under '{self.root}' smaller than {what}: "
                          + ", ".join(p.name for p in small[:5]), stacklevel=2)
        if not keep:
            raise DataError(f"every image under '{self.root}' is smaller than {what}; use larger images"
                            + ("" if full_images else " or lower the crop size"))
        self.files = self.keep_first(keep, max_items)
        self.lr_files: list[Path] | None = None
        if lr_root is not None:
            lr_dir = Path(lr_root).expanduser()
            require_dir(lr_dir, "LR image folder")
            lr = {p.relative_to(lr_dir).with_suffix("").as_posix(): p for p in list_images(lr_dir)}
            keys = [p.relative_to(self.root).with_suffix("").as_posix() for p in self.files]
            missing = [k for k in keys if k not in lr]
            if missing:
                raise DataError(f"no LR image in '{lr_dir}' for HR images {', '.join(missing[:10])}; names must match")
            self.lr_files = [lr[k] for k in keys]

    def __len__(self) -> int:
        return len(self.files)

    def image_files(self) -> list[Path]:
        return [*self.files, *(self.lr_files or [])]

    def _draw(self, epoch: int, index: int, h: int, w: int) -> tuple[int, int, bool, int]:
        """The HR crop's corner ``(y, x)`` (multiples of the scale), flip and quarter turns of
        item ``(epoch, index)`` of an ``h`` x ``w`` image (training: from ``(seed, epoch, index)``;
        otherwise the centre, unflipped)."""
        s, c = self.scale, self.crop_size
        if not self.train:
            return ((h - c) // (2 * s)) * s, ((w - c) // (2 * s)) * s, False, 0
        rng = np.random.default_rng(sample_seed(self.seed, epoch, index))
        y, x = int(rng.integers(0, (h - c) // s + 1)) * s, int(rng.integers(0, (w - c) // s + 1)) * s
        flip = bool(self.flip and rng.random() < 0.5)
        return y, x, flip, int(rng.integers(0, 4)) if self.rotate90 else 0

    @property
    def on_device(self) -> bool:  # type: ignore[override]
        return not self.full

    def device_keys(self) -> list[tuple[str, int]]:
        if self.lr_files is not None:  # sizes checked once, here, rather than per batch
            for i, f in enumerate(self.files):
                h, w = self.read(f).shape[:2]
                self._lr_of(self.read(f)[: h - h % self.scale, : w - w % self.scale], i)
        return [(str(p), self.channels) for p in [*self.files, *(self.lr_files or [])]]

    def device_item(self, key: tuple[int, int]) -> DeviceItem:
        epoch, index = key
        hr = self.read(self.files[index])
        h, w = hr.shape[:2]
        s, c = self.scale, self.crop_size
        y, x, flip, turns = self._draw(epoch, index, h, w)
        images = {"target": (Source((str(self.files[index]), self.channels)), Geometry((y, x, c, c), flip=flip,
                                                                                       quarter_turns=turns))}
        if self.lr_files is not None:
            lr_geometry = Geometry((y // s, x // s, c // s, c // s), flip=flip, quarter_turns=turns)
            images["input"] = (Source((str(self.lr_files[index]), self.channels)), lr_geometry)
        self._peak = max_value(hr.dtype)
        return DeviceItem(images, {"name": self.files[index].relative_to(self.root).as_posix()})

    def device_finish(self, batch: dict) -> dict:
        """The low-resolution input made from the batch's HR crops on the device (as the loader
        path makes it from each crop: MATLAB bicubic, clipped and rounded to the image's levels)."""
        if "input" not in batch and self.make_input:
            half = getattr(self, "_peak", 255.0) / 2
            levels = ((batch["target"] + 1.0) * half).round_()
            batch["input"] = imresize(levels, 1 / self.scale).clamp_(0, 2 * half).round_() / half - 1.0
        return batch

    def _lr_of(self, hr: np.ndarray, index: int) -> np.ndarray:
        if self.lr_files is not None:
            lr = to_channels(self.read(self.lr_files[index]), self.channels)
            h, w = hr.shape[0] // self.scale, hr.shape[1] // self.scale
            if lr.shape[:2] != (h, w):
                raise ImageReadError(f"LR image '{self.lr_files[index]}' is {lr.shape[1]}x{lr.shape[0]}, expected "
                                     f"{w}x{h} "
                                     f"(HR '{self.files[index]}' / {self.scale})")
            return lr
        m = 255.0 if hr.dtype == np.uint8 else 65535.0
        t = torch.from_numpy(hr.astype(np.float32)).permute(2, 0, 1)
        small = imresize(t, 1 / self.scale).clamp(0, m).round()
        return small.permute(1, 2, 0).numpy().astype(hr.dtype)

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        hr = to_channels(self.read(self.files[index]), self.channels)
        s, c = self.scale, self.crop_size
        h, w = hr.shape[:2]
        if self.full:
            hr = hr[: h - h % s, : w - w % s]
            lr = self._lr_of(hr, index)
        else:
            y, x, flip, turns = self._draw(epoch, index, h, w)
            if self.lr_files is None:
                hr = hr[y : y + c, x : x + c]
                lr = self._lr_of(hr, index) if self.make_input else hr
            else:
                full_lr = self._lr_of(hr[: h - h % s, : w - w % s], index)
                hr, lr = hr[y : y + c, x : x + c], full_lr[y // s : (y + c) // s, x // s : (x + c) // s]
            if flip:
                hr, lr = hr[:, ::-1], lr[:, ::-1]
            if turns:
                hr, lr = np.rot90(hr, turns), np.rot90(lr, turns)
        name = self.files[index].relative_to(self.root).as_posix()
        item = {"input": to_tensor(np.ascontiguousarray(lr))} if self.make_input else {}
        return {**item, "target": to_tensor(np.ascontiguousarray(hr)), "name": name}

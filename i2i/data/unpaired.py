"""Two unpaired image domains (CycleGAN): ``trainA/ trainB/ testA/ testB/`` or ``A/ B/``; the
``data`` section of unpaired pipelines and the dataset that reads it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .base import CropDataConfig, DataError, ImageFiles, require_dir
from .io import list_images, max_value, to_channels, to_tensor
from .plan import DeviceItem, Source
from .sampling import sample_seed
from .transforms import apply_color, apply_single, draw_color, draw_geometry, paired_transform


@dataclass
class UnpairedDataConfig(CropDataConfig):
    """Unpaired data (:class:`UnpairedDataset`): ``root`` holds ``trainA/ trainB/ testA/ testB/``
    (or ``A/ B/``); B images are drawn at random unless ``serial_batches``."""

    serial_batches: bool = False



def _domain_dirs(root: Path, phase: str) -> tuple[Path, Path]:
    """``root/{phase}A`` + ``root/{phase}B`` when present, else ``root/A`` + ``root/B``."""
    for a, b in ((f"{phase}A", f"{phase}B"), ("A", "B")):
        if (root / a).is_dir() or (root / b).is_dir():
            return root / a, root / b
    raise DataError(
        f"data folder '{root}' has neither {phase}A/ + {phase}B/ nor A/ + B/ sub-folders; "
        "put the images of each domain in its own folder (see datasets/README.md)"
    )


def _masks(folder: Path, files: list[Path]) -> dict[str, Path]:
    """``{stem: mask file}`` from ``<folder>_mask/`` beside ``folder`` ({} when there is none);
    every file of ``files`` must have one."""
    mask_dir = folder.with_name(folder.name + "_mask")
    if not mask_dir.is_dir():
        return {}
    masks = {p.stem: p for p in list_images(mask_dir)}
    missing = [f for f in files if f.stem not in masks]
    if missing:
        raise DataError(f"'{missing[0]}' has no mask in '{mask_dir}' ({len(missing)} of {len(files)} images "
                        f"lack one); add '{missing[0].stem}.png' there (white where the image may change), or "
                        "remove the folder")
    return masks


class UnpairedDataset(ImageFiles):
    """Two unpaired image domains for CycleGAN.

    Folders: ``root/trainA`` + ``root/trainB`` (``testA``/``testB`` when ``train`` is
    false), or ``root/A`` + ``root/B``. An epoch has ``max(len(A), len(B))`` items: item
    ``i`` takes A image ``i mod len(A)`` and a B image drawn at random from
    ``(seed, epoch, i)`` (or ``i mod len(B)`` with ``data.serial_batches``), so the pairing is
    reproducible after a resume. Each domain gets its own augmentation draw (geometry and colour).
    Items: ``{"a", "b"}`` float ``(C, H, W)`` in [-1, 1] and ``"name_a"``, ``"name_b"``.

    Masks (``loss.mask_conservation``): a folder ``trainA_mask/`` (``A_mask/``) beside ``trainA/``
    holds one mask per A image, matched by file stem (any image format; white where the image may
    change); then items carry ``"mask_a"`` ``(1, H, W)`` in [0, 1], cropped and flipped with their
    image. Likewise ``trainB_mask/`` gives ``"mask_b"``. An image without its mask is refused when the
    dataset is made.
    """

    def __init__(self, root: str | Path, data: UnpairedDataConfig | None = None, *, a_channels: int = 3,
                 b_channels: int = 3,
                 train: bool = True, seed: int = 0) -> None:
        data = data or UnpairedDataConfig()
        self.root = Path(root).expanduser()
        require_dir(self.root, "data folder")
        self.a_dir, self.b_dir = _domain_dirs(self.root, "train" if train else "test")
        a, b = self._list(self.a_dir), self._list(self.b_dir)
        limit = data.max_items if train else None
        self.a_files, self.b_files = self.keep_first(a, limit), self.keep_first(b, limit)
        if self.limited_from is not None:
            self.limited_from = max(len(a), len(b))
        self.a_channels, self.b_channels = a_channels, b_channels
        self.masks = {"a": _masks(self.a_dir, self.a_files), "b": _masks(self.b_dir, self.b_files)}
        self.on_device = not any(self.masks.values())  # the device path carries no masks
        self.transform = paired_transform(**data.transform_args(), train=train)
        self.color_jitter = data.color_jitter if train else 0.0
        self.serial = data.serial_batches or not train
        self.seed = seed

    on_device = True

    @classmethod
    def for_config(cls, cfg: Any, *, train: bool, root: str | Path | None = None) -> UnpairedDataset:
        """The dataset an unpaired pipeline's config describes: ``cfg.data`` (``root`` instead of
        ``data.root`` when given), the generator's channels for A and B, the run's seed; in training,
        masks required when ``loss.mask_conservation`` is set (:meth:`require_masks`)."""
        g = cfg.model.generator
        ds = cls(root or cfg.data.root, cfg.data, a_channels=g.arg("in_channels"), b_channels=g.arg("out_channels"),
                 train=train, seed=cfg.seed)
        if train:
            ds.require_masks("loss.mask_conservation", getattr(cfg.loss, "mask_conservation", 0.0))
        return ds

    def require_masks(self, key: str, weight: float) -> None:
        """Refuse training with the config's ``key`` (e.g. ``loss.mask_conservation``) at ``weight`` > 0 when no
        image has a mask, saying where the masks go."""
        if weight > 0 and not any(self.masks.values()):
            raise DataError(f"{key}={weight} needs masks: put one per image in '{self.a_dir}_mask/' (and/or "
                            f"'{self.b_dir}_mask/'), white where the image may change, or set {key}: 0")

    @staticmethod
    def _list(folder: Path) -> list[Path]:
        require_dir(folder, "domain folder")
        files = list_images(folder)
        if not files:
            raise DataError(f"domain folder '{folder}' holds no images; CycleGAN needs images in both domains")
        return files

    def __len__(self) -> int:
        return max(len(self.a_files), len(self.b_files))

    def image_files(self) -> list[Path]:
        return [*self.a_files, *self.b_files]

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        s, pa, pb = self._pick(epoch, index)
        a = self._with_mask(to_channels(self.read(pa), self.a_channels), "a", pa)
        b = self._with_mask(to_channels(self.read(pb), self.b_channels), "b", pb)
        sb = sample_seed(self.seed + 1, epoch, index)
        if self.transform.transforms:  # a mask rides along as an extra channel: the same crop and flip
            a, b = apply_single(self.transform, a, s), apply_single(self.transform, b, sb)
        item: dict = {}
        for key, img, c, seed in (("a", a, self.a_channels, s), ("b", b, self.b_channels, sb)):
            if self.masks[key]:
                item[f"mask_{key}"] = torch.from_numpy(img[:, :, c:].transpose(2, 0, 1).astype(np.float32)
                                                       / max_value(img.dtype))
            item[key] = to_tensor(apply_color(np.ascontiguousarray(img[:, :, :c]), draw_color(self.color_jitter, seed)))
        item["name_a"], item["name_b"] = pa.relative_to(self.a_dir).as_posix(), pb.relative_to(self.b_dir).as_posix()
        return item

    def _with_mask(self, img: np.ndarray, key: str, path: Path) -> np.ndarray:
        masks = self.masks[key]
        if not masks:
            return img
        m = to_channels(self.read(masks[path.stem]), 1)
        if m.shape[:2] != img.shape[:2]:
            raise DataError(f"mask '{masks[path.stem]}' is {m.shape[1]}x{m.shape[0]}, its image '{path}' "
                            f"{img.shape[1]}x{img.shape[0]}; a mask must have its image's size")
        if m.dtype != img.dtype:
            m = (m.astype(np.uint32) * 257).astype(np.uint16) if img.dtype == np.uint16 else (m >> 8).astype(np.uint8)
        return np.concatenate([img, m], axis=2)

    def _pick(self, epoch: int, index: int) -> tuple[int, Path, Path]:
        """The item's seed and its A and B files."""
        s = sample_seed(self.seed, epoch, index)
        pa = self.a_files[index % len(self.a_files)]
        return s, pa, self.b_files[index % len(self.b_files) if self.serial else s % len(self.b_files)]

    def device_keys(self) -> list[tuple[str, int]]:
        return [(str(p), self.a_channels) for p in self.a_files] + [(str(p), self.b_channels) for p in self.b_files]

    def device_item(self, key: tuple[int, int]) -> DeviceItem:
        epoch, index = key
        s, pa, pb = self._pick(epoch, index)
        ha, wa = self.read(pa).shape[:2]
        hb, wb = self.read(pb).shape[:2]
        sb = sample_seed(self.seed + 1, epoch, index)
        ga = replace(draw_geometry(self.transform, ha, wa, s), color=draw_color(self.color_jitter, s))
        gb = replace(draw_geometry(self.transform, hb, wb, sb), color=draw_color(self.color_jitter, sb))
        return DeviceItem({"a": (Source((str(pa), self.a_channels)), ga),
                           "b": (Source((str(pb), self.b_channels)), gb)},
                          {"name_a": pa.relative_to(self.a_dir).as_posix(),
                           "name_b": pb.relative_to(self.b_dir).as_posix()})

"""The datasets every pipeline reads (their config sections live in :mod:`.configs` and are
re-exported here).

Samples are dicts of float tensors in [-1, 1] plus the file name; the trainer moves
tensors to the device and passes the dict to the pipeline.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .cache import DataError, ImageFiles, require_dir
from .configs import CropDataConfig, GenerationDataConfig, PairedDataConfig, SRDataConfig, UnpairedDataConfig
from .generation import TORCHVISION_DATASETS, ImageDataset
from .io import ImageReadError, list_images, max_value, to_channels, to_tensor
from .plan import DeviceItem, Geometry, Source
from .resize import imresize
from .sampling import sample_seed
from .transforms import apply_color, apply_paired, apply_single, draw_color, draw_geometry, paired_transform

__all__ = ["TORCHVISION_DATASETS", "CropDataConfig", "DataError", "GenerationDataConfig", "ImageDataset", "PairedDataConfig",
           "PairedDataset", "SRDataConfig", "SRDataset", "UnpairedDataConfig", "UnpairedDataset"]


class PairedDataset(ImageFiles):
    """Paired images for pix2pix.

    Layouts: ``folders`` — ``root/A/`` and ``root/B/`` matched by file stem (sub-folders
    allowed: the relative path without suffix is the key); ``aligned`` — each file holds A
    and B side by side (A left). ``auto`` picks ``folders`` when ``root/A`` exists.
    Items: ``{"input", "target"}`` float ``(C, H, W)`` in [-1, 1] oriented by ``direction``,
    and ``"name"`` (relative path of the A file). Training augmentation (see
    :class:`~i2i.data.configs.CropDataConfig`: crops, flips, ``rotate90``, ``scale_jitter``,
    ``color_jitter``) is drawn once per pair and applied to both images alike.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        layout: str = "auto",
        direction: str = "a_to_b",
        in_channels: int = 3,
        out_channels: int = 3,
        preprocess: str = "resize_and_crop",
        load_size: int = 286,
        crop_size: int = 256,
        flip: bool = True,
        train: bool = True,
        seed: int = 0,
        folders: tuple[str, str] = ("A", "B"),
        max_items: int | None = None,
        rotate90: bool = False,
        scale_jitter: float = 0.0,
        color_jitter: float = 0.0,
    ) -> None:
        self.root = Path(root).expanduser()
        require_dir(self.root, "data folder")
        self.folders = folders
        if layout == "auto":
            layout = "folders" if (self.root / folders[0]).is_dir() else "aligned"
        elif layout == "aligned" and (self.root / folders[0]).is_dir() and (self.root / folders[1]).is_dir():
            raise DataError(f"data.layout is 'aligned' (side-by-side AB images) but '{self.root}' holds {folders[0]}/ and "
                            f"{folders[1]}/ folders; set data.layout: folders (or auto)")
        self.layout = layout
        self.pairs: list[tuple[Path, Path | None]] = self.keep_first(self._find_pairs(), max_items)
        self.direction = direction
        self.in_channels, self.out_channels = in_channels, out_channels
        self.transform = paired_transform(preprocess=preprocess, load_size=load_size, crop_size=crop_size, flip=flip, train=train,
                                          rotate90=rotate90, scale_jitter=scale_jitter)
        self.color_jitter = color_jitter if train else 0.0
        self.train = train
        self.seed = seed

    def _find_pairs(self) -> list[tuple[Path, Path | None]]:
        if self.layout == "aligned":
            files = list_images(self.root)
            if not files:
                raise DataError(f"data folder '{self.root}' holds no images; expected side-by-side AB images or A/ and B/ folders")
            return [(f, None) for f in files]
        a_dir, b_dir = self.root / self.folders[0], self.root / self.folders[1]
        require_dir(a_dir, "folder")
        require_dir(b_dir, "folder")
        a = {p.relative_to(a_dir).with_suffix("").as_posix(): p for p in list_images(a_dir)}
        b = {p.relative_to(b_dir).with_suffix("").as_posix(): p for p in list_images(b_dir)}
        if not a or not b:
            empty = a_dir if not a else b_dir
            raise DataError(f"folder '{empty}' holds no images; put the paired images in {a_dir.name}/ and {b_dir.name}/ "
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
            raise DataError(f"unmatched images under '{self.root}' (pairs are matched by file name without suffix); " + "; ".join(parts))
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
        return self.pairs[index][0].relative_to(self.root / self.folders[0] if self.layout == "folders" else self.root).as_posix()

    on_device = True

    def device_keys(self) -> list[tuple[str, int]]:
        keys = []
        for pa, pb in self.pairs:
            if pb is None:
                keys.append((str(pa), self.in_channels))
                if self.out_channels != self.in_channels:
                    keys.append((str(pa), self.out_channels))
            else:
                a, b = (self.in_channels, self.out_channels) if self.direction == "a_to_b" else (self.out_channels, self.in_channels)
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


def _domain_dirs(root: Path, phase: str) -> tuple[Path, Path]:
    """``root/{phase}A`` + ``root/{phase}B`` when present, else ``root/A`` + ``root/B``."""
    for a, b in ((f"{phase}A", f"{phase}B"), ("A", "B")):
        if (root / a).is_dir() or (root / b).is_dir():
            return root / a, root / b
    raise DataError(
        f"data folder '{root}' has neither {phase}A/ + {phase}B/ nor A/ + B/ sub-folders; "
        "put the images of each domain in its own folder (see datasets/README.md)"
    )


class UnpairedDataset(ImageFiles):
    """Two unpaired image domains for CycleGAN.

    Folders: ``root/trainA`` + ``root/trainB`` (``testA``/``testB`` when ``train`` is
    false), or ``root/A`` + ``root/B``. An epoch has ``max(len(A), len(B))`` items: item
    ``i`` takes A image ``i mod len(A)`` and a B image drawn at random from
    ``(seed, epoch, i)`` (or ``i mod len(B)`` with ``serial``), so the pairing is
    reproducible after a resume. Each domain gets its own augmentation draw (geometry and colour).
    Items: ``{"a", "b"}`` float ``(C, H, W)`` in [-1, 1] and ``"name_a"``, ``"name_b"``.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        a_channels: int = 3,
        b_channels: int = 3,
        preprocess: str = "resize_and_crop",
        load_size: int = 286,
        crop_size: int = 256,
        flip: bool = True,
        train: bool = True,
        serial: bool = False,
        seed: int = 0,
        max_items: int | None = None,
        rotate90: bool = False,
        scale_jitter: float = 0.0,
        color_jitter: float = 0.0,
    ) -> None:
        self.root = Path(root).expanduser()
        require_dir(self.root, "data folder")
        self.a_dir, self.b_dir = _domain_dirs(self.root, "train" if train else "test")
        a, b = self._list(self.a_dir), self._list(self.b_dir)
        self.a_files, self.b_files = self.keep_first(a, max_items), self.keep_first(b, max_items)
        if self.limited_from is not None:
            self.limited_from = max(len(a), len(b))
        self.a_channels, self.b_channels = a_channels, b_channels
        self.transform = paired_transform(preprocess=preprocess, load_size=load_size, crop_size=crop_size, flip=flip, train=train,
                                          rotate90=rotate90, scale_jitter=scale_jitter)
        self.color_jitter = color_jitter if train else 0.0
        self.serial = serial or not train
        self.seed = seed

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
        a = to_channels(self.read(pa), self.a_channels)
        b = to_channels(self.read(pb), self.b_channels)
        sb = sample_seed(self.seed + 1, epoch, index)
        if self.transform.transforms:
            a, b = apply_single(self.transform, a, s), apply_single(self.transform, b, sb)
        a, b = apply_color(a, draw_color(self.color_jitter, s)), apply_color(b, draw_color(self.color_jitter, sb))
        return {"a": to_tensor(a), "b": to_tensor(b), "name_a": pa.relative_to(self.a_dir).as_posix(),
                "name_b": pb.relative_to(self.b_dir).as_posix()}

    def _pick(self, epoch: int, index: int) -> tuple[int, Path, Path]:
        """The item's seed and its A and B files."""
        s = sample_seed(self.seed, epoch, index)
        pa = self.a_files[index % len(self.a_files)]
        return s, pa, self.b_files[index % len(self.b_files) if self.serial else s % len(self.b_files)]

    on_device = True

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
        return DeviceItem({"a": (Source((str(pa), self.a_channels)), ga), "b": (Source((str(pb), self.b_channels)), gb)},
                          {"name_a": pa.relative_to(self.a_dir).as_posix(), "name_b": pb.relative_to(self.b_dir).as_posix()})


class SRDataset(ImageFiles):
    """High-resolution images and their low-resolution versions for super-resolution.

    LR images are made on the fly with MATLAB-style antialiased bicubic downscaling
    (:func:`i2i.data.resize.imresize`) and rounded to 8-bit levels, as if saved, unless
    ``lr_root`` holds them (matched by relative path without suffix; sizes checked).
    Training items are random HR crops of ``crop_size`` (a multiple of ``scale``) with
    flips and, with ``rotate``, 90-degree rotations, drawn from ``(seed, epoch, index)``.
    Non-training items are centre crops of ``crop_size`` (fixed-size previews), or whole
    images cropped to a multiple of ``scale`` with ``full_images``.
    Images smaller than the crop are skipped with a warning naming them (an error when
    none remain). Items: ``{"input": LR, "target": HR}`` in [-1, 1] and ``"name"``; without
    ``make_input``, HR only (the pipeline degrades it on the device, e.g. Real-ESRGAN's model).
    """

    def __init__(
        self,
        root: str | Path,
        *,
        scale: int,
        crop_size: int = 96,
        channels: int = 3,
        train: bool = True,
        flip: bool = True,
        rotate: bool = False,
        lr_root: str | Path | None = None,
        full_images: bool = False,
        seed: int = 0,
        max_items: int | None = None,
        make_input: bool = True,
    ) -> None:

        self.root = Path(root).expanduser()
        self.make_input = make_input or lr_root is not None
        require_dir(self.root, "HR image folder")
        if crop_size % scale:
            raise DataError(f"data.crop_size={crop_size} must be a multiple of the scale {scale}")
        self.scale, self.crop_size, self.channels = scale, crop_size, channels
        self.train, self.flip, self.rotate, self.full = train, flip, rotate, full_images
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
        return y, x, flip, int(rng.integers(0, 4)) if self.rotate else 0

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
        images = {"target": (Source((str(self.files[index]), self.channels)), Geometry((y, x, c, c), flip=flip, quarter_turns=turns))}
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
                raise ImageReadError(f"LR image '{self.lr_files[index]}' is {lr.shape[1]}x{lr.shape[0]}, expected {w}x{h} "
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

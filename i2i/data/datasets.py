"""The datasets every pipeline reads, and the data config sections beside them.

Samples are dicts of float tensors in [-1, 1] plus the file name; the trainer moves
tensors to the device and passes the dict to the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import warnings

import cv2
import numpy as np
import torch
from PIL import Image

from ..config import DataConfig
from ..hints import first_line
from ..options import ImageSize, Pixels
from .cache import ImageFiles
from .io import ImageReadError, list_images, to_channels, to_tensor
from .resize import imresize
from .sampling import sample_seed
from .transforms import apply_paired, apply_single, paired_transform


@dataclass
class CropDataConfig(DataConfig):
    """Image-to-image data: ``preprocess`` resizes to ``load_size`` and/or crops ``crop_size``
    (random crops and ``flip`` when training, centre crops otherwise)."""

    preprocess: Literal["resize_and_crop", "crop", "resize", "none"] = "resize_and_crop"
    load_size: Pixels = 286
    crop_size: Pixels = 256
    flip: bool = True


@dataclass
class PairedDataConfig(CropDataConfig):
    """Paired data (:class:`PairedDataset`): ``root`` holds ``A/`` + ``B/`` folders matched by file
    stem or side-by-side AB images (``layout: auto`` picks by looking); ``direction`` says
    which side is the input."""

    layout: Literal["auto", "folders", "aligned"] = "auto"
    direction: Literal["a_to_b", "b_to_a"] = "a_to_b"


@dataclass
class UnpairedDataConfig(CropDataConfig):
    """Unpaired data (:class:`UnpairedDataset`): ``root`` holds ``trainA/ trainB/ testA/ testB/``
    (or ``A/ B/``); B images are drawn at random unless ``serial_batches``."""

    serial_batches: bool = False


@dataclass
class SRDataConfig(DataConfig):
    """Super-resolution data (:class:`SRDataset`): ``root`` is a folder of HR images; LR images
    are made with MATLAB-style bicubic unless ``lr_root`` holds them (matched by name);
    ``crop_size`` is the HR crop; ``flip`` and ``rotate`` (90 degrees) augment."""

    crop_size: Pixels = 96
    lr_root: str | None = None
    flip: bool = True
    rotate: bool = False


@dataclass
class GenerationDataConfig(DataConfig):
    """Images to generate (:class:`ImageDataset`): ``dataset: folder`` reads every image under
    ``root`` (class = first sub-folder, for conditional models), resized and centre-cropped
    to ``image_size`` (``fit: pad`` centres smaller images on a black canvas instead, e.g.
    Fashion-MNIST's 28 pixels in 32; ``fit: resize`` enlarges them); or a torchvision dataset from local files under ``root``
    (``download: true`` fetches it: an explicit network access)."""

    dataset: Literal["folder", "mnist", "fashion_mnist", "cifar10"] = "folder"
    image_size: ImageSize = 64
    fit: Literal["pad", "resize"] = "pad"
    flip: bool = True
    download: bool = False


class DataError(ValueError):
    """The data on disk does not fit what the config asks; the message names the folder or file."""


def _require_dir(path: Path, what: str) -> None:
    if not path.exists():
        raise DataError(f"{what} '{path}' does not exist; check the path (see datasets/README.md for the layouts)")
    if not path.is_dir():
        raise DataError(f"{what} '{path}' is not a folder")


class PairedDataset(ImageFiles):
    """Paired images for pix2pix.

    Layouts: ``folders`` — ``root/A/`` and ``root/B/`` matched by file stem (sub-folders
    allowed: the relative path without suffix is the key); ``aligned`` — each file holds A
    and B side by side (A left). ``auto`` picks ``folders`` when ``root/A`` exists.
    Items: ``{"input", "target"}`` float ``(C, H, W)`` in [-1, 1] oriented by ``direction``,
    and ``"name"`` (relative path of the A file).
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
    ) -> None:
        self.root = Path(root).expanduser()
        _require_dir(self.root, "data folder")
        self.folders = folders
        if layout == "auto":
            layout = "folders" if (self.root / folders[0]).is_dir() else "aligned"
        elif layout == "aligned" and (self.root / folders[0]).is_dir() and (self.root / folders[1]).is_dir():
            raise DataError(f"data.layout is 'aligned' (side-by-side AB images) but '{self.root}' holds {folders[0]}/ and "
                            f"{folders[1]}/ folders; set data.layout: folders (or auto)")
        self.layout = layout
        self.pairs: list[tuple[Path, Path | None]] = self._find_pairs()
        self.direction = direction
        self.in_channels, self.out_channels = in_channels, out_channels
        self.transform = paired_transform(preprocess=preprocess, load_size=load_size, crop_size=crop_size, flip=flip, train=train)
        self.train = train
        self.seed = seed

    def _find_pairs(self) -> list[tuple[Path, Path | None]]:
        if self.layout == "aligned":
            files = list_images(self.root)
            if not files:
                raise DataError(f"data folder '{self.root}' holds no images; expected side-by-side AB images or A/ and B/ folders")
            return [(f, None) for f in files]
        a_dir, b_dir = self.root / self.folders[0], self.root / self.folders[1]
        _require_dir(a_dir, "folder")
        _require_dir(b_dir, "folder")
        a = {p.relative_to(a_dir).with_suffix("").as_posix(): p for p in list_images(a_dir)}
        b = {p.relative_to(b_dir).with_suffix("").as_posix(): p for p in list_images(b_dir)}
        if not a or not b:
            empty = a_dir if not a else b_dir
            raise DataError(f"folder '{empty}' holds no images; put the paired images in {a_dir.name}/ and {b_dir.name}/ with matching names")
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
            raise ImageReadError(f"paired images differ in size: '{pa}' is {img.shape[1]}x{img.shape[0]}, '{pb}' is {b.shape[1]}x{b.shape[0]}")
        return img, b

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        """Item ``index`` augmented for epoch 0, or for ``epoch`` when ``key`` is
        ``(epoch, index)`` (what :class:`EpochSampler` yields, so that persistent loader
        workers see the right epoch)."""
        epoch, index = key if isinstance(key, tuple) else (0, key)
        a, b = self.load_pair(index)
        src, dst = (a, b) if self.direction == "a_to_b" else (b, a)
        src, dst = to_channels(src, self.in_channels), to_channels(dst, self.out_channels)
        if self.transform.transforms:
            src, dst = apply_paired(self.transform, src, dst, sample_seed(self.seed, epoch, index))
        name = self.pairs[index][0].relative_to(self.root / self.folders[0] if self.layout == "folders" else self.root).as_posix()
        return {"input": to_tensor(src), "target": to_tensor(dst), "name": name}


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
    reproducible after a resume. Each domain gets its own augmentation draw.
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
    ) -> None:
        self.root = Path(root).expanduser()
        _require_dir(self.root, "data folder")
        self.a_dir, self.b_dir = _domain_dirs(self.root, "train" if train else "test")
        self.a_files = self._list(self.a_dir)
        self.b_files = self._list(self.b_dir)
        self.a_channels, self.b_channels = a_channels, b_channels
        self.transform = paired_transform(preprocess=preprocess, load_size=load_size, crop_size=crop_size, flip=flip, train=train)
        self.serial = serial or not train
        self.seed = seed

    @staticmethod
    def _list(folder: Path) -> list[Path]:
        _require_dir(folder, "domain folder")
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
        s = sample_seed(self.seed, epoch, index)
        pa = self.a_files[index % len(self.a_files)]
        pb = self.b_files[index % len(self.b_files) if self.serial else s % len(self.b_files)]
        a = to_channels(self.read(pa), self.a_channels)
        b = to_channels(self.read(pb), self.b_channels)
        if self.transform.transforms:
            a = apply_single(self.transform, a, s)
            b = apply_single(self.transform, b, sample_seed(self.seed + 1, epoch, index))
        return {"a": to_tensor(a), "b": to_tensor(b), "name_a": pa.relative_to(self.a_dir).as_posix(),
                "name_b": pb.relative_to(self.b_dir).as_posix()}


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
    none remain). Items: ``{"input": LR, "target": HR}`` in [-1, 1] and ``"name"``.
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
    ) -> None:

        self.root = Path(root).expanduser()
        _require_dir(self.root, "HR image folder")
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
        self.files = keep
        self.lr_files: list[Path] | None = None
        if lr_root is not None:
            lr_dir = Path(lr_root).expanduser()
            _require_dir(lr_dir, "LR image folder")
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
            if self.train:
                rng = np.random.default_rng(sample_seed(self.seed, epoch, index))
                y, x = int(rng.integers(0, (h - c) // s + 1)) * s, int(rng.integers(0, (w - c) // s + 1)) * s
            else:
                y, x = ((h - c) // (2 * s)) * s, ((w - c) // (2 * s)) * s
            if self.lr_files is None:
                hr = hr[y : y + c, x : x + c]
                lr = self._lr_of(hr, index)
            else:
                full_lr = self._lr_of(hr[: h - h % s, : w - w % s], index)
                hr, lr = hr[y : y + c, x : x + c], full_lr[y // s : (y + c) // s, x // s : (x + c) // s]
            if self.train:
                if self.flip and rng.random() < 0.5:
                    hr, lr = hr[:, ::-1], lr[:, ::-1]
                if self.rotate:
                    k = int(rng.integers(0, 4))
                    hr, lr = np.rot90(hr, k), np.rot90(lr, k)
        name = self.files[index].relative_to(self.root).as_posix()
        return {"input": to_tensor(np.ascontiguousarray(lr)), "target": to_tensor(np.ascontiguousarray(hr)), "name": name}


def _square(img: np.ndarray, size: int, fit: str = "resize") -> np.ndarray:
    """``size`` x ``size``: with ``fit="pad"`` an image no larger than that is centred on a
    black (zero) canvas, pixels untouched (28 -> 32 for MNIST / Fashion-MNIST, as the DCGAN
    example's data are used); otherwise, and for larger images, the shorter side is resized
    to ``size`` (area filter shrinking, cubic enlarging) and the centre cropped."""
    if fit == "pad" and img.shape[0] <= size and img.shape[1] <= size:
        h, w = img.shape[:2]
        out = np.zeros((size, size, img.shape[2]), img.dtype)
        y, x = (size - h) // 2, (size - w) // 2
        out[y : y + h, x : x + w] = img
        return out

    h, w = img.shape[:2]
    s = size / min(h, w)
    if s != 1:
        img = cv2.resize(img, (max(size, round(w * s)), max(size, round(h * s))), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
        if img.ndim == 2:
            img = img[:, :, None]
    h, w = img.shape[:2]
    y, x = (h - size) // 2, (w - size) // 2
    return img[y : y + size, x : x + size]


TORCHVISION_DATASETS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "cifar10": "CIFAR10"}


class ImageDataset(ImageFiles):
    """Images for unconditional / class-conditional generation.

    ``dataset="folder"``: every image under ``root``; with ``labels``, the class is the
    first sub-folder (sorted names -> 0, 1, ...). Otherwise a torchvision dataset (MNIST,
    Fashion-MNIST, CIFAR-10) read from its files under ``root``; ``download`` lets
    torchvision fetch them (an explicit, opt-in network access). Images are resized and
    centre-cropped to ``size``, converted to ``channels``, flipped at random in training
    (not for digit datasets). ``fit="pad"`` centres images no larger than ``size`` on a black
    canvas instead (28 -> 32 for MNIST / Fashion-MNIST: the pixels stay as drawn);
    ``"resize"`` resizes them too. Items: ``{"image": (C, S, S) in [-1, 1], "label": int}``.
    """

    def __init__(self, root: str | Path, *, size: int, channels: int = 3, dataset: str = "folder", labels: bool = False,
                 train: bool = True, flip: bool = True, download: bool = False, seed: int = 0, fit: str = "pad") -> None:
        if fit not in ("pad", "resize"):
            raise ValueError(f"data.fit={fit!r} must be 'pad' or 'resize'")
        self.root, self.size, self.channels, self.seed, self.fit = Path(root).expanduser(), size, channels, seed, fit
        self.flip = flip and train and dataset not in ("mnist", "fashion_mnist")
        self.tv = None
        if dataset == "folder":
            _require_dir(self.root, "image folder")
            self.files = list_images(self.root)
            if not self.files:
                raise DataError(f"image folder '{self.root}' holds no images")
            classes = sorted({p.relative_to(self.root).parts[0] for p in self.files if len(p.relative_to(self.root).parts) > 1})
            if labels and not classes:
                raise DataError(f"a class-conditional model needs one sub-folder per class under '{self.root}'")
            self.classes = classes
            self.labels = [classes.index(p.relative_to(self.root).parts[0]) if labels else 0 for p in self.files]
        else:
            import torchvision  # torchvision imports torch._dynamo (~1.5 s): only where used
            from torchvision.datasets.utils import extract_archive

            cls = getattr(torchvision.datasets, TORCHVISION_DATASETS[dataset])
            raw = self.root / TORCHVISION_DATASETS[dataset] / "raw"
            if dataset in ("mnist", "fashion_mnist") and raw.is_dir():
                # The original files are .gz (as the Debian package and the download ship
                # them); torchvision reads the extracted idx files: extract once.
                for gz in raw.glob("*.gz"):
                    if not gz.with_suffix("").exists():
                        extract_archive(str(gz), str(raw))
            try:
                self.tv = cls(str(self.root), train=train, download=download)
            except RuntimeError as e:
                raise DataError(
                    f"{TORCHVISION_DATASETS[dataset]} files not found under '{self.root}' ({first_line(e)}). Put the "
                    f"original files in '{self.root / TORCHVISION_DATASETS[dataset] / 'raw'}' (CIFAR-10: the extracted "
                    "'cifar-10-batches-py' folder in root), or set data.download: true to let torchvision fetch them"
                ) from None
            self.classes = list(self.tv.classes)

    def __len__(self) -> int:
        return len(self.tv) if self.tv is not None else len(self.files)

    def image_files(self) -> list[Path]:
        return [] if self.tv is not None else list(self.files)  # torchvision datasets are arrays in memory already

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        if self.tv is not None:
            pil, label = self.tv[index]
            img = np.asarray(pil)
        else:
            img, label = self.read(self.files[index]), self.labels[index]
        img = _square(to_channels(img, self.channels), self.size, self.fit)
        if self.flip and np.random.default_rng(sample_seed(self.seed, epoch, index)).random() < 0.5:
            img = img[:, ::-1]
        return {"image": to_tensor(np.ascontiguousarray(img)), "label": int(label)}

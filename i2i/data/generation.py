"""Images for generation (DCGAN): a folder (classes = first sub-folders) or a torchvision
dataset from local files, squared to the model's size."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from ..config import DataConfig
from ..hints import first_line
from ..options import ImageSize
from .base import DataError, ImageFiles, require_dir
from .io import list_images, to_channels, to_tensor
from .plan import DeviceItem, Geometry, Source
from .sampling import sample_seed


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
        img = cv2.resize(img, (max(size, round(w * s)), max(size, round(h * s))),
                         interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
        if img.ndim == 2:
            img = img[:, :, None]
    h, w = img.shape[:2]
    y, x = (h - size) // 2, (w - size) // 2
    return img[y : y + size, x : x + size]


TORCHVISION_DATASETS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "cifar10": "CIFAR10"}


@dataclass
class GenerationDataConfig(DataConfig):
    """Images to generate (:class:`ImageDataset`): ``dataset: folder`` reads every image under
    ``root`` (class = first sub-folder, for conditional models), resized and centre-cropped
    to ``image_size`` (``fit: pad`` centres smaller images on a black canvas instead, e.g.
    Fashion-MNIST's 28 pixels in 32; ``fit: resize`` enlarges them); or a torchvision dataset from local files
    under ``root``
    (``download: true`` fetches it: an explicit network access)."""

    dataset: Literal["folder", "mnist", "fashion_mnist", "cifar10"] = "folder"
    image_size: ImageSize = 64
    fit: Literal["pad", "resize"] = "pad"
    flip: bool = True
    download: bool = False


class ImageDataset(ImageFiles):
    """Images for unconditional / class-conditional generation.

    ``data.dataset`` ``folder``: every image under ``root``; with ``labels``, the class is the
    first sub-folder (sorted names -> 0, 1, ...). Otherwise a torchvision dataset (MNIST,
    Fashion-MNIST, CIFAR-10) read from its files under ``root``; ``data.download`` lets
    torchvision fetch them (an explicit, opt-in network access). Images are resized and
    centre-cropped to ``data.image_size``, converted to ``channels``, flipped at random in
    training (not for digit datasets). ``data.fit`` ``pad`` centres images no larger than that
    on a black canvas instead (28 -> 32 for MNIST / Fashion-MNIST: the pixels stay as drawn);
    ``resize`` resizes them too. Items: ``{"image": (C, S, S) in [-1, 1], "label": int}``.
    """

    def __init__(self, root: str | Path, data: GenerationDataConfig | None = None, *, channels: int = 3,
                 labels: bool = False,
                 train: bool = True, seed: int = 0) -> None:
        data = data or GenerationDataConfig()
        dataset, download, max_items = data.dataset, data.download, data.max_items if train else None
        self.root, self.size, self.channels, self.seed, self.fit = (
            Path(root).expanduser(),
            data.image_size,
            channels,
            seed,
            data.fit,
        )
        self.flip = data.flip and train and dataset not in ("mnist", "fashion_mnist")
        self.tv = None
        self.tv_index: list[int] | None = None  # data.max_items of a torchvision dataset: the items kept
        if dataset == "folder":
            require_dir(self.root, "image folder")
            self.files = list_images(self.root)
            if not self.files:
                raise DataError(f"image folder '{self.root}' holds no images")
            classes = sorted(
                {p.relative_to(self.root).parts[0] for p in self.files if len(p.relative_to(self.root).parts) > 1}
            )
            if labels and not classes:
                raise DataError(f"a class-conditional model needs one sub-folder per class under '{self.root}'")
            self.classes = classes
            all_labels = [classes.index(p.relative_to(self.root).parts[0]) if labels else 0 for p in self.files]
            folders = [
                p.relative_to(self.root).parts[0] if len(p.relative_to(self.root).parts) > 1 else "" for p in self.files
            ]
            order = {f: i for i, f in enumerate(sorted(set(folders)))}
            spread = [order[f] for f in folders] if classes else None  # data.max_items: spread over the folders
            kept = self.keep_first(list(range(len(self.files))), max_items, spread)
            self.files, self.labels = [self.files[i] for i in kept], [all_labels[i] for i in kept]
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
            self.tv_index = self.keep_first(list(range(len(self.tv))), max_items, [int(t) for t in self.tv.targets])

    def __len__(self) -> int:
        return len(self.tv_index) if self.tv_index is not None else len(self.files)

    def image_files(self) -> list[Path]:
        return [] if self.tv is not None else list(self.files)  # torchvision datasets are arrays in memory already

    def _image(self, index: int) -> tuple[np.ndarray, int]:
        """Item ``index``'s image (squared, in its channels, before the flip) and label."""
        if self.tv is not None:
            pil, label = self.tv[self.tv_index[index]]
            img = np.asarray(pil)
        else:
            img, label = self.read(self.files[index]), self.labels[index]
        return _square(to_channels(img, self.channels), self.size, self.fit), int(label)

    def _flips(self, epoch: int, index: int) -> bool:
        return bool(self.flip and np.random.default_rng(sample_seed(self.seed, epoch, index)).random() < 0.5)

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        img, label = self._image(index)
        if self._flips(epoch, index):
            img = img[:, ::-1]
        return {"image": to_tensor(np.ascontiguousarray(img)), "label": label}

    on_device = True

    def device_keys(self) -> list[tuple[str, int]]:
        return [(f"#{i}", self.channels) for i in range(len(self))]  # by index: the squared images are cached

    def device_image(self, key: tuple[str, int]) -> np.ndarray:
        return self._image(int(key[0][1:]))[0]

    def device_item(self, key: tuple[int, int]) -> DeviceItem:
        epoch, index = key
        label = self.labels[index] if self.tv_index is None else int(self.tv.targets[self.tv_index[index]])
        g = Geometry((0, 0, self.size, self.size), flip=self._flips(epoch, index))
        return DeviceItem({"image": (Source((f"#{index}", self.channels)), g)}, {"label": label})

"""The data sections of the pipelines' configs: each dataset's keys, ranges and choices
(re-exported by :mod:`i2i.data.datasets`, beside the datasets that read them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from ..config import DataConfig
from ..options import ImageSize, Pixels, Range
from .degradations import RealESRGANDegradation

#: A jitter strength: 0 (off) up to, not including, 1.
Jitter = Annotated[float, Range(0, 1, high_open=True)]


@dataclass
class CropDataConfig(DataConfig):
    """Image-to-image data: ``preprocess`` resizes to ``load_size`` and/or crops ``crop_size``
    (random crops and ``flip`` when training, centre crops otherwise). ``rotate90`` (off):
    random quarter turns in training, the same for both images of a pair; with ``flip`` all 8
    rotations and reflections of the square crop (for data with no up, e.g. aerial or
    microscope images; not with ``preprocess: none``). ``scale_jitter`` = s (0: off): in
    training the resize before the crop is scaled by a factor from [1 - s, 1 + s] (never below
    ``crop_size``; ``preprocess`` resize_and_crop or crop). ``color_jitter`` = s (0: off):
    brightness, contrast and saturation factors from [1 - s, 1 + s] (torchvision's
    ``ColorJitter`` without hue), one draw for both images of a pair (not for label maps, whose
    colours are classes)."""

    preprocess: Literal["resize_and_crop", "crop", "resize", "none"] = "resize_and_crop"
    load_size: Pixels = 286
    crop_size: Pixels = 256
    flip: bool = True
    rotate90: bool = False
    scale_jitter: Jitter = 0.0
    color_jitter: Jitter = 0.0

    def transform_args(self) -> dict[str, Any]:
        """The dataset keywords these keys set (the same for every image-to-image dataset)."""
        return {"preprocess": self.preprocess, "load_size": self.load_size, "crop_size": self.crop_size, "flip": self.flip,
                "rotate90": self.rotate90, "scale_jitter": self.scale_jitter, "color_jitter": self.color_jitter}


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
    ``crop_size`` is the HR crop; ``flip`` and ``rotate`` (90 degrees) augment.
    ``degradation: realesrgan`` makes the training inputs with Real-ESRGAN's second-order model
    instead, on the training device, with the ranges of ``realesrgan``
    (:class:`~i2i.data.degradations.RealESRGANDegradation`); validation stays bicubic."""

    crop_size: Pixels = 96
    lr_root: str | None = None
    flip: bool = True
    rotate: bool = False
    degradation: Literal["bicubic", "realesrgan"] = "bicubic"
    realesrgan: RealESRGANDegradation = field(default_factory=RealESRGANDegradation)


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

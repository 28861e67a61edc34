"""i2i: image-to-image translation with GANs (pix2pix, CycleGAN, SRGAN, DCGAN).

Public API::

    cfg = i2i.load_config("configs/pix2pix/demo.yaml", ["train.steps=100"])
    i2i.train(cfg)
    tr = i2i.Translator.from_checkpoint("runs/demo/checkpoints/last.pt")
    out = tr(image)                      # numpy / PIL / tensor in, same kind out
    G = i2i.build_generator("unet_256")  # nets and losses for your own pipelines
    tr.convert_folder("clips/", "out/")  # images and videos (i2i.video: the streaming itself)

Each public name is imported when first used (a module ``__getattr__``), so ``import i2i`` or
``from i2i.nets import UnetGenerator`` loads no training, data or video code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

# public name -> the module that defines it (imported on first use)
_PUBLIC: dict[str, str] = {
    "CheckpointError": "i2i.checkpoint",
    "Config": "i2i.config",
    "ConfigError": "i2i.config",
    "DataError": "i2i.data.base",
    "GANLoss": "i2i.losses",
    "Generator": "i2i.generate",
    "ImageReadError": "i2i.data.io",
    "Trainer": "i2i.engine.trainer",
    "TrainingDiverged": "i2i.engine.trainer",
    "Translator": "i2i.translator",
    "build_discriminator": "i2i.nets.registry",
    "build_generator": "i2i.nets.registry",
    "export_generator": "i2i.exporting",
    "gradient_penalty": "i2i.losses",
    "load_config": "i2i.recipes",
    "read_image": "i2i.data.io",
    "train": "i2i.engine.trainer",
    "write_image": "i2i.data.io",
}
# public name -> a module that is itself the public object
_MODULES: dict[str, str] = {"video": "i2i.convert.video", "ray": "i2i.ray_engine"}

__all__ = [  # the names above, written out for tools that read it statically (tests/test_architecture.py checks)
    "CheckpointError", "Config", "ConfigError", "DataError", "GANLoss", "Generator", "ImageReadError", "Trainer",
    "TrainingDiverged", "Translator", "__version__", "build_discriminator", "build_generator", "export_generator",
    "gradient_penalty", "load_config", "ray", "read_image", "train", "video", "write_image",
]


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        value = importlib.import_module(_MODULES[name])
    elif name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
    else:
        raise AttributeError(f"module 'i2i' has no attribute {name!r}")
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # what static checkers and IDEs see
    from . import ray_engine as ray
    from .checkpoint import CheckpointError
    from .config import Config, ConfigError
    from .convert import video
    from .data.base import DataError
    from .data.io import ImageReadError, read_image, write_image
    from .engine.trainer import Trainer, TrainingDiverged, train
    from .exporting import export_generator
    from .generate import Generator
    from .losses import GANLoss, gradient_penalty
    from .nets.registry import build_discriminator, build_generator
    from .recipes import load_config
    from .translator import Translator

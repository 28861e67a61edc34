"""i2i: image-to-image translation with GANs (pix2pix, CycleGAN, SRGAN, DCGAN).

Public API::

    cfg = i2i.load_config("configs/pix2pix/demo.yaml", ["train.steps=100"])
    i2i.train(cfg)
    tr = i2i.Translator.from_checkpoint("runs/demo/checkpoints/last.pt")
    out = tr(image)                      # numpy / PIL / tensor in, same kind out
    G = i2i.build_generator("unet_256")  # nets and losses for your own pipelines
    tr.convert_folder("clips/", "out/")  # images and videos (i2i.video: the streaming itself)
"""

from . import video
from ._version import __version__
from .checkpoint import CheckpointError
from .config import Config, ConfigError, load_config
from .data.datasets import DataError
from .data.io import ImageReadError, read_image, write_image
from .engine.trainer import Trainer, TrainingDiverged, train
from .exporting import export_generator
from .losses import GANLoss, gradient_penalty
from .registry import build_discriminator, build_generator
from .sampler import Generator
from .translator import Translator

__all__ = [
    "CheckpointError",
    "Config",
    "ConfigError",
    "DataError",
    "GANLoss",
    "Generator",
    "ImageReadError",
    "Trainer",
    "TrainingDiverged",
    "Translator",
    "__version__",
    "build_discriminator",
    "build_generator",
    "export_generator",
    "gradient_penalty",
    "load_config",
    "read_image",
    "train",
    "video",
    "write_image",
]

"""i2i: image-to-image translation with GANs (pix2pix, CycleGAN, SRGAN, DCGAN).

Public API::

    cfg = i2i.load_config("configs/pix2pix/demo.yaml", ["train.steps=100"])
    i2i.train(cfg)
    tr = i2i.Translator.from_checkpoint("runs/demo/checkpoints/last.pt")
    out = tr(image)                      # numpy / PIL / tensor in, same kind out
    G = i2i.build_generator("unet_256")  # nets and losses for your own pipelines
"""

__version__ = "0.1.0"

from .checkpoint import CheckpointError  # noqa: E402
from .config import Config, ConfigError, load_config  # noqa: E402
from .data.datasets import DataError  # noqa: E402
from .data.io import ImageReadError, read_image, write_image  # noqa: E402
from .engine.trainer import Trainer, TrainingDiverged, train  # noqa: E402
from .exporting import export_generator  # noqa: E402
from .losses import GANLoss, gradient_penalty  # noqa: E402
from .registry import build_discriminator, build_generator  # noqa: E402
from .sampler import Generator  # noqa: E402
from .translator import Translator  # noqa: E402

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
    "write_image",
]

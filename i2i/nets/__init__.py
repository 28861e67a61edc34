"""Pure ``nn.Module`` building blocks. Nothing here knows about configs or files."""

from .blocks import count_parameters, init_weights, make_norm, set_test_mode, size_multiple
from .patchgan import PatchDiscriminator, PixelDiscriminator
from .resnet import ResnetBlock, ResnetGenerator
from .unet import UnetGenerator

__all__ = [
    "PatchDiscriminator",
    "PixelDiscriminator",
    "ResnetBlock",
    "ResnetGenerator",
    "UnetGenerator",
    "count_parameters",
    "init_weights",
    "make_norm",
    "set_test_mode",
    "size_multiple",
]

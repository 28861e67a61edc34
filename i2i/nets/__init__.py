"""Pure ``nn.Module`` networks and their building blocks. Nothing here knows about configs or files.

Every net takes images as float ``(N, C, H, W)`` in [-1, 1] (generation nets: latents) and is built
by name through :mod:`.registry` (``build_generator("unet_256")``); each net module declares its
presets beside it (``PRESETS``).
"""

from .blocks import count_parameters, init_weights, make_norm, set_test_mode, size_multiple
from .dcgan import DCGANDiscriminator, DCGANGenerator
from .patchgan import PatchDiscriminator, PixelDiscriminator
from .registry import DISCRIMINATORS, GENERATORS, build_discriminator, build_generator
from .resnet import ResnetBlock, ResnetGenerator
from .rrdbnet import RRDBNet
from .srresnet import SRGANDiscriminator, SRResNet
from .srvgg import SRVGGNet
from .unet import UnetGenerator
from .unet_discriminator import UNetDiscriminator

__all__ = [
    "DISCRIMINATORS",
    "GENERATORS",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "PatchDiscriminator",
    "PixelDiscriminator",
    "RRDBNet",
    "ResnetBlock",
    "ResnetGenerator",
    "SRGANDiscriminator",
    "SRResNet",
    "SRVGGNet",
    "UNetDiscriminator",
    "UnetGenerator",
    "build_discriminator",
    "build_generator",
    "count_parameters",
    "init_weights",
    "make_norm",
    "set_test_mode",
    "size_multiple",
]

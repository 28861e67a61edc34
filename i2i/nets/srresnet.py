"""SRResNet generator and the SRGAN discriminator (Ledig et al., CVPR 2017).

Generator: 9x9 conv + PReLU; ``n_blocks`` residual blocks (3x3 conv, BN, PReLU, 3x3 conv,
BN, skip); 3x3 conv + BN + long skip; per factor 2: 3x3 conv to 4x channels,
PixelShuffle(2), PReLU; 9x9 conv to the output. ``norm="none"`` drops every batch norm
(the common modern variant, e.g. EDSR / BasicSR's MSRResNet). ``global_skip`` adds the
bilinearly upsampled input to the output, so the network learns only the detail missing
from interpolation (as BasicSR's MSRResNet; not in the paper). Fully convolutional: any
input size, output ``scale`` times larger.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as sn

from ..options import Blocks, ImageChannels, Range, Width
from .blocks import BatchOrNone, BicubicUpsample, check_choice, conv_bias, is_power_of_two, make_norm


class SRResidualBlock(nn.Module):
    """``x + conv-norm-PReLU-conv-norm(x)``; shape ``(N, C, H, W)`` preserved."""

    def __init__(self, *, channels: int, norm: BatchOrNone = "batch") -> None:
        super().__init__()
        bias = conv_bias(norm)
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=bias),
            make_norm(norm, channels),
            nn.PReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=bias),
            make_norm(norm, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SRResNet(nn.Module):
    """SRResNet. Input ``(N, in_channels, H, W)`` in [-1, 1]; output
    ``(N, out_channels, scale*H, scale*W)``, nominally in [-1, 1] (linear output layer, as in
    the paper; clip when converting to images).

    Args:
        scale: 2, 4 or 8 (any power of two).
        n_blocks: residual blocks (16 in the paper).
        base_channels: feature channels (64 in the paper).
        norm: ``batch`` (paper) or ``none``.
        global_skip: add an upsampling of the input to the output (off in the paper): ``bicubic``
            (MATLAB-exact, the SR baseline) with the last layer zero-initialised, so the
            untrained net *is* bicubic and training learns only the residual; ``bilinear``
            (or ``true``, BasicSR's MSRResNet idea, as i2i before the bicubic option).
    """

    def __init__(
        self,
        *,
        in_channels: ImageChannels = 3,
        out_channels: ImageChannels = 3,
        scale: Annotated[int, Range(1, 16)] = 4,
        n_blocks: Blocks = 16,
        base_channels: Width = 64,
        norm: BatchOrNone = "batch",
        global_skip: bool | Literal["bilinear", "bicubic"] = False,
    ) -> None:
        super().__init__()
        check_choice("norm", norm, ("batch", "none"))
        if global_skip is True:
            global_skip = "bilinear"
        if global_skip not in (False, "bilinear", "bicubic"):
            raise ValueError(f"global_skip={global_skip!r} must be false, true / 'bilinear' or 'bicubic'")
        if global_skip and in_channels != out_channels:
            raise ValueError("global_skip needs in_channels == out_channels")
        self.global_skip = global_skip
        if not is_power_of_two(scale) or scale < 2:
            raise ValueError(f"scale={scale} is not supported; use 2, 4 or 8")
        c = base_channels
        self.head = nn.Sequential(nn.Conv2d(in_channels, c, 9, padding=4), nn.PReLU())
        self.body = nn.Sequential(
            *[SRResidualBlock(channels=c, norm=norm) for _ in range(n_blocks)],
            nn.Conv2d(c, c, 3, padding=1, bias=conv_bias(norm)),
            make_norm(norm, c),
        )
        up: list[nn.Module] = []
        for _ in range(int(math.log2(scale))):
            up += [nn.Conv2d(c, c * 4, 3, padding=1), nn.PixelShuffle(2), nn.PReLU()]
        self.upsample = nn.Sequential(*up)
        self.tail = nn.Conv2d(c, out_channels, 9, padding=4)
        self.bicubic = BicubicUpsample(scale) if global_skip == "bicubic" else None
        if self.bicubic is not None:
            self.tail.zero_init = True  # the untrained net equals bicubic
        self.scale = scale
        self.size_multiple = 1
        self.in_channels = in_channels
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        y = self.tail(self.upsample(h + self.body(h)))
        if self.global_skip == "bicubic":
            y = y + self.bicubic(x)
        elif self.global_skip:
            y = y + nn.functional.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return y

    def example_inputs(self, batch_size: int = 2) -> tuple[torch.Tensor, ...]:
        """A small valid LR input: ``(batch_size, in_channels, 8, 8)`` in [-1, 1]."""
        return (torch.rand(batch_size, self.in_channels, 8, 8) * 2 - 1,)


class SRGANDiscriminator(nn.Module):
    """The paper's VGG-style discriminator; returns one logit per image, ``(N, 1)``.

    Eight 3x3 convolutions (64 -> 512 channels; stride 2 on every second), batch norm on
    all but the first, LeakyReLU(0.2), then Dense(1024), LeakyReLU, Dense(1). The dense
    layer is sized for ``input_size`` x ``input_size`` inputs (the HR training crop, a
    multiple of 16).
    """

    def __init__(self, *, in_channels: ImageChannels = 3, base_channels: Width = 64,
                 input_size: Annotated[int, Range(16, 4096)] = 96,
                 norm: BatchOrNone = "batch",
                 spectral_norm: bool = False) -> None:
        super().__init__()
        if input_size % 16:
            raise ValueError(f"input_size={input_size} must be a multiple of 16 (four stride-2 convolutions)")
        def conv(cin: int, cout: int, stride: int, first: bool = False) -> nn.Module:
            m = nn.Conv2d(cin, cout, 3, stride, 1, bias=first or conv_bias(norm))  # the first has no norm after it
            return sn(m) if spectral_norm else m

        c = base_channels
        layers: list[nn.Module] = [conv(in_channels, c, 1, first=True), nn.LeakyReLU(0.2, True)]
        chans = [c, c, c * 2, c * 2, c * 4, c * 4, c * 8, c * 8]
        for i in range(1, 8):
            layers += [conv(chans[i - 1], chans[i], 2 if i % 2 else 1), make_norm(norm, chans[i]),
                       nn.LeakyReLU(0.2, True)]
        self.features = nn.Sequential(*layers)
        side = input_size // 16
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(c * 8 * side * side, 1024), nn.LeakyReLU(0.2, True),
                                        nn.Linear(1024, 1))
        self.input_size, self.in_channels = input_size, in_channels

    def example_inputs(self, batch_size: int = 2) -> tuple[torch.Tensor, ...]:
        """``(batch_size, in_channels, input_size, input_size)`` in [-1, 1]."""
        return (torch.rand(batch_size, self.in_channels, self.input_size, self.input_size) * 2 - 1,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(f"SRGAN discriminator built for {self.input_size}x{self.input_size} inputs, got "
                             f"{tuple(x.shape[-2:])}")
        return self.classifier(self.features(x))

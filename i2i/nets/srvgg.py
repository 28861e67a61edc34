"""SRVGGNetCompact, Real-ESRGAN's compact generator (``realesr-general-x4v3``,
``realesr-animevideov3``), built as Real-ESRGAN's ``srvgg_arch.py`` builds it, so its published
state dicts load by their own keys (``body.0`` ... ``body.{2 n_convs + 2}``).

A plain stack at the low resolution: 3x3 convolution, activation, ``n_convs`` x (3x3
convolution, activation), a 3x3 convolution to ``out_channels x scale^2`` channels and a
pixel-shuffle, plus an upsampling of the input (``base``: nearest as published, or MATLAB-exact
bicubic, whose last layer starts at zero so the untrained net equals bicubic). All work
happens at the input's resolution, which makes it several times faster than RRDBNet. The
published networks take and give RGB in [0, 1]; this module takes and gives [-1, 1] (the
nearest and bicubic bases commute with the affine map, so published weights give the published
outputs).
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..options import Blocks, ImageChannels, Range, Width
from .blocks import BicubicUpsample, check_choice


class SRVGGNet(nn.Module):
    """``(N, in_channels, H, W)`` in [-1, 1] -> ``(N, out_channels, scale H, scale W)`` in about
    [-1, 1] (not clamped). Defaults: ``realesr-animevideov3`` (16 convolutions, 64 features,
    PReLU, x4); ``realesr-general-x4v3`` has ``n_convs: 32``.

    Args:
        scale: upsampling factor (the pixel-shuffle's).
        n_convs: 3x3 convolutions between the first and the last.
        act: ``prelu`` (one slope per channel), ``relu`` or ``leakyrelu`` (0.1), as published.
        base: ``nearest`` (published) or ``bicubic``.
    """

    def __init__(
        self,
        *,
        in_channels: ImageChannels = 3,
        out_channels: ImageChannels = 3,
        scale: Annotated[int, Range(1, 8)] = 4,
        base_channels: Width = 64,
        n_convs: Blocks = 16,
        act: Literal["prelu", "relu", "leakyrelu"] = "prelu",
        base: Literal["nearest", "bicubic"] = "nearest",
    ) -> None:
        super().__init__()
        check_choice("act", act, ("prelu", "relu", "leakyrelu"))
        check_choice("base", base, ("nearest", "bicubic"))
        if in_channels != out_channels:
            raise ValueError("SRVGGNet adds an upsampled input to its output: in_channels must equal out_channels")
        c = base_channels

        def activation() -> nn.Module:
            return nn.PReLU(c) if act == "prelu" else nn.ReLU(inplace=True) if act == "relu" else nn.LeakyReLU(0.1,
                                                                                                               inplace=True)

        layers: list[nn.Module] = [nn.Conv2d(in_channels, c, 3, 1, 1), activation()]
        for _ in range(n_convs):
            layers += [nn.Conv2d(c, c, 3, 1, 1), activation()]
        last = nn.Conv2d(c, out_channels * scale * scale, 3, 1, 1)
        layers.append(last)
        self.body = nn.ModuleList(layers)
        self.shuffle = nn.PixelShuffle(scale)
        self.bicubic = BicubicUpsample(scale) if base == "bicubic" else None
        if self.bicubic is not None:
            last.zero_init = True  # the untrained net equals bicubic
        self.scale, self.base = scale, base
        self.in_channels, self.out_channels = in_channels, out_channels
        self.size_multiple = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The body sees the published [0, 1] image; its residual doubles on [-1, 1], and both
        # bases commute with the affine map: 2 (r + up(u)) - 1 = 2 r + up(2 u - 1).
        y = (x + 1) / 2
        for layer in self.body:
            y = layer(y)
        up = self.bicubic(x) if self.bicubic is not None else F.interpolate(x, scale_factor=self.scale, mode="nearest")
        return 2 * self.shuffle(y) + up

    def forward_unit(self, x: torch.Tensor) -> torch.Tensor:
        """The published network: RGB in [0, 1] -> [0, 1] (``base: nearest`` only)."""
        return (self.forward(x * 2 - 1) + 1) / 2

    def example_inputs(self, batch_size: int = 2) -> tuple[torch.Tensor, ...]:
        """A small valid input: ``(batch_size, in_channels, 8, 8)`` in [-1, 1]."""
        return (torch.rand(batch_size, self.in_channels, 8, 8) * 2 - 1,)


PRESETS: dict[str, tuple[str, dict[str, int]]] = {
    "srvgg_general_x4": ("srvgg", {"scale": 4, "n_convs": 32}),  # realesr-general-x4v3
    "srvgg_animevideo_x4": ("srvgg", {"scale": 4, "n_convs": 16}),  # realesr-animevideov3
}
"""Preset name -> (architecture, the keyword arguments it fixes): the published models' layouts."""

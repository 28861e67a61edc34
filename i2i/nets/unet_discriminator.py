"""Real-ESRGAN's U-Net discriminator with spectral normalisation (Wang et al., ICCVW 2021;
BasicSR's ``UNetDiscriminatorSN``, same layer names ``conv0`` ... ``conv9``).

It judges every pixel instead of the whole image or patches: three stride-2 4x4 convolutions
down, three bilinear x2 upsamplings each followed by a 3x3 convolution and added to the
encoder feature of the same size (``skip``), two more 3x3 convolutions and a 3x3 convolution to
one logit per pixel. Spectral norm on every convolution but the first and the last; LeakyReLU
0.2; no other normalisation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ..options import ImageChannels, Width


class UNetDiscriminator(nn.Module):
    """``(N, in_channels, H, W)`` in [-1, 1] -> ``(N, 1, H, W)`` logits (real > 0); H and W
    divisible by 8 (``size_multiple``). 4,376,897 parameters at the default width (64)."""

    def __init__(self, *, in_channels: ImageChannels = 3, base_channels: Width = 64, skip: bool = True) -> None:
        super().__init__()
        c = base_channels

        def sn(cin: int, cout: int, k: int, stride: int) -> nn.Module:
            return spectral_norm(nn.Conv2d(cin, cout, k, stride, 1, bias=False))

        self.conv0 = nn.Conv2d(in_channels, c, 3, 1, 1)
        self.conv1, self.conv2, self.conv3 = sn(c, 2 * c, 4, 2), sn(2 * c, 4 * c, 4, 2), sn(4 * c, 8 * c, 4, 2)
        self.conv4, self.conv5, self.conv6 = sn(8 * c, 4 * c, 3, 1), sn(4 * c, 2 * c, 3, 1), sn(2 * c, c, 3, 1)
        self.conv7, self.conv8 = sn(c, c, 3, 1), sn(c, c, 3, 1)
        self.conv9 = nn.Conv2d(c, 1, 3, 1, 1)
        self.skip, self.in_channels, self.size_multiple = skip, in_channels, 8

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] % 8 or x.shape[-1] % 8:
            raise ValueError("the U-Net discriminator needs height and width divisible by 8, got "
                             f"{tuple(x.shape[-2:])}")
        act = F.leaky_relu
        x0 = act(self.conv0(x), 0.2)
        x1 = act(self.conv1(x0), 0.2)
        x2 = act(self.conv2(x1), 0.2)
        y = act(self.conv3(x2), 0.2)
        for conv, enc in ((self.conv4, x2), (self.conv5, x1), (self.conv6, x0)):
            y = act(conv(F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)), 0.2)
            if self.skip:
                y = y + enc
        y = act(self.conv8(act(self.conv7(y), 0.2)), 0.2)
        return self.conv9(y)

    def example_inputs(self, batch_size: int = 2) -> tuple[torch.Tensor, ...]:
        """``(batch_size, in_channels, 16, 16)`` in [-1, 1]."""
        return (torch.rand(batch_size, self.in_channels, 16, 16) * 2 - 1,)

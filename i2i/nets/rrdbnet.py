"""RRDBNet, the ESRGAN / Real-ESRGAN generator (Wang et al., ECCVW 2018; ICCVW 2021), built as
BasicSR's ``rrdbnet_arch.py`` builds it, so its published state dicts load by their own keys
(``conv_first``, ``body.N.rdb{1,2,3}.conv{1..5}``, ``conv_body``, ``conv_up1``, ``conv_up2``,
``conv_hr``, ``conv_last``).

No normalisation. ``conv_first``; ``n_blocks`` residual-in-residual dense blocks (each three
dense blocks of five 3x3 convolutions growing by ``growth`` channels, LeakyReLU 0.2, residuals
scaled by 0.2 in every dense block and every RRDB); ``conv_body`` and a long skip; two
nearest-neighbour x2 upsamplings each followed by a 3x3 convolution and LeakyReLU; ``conv_hr``,
LeakyReLU, ``conv_last``. Always x4 inside: ``scale`` 2 and 1 first fold the input's 2x2 or
4x4 pixel blocks into channels (pixel-unshuffle, as Real-ESRGAN's x2plus model). The published
networks take and give RGB in [0, 1]; this module takes and gives [-1, 1], as every i2i net,
and converts at its ends, so published weights give the published outputs.
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from torch import nn

from ..options import Blocks, ImageChannels, Range, Width


class ResidualDenseBlock(nn.Module):
    """Five 3x3 convolutions, each seeing the input and every earlier output (``channels`` +
    k x ``growth`` in), LeakyReLU 0.2 after the first four; ``x + 0.2 * conv5``; shape kept."""

    def __init__(self, channels: int = 64, growth: int = 32) -> None:
        super().__init__()
        for k in range(5):
            out = channels if k == 4 else growth
            conv = nn.Conv2d(channels + k * growth, out, 3, 1, 1)
            nn.init.kaiming_normal_(conv.weight)  # BasicSR: the dense blocks start small (kaiming x 0.1)
            with torch.no_grad():
                conv.weight.mul_(0.1)
            nn.init.zeros_(conv.bias)
            setattr(self, f"conv{k + 1}", conv)
        self.lrelu = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for k in range(1, 5):
            feats.append(self.lrelu(getattr(self, f"conv{k}")(torch.cat(feats, 1))))
        return x + 0.2 * self.conv5(torch.cat(feats, 1))


class RRDB(nn.Module):
    """Three dense blocks in sequence and a residual scaled by 0.2; shape kept."""

    def __init__(self, channels: int = 64, growth: int = 32) -> None:
        super().__init__()
        self.rdb1, self.rdb2, self.rdb3 = (ResidualDenseBlock(channels, growth) for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.2 * self.rdb3(self.rdb2(self.rdb1(x)))


class RRDBNet(nn.Module):
    """ESRGAN's generator: ``(N, in_channels, H, W)`` in [-1, 1] -> ``(N, out_channels, scale H,
    scale W)`` in about [-1, 1] (not clamped, as published). ``scale`` 2 and 1 need H and W
    divisible by 2 and 4 (``size_multiple``). Defaults: the published x4 network (23 blocks, 64
    features, growth 32; 16,697,987 parameters for RGB). Built with BasicSR's initialisation
    (kaiming x 0.1 in the dense blocks, PyTorch's defaults elsewhere): ``init: default`` keeps it."""

    def __init__(
        self,
        *,
        in_channels: ImageChannels = 3,
        out_channels: ImageChannels = 3,
        scale: Annotated[int, Range(1, 4)] = 4,
        base_channels: Width = 64,
        n_blocks: Blocks = 23,
        growth: Width = 32,
    ) -> None:
        super().__init__()
        if scale not in (1, 2, 4):
            raise ValueError(f"RRDBNet scale must be 1, 2 or 4 (the published layouts), got {scale}")
        self.in_channels, self.out_channels, self.scale = in_channels, out_channels, scale
        self.unshuffle = 4 // scale  # 1: none; 2 (x2) or 4 (x1): folded into channels first
        self.size_multiple = self.unshuffle
        c = base_channels
        self.conv_first = nn.Conv2d(in_channels * self.unshuffle**2, c, 3, 1, 1)
        self.body = nn.Sequential(*(RRDB(c, growth) for _ in range(n_blocks)))
        self.conv_body = nn.Conv2d(c, c, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(c, c, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(c, c, 3, 1, 1)
        self.conv_hr = nn.Conv2d(c, c, 3, 1, 1)
        self.conv_last = nn.Conv2d(c, out_channels, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.2)

    def forward_unit(self, x: torch.Tensor) -> torch.Tensor:
        """The published network itself: RGB in [0, 1] -> [0, 1] (BasicSR's ``forward``)."""
        feat = F.pixel_unshuffle(x, self.unshuffle) if self.unshuffle > 1 else x
        feat = self.conv_first(feat)
        feat = feat + self.conv_body(self.body(feat))
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_unit((x + 1) / 2) * 2 - 1

    def example_inputs(self, batch_size: int = 2) -> tuple[torch.Tensor, ...]:
        """A small valid input: ``(batch_size, in_channels, 8, 8)`` in [-1, 1]."""
        return (torch.rand(batch_size, self.in_channels, 8, 8) * 2 - 1,)


PRESETS: dict[str, tuple[str, dict[str, int]]] = {
    "rrdbnet_x4": ("rrdbnet", {"scale": 4}),  # ESRGAN, RealESRGAN_x4plus
    "rrdbnet_x2": ("rrdbnet", {"scale": 2}),  # RealESRGAN_x2plus
    "rrdbnet_anime_6b": ("rrdbnet", {"scale": 4, "n_blocks": 6}),  # RealESRGAN_x4plus_anime_6B
}
"""Preset name -> (architecture, the keyword arguments it fixes): the published models' layouts."""

"""PatchGAN and PixelGAN discriminators (pix2pix). Both return raw logits.

The 3-layer PatchGAN sees 70x70 receptive fields: a 256x256 input gives a 30x30 map of
logits, one per overlapping patch. Sigmoids live in the losses (safe under autocast).
"""

from __future__ import annotations

from typing import Annotated

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _sn

from ..options import AttentionStride, GroupSize, JudgedChannels, Range, Width
from .antialias import BlurDownsample
from .blocks import MinibatchStd, Norm, SelfAttention, check_attention, conv_bias, make_norm


def _conv(sn: bool, *args, **kwargs) -> nn.Conv2d:
    conv = nn.Conv2d(*args, **kwargs)
    return _sn(conv) if sn else conv


class PatchDiscriminator(nn.Module):
    """PatchGAN with ``n_layers`` stride-2 convolutions.

    Input ``(N, in_channels, H, W)`` in [-1, 1] (for pix2pix: input and output images
    concatenated); output ``(N, 1, H', W')`` logits. ``spectral_norm`` wraps every conv.
    ``attention``: 0 or a stride 2, 4, ... 2**n_layers: a SAGAN self-attention block on the
    features at 1/attention of the input's side. ``minibatch_std``: group size of a minibatch
    standard-deviation map before the last convolution (0: none). ``antialias`` (CUT's default):
    every stride-2 convolution becomes stride 1, followed after its activation by a
    :class:`~.antialias.BlurDownsample`, in the authors' layer order (their files load).
    """

    def __init__(
        self,
        *,
        in_channels: JudgedChannels = 6,
        base_channels: Width = 64,
        n_layers: Annotated[int, Range(1, 10)] = 3,
        norm: Norm = "batch",
        spectral_norm: bool = False,
        attention: AttentionStride = 0,
        minibatch_std: GroupSize = 0,
        antialias: bool = False,
    ) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers={n_layers} must be >= 1")
        check_attention(attention, [2**k for k in range(1, n_layers + 1)], f"a PatchGAN with n_layers={n_layers}")
        c, sn, bias = base_channels, spectral_norm, conv_bias(norm)
        down = 1 if antialias else 2
        layers: list[nn.Module] = [_conv(sn, in_channels, c, 4, down, 1), nn.LeakyReLU(0.2, True)]
        if antialias:
            layers.append(BlurDownsample(c))
        if attention == 2:
            layers.append(SelfAttention(c, spectral_norm=sn))
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [_conv(sn, c * prev, c * mult, 4, down if stride == 2 else 1, 1, bias=bias),
                       make_norm(norm, c * mult), nn.LeakyReLU(0.2, True)]
            if antialias and stride == 2:
                layers.append(BlurDownsample(c * mult))
            if stride == 2 and attention == 2 ** (n + 1):
                layers.append(SelfAttention(c * mult, spectral_norm=sn))
        if minibatch_std:
            layers.append(MinibatchStd(minibatch_std))
        layers.append(_conv(sn, c * mult + (1 if minibatch_std else 0), 1, 4, 1, 1))
        self.model = nn.Sequential(*layers)
        self.in_channels, self.n_layers = in_channels, n_layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def example_inputs(self, batch_size: int = 2) -> tuple[torch.Tensor, ...]:
        """A small valid input: ``(batch_size, in_channels, S, S)`` with ``S = 2**n_layers * 4`` (at least 32)."""
        s = max(32, 4 * 2**self.n_layers)
        return (torch.rand(batch_size, self.in_channels, s, s) * 2 - 1,)


class PixelDiscriminator(nn.Module):
    """1x1 PixelGAN: judges every pixel independently. Output ``(N, 1, H, W)`` logits."""

    def __init__(self, *, in_channels: JudgedChannels = 6, base_channels: Width = 64, norm: Norm = "batch",
                 spectral_norm: bool = False) -> None:
        super().__init__()
        c, sn, bias = base_channels, spectral_norm, conv_bias(norm)
        self.model = nn.Sequential(
            _conv(sn, in_channels, c, 1),
            nn.LeakyReLU(0.2, True),
            _conv(sn, c, c * 2, 1, bias=bias),
            make_norm(norm, c * 2),
            nn.LeakyReLU(0.2, True),
            _conv(sn, c * 2, 1, 1, bias=bias),
        )
        self.in_channels = in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def example_inputs(self, batch_size: int = 2) -> tuple[torch.Tensor, ...]:
        """A small valid input: ``(batch_size, in_channels, 9, 7)`` in [-1, 1] (any size works)."""
        return (torch.rand(batch_size, self.in_channels, 9, 7) * 2 - 1,)


PRESETS: dict[str, tuple[str, dict[str, int]]] = {
    "basic": ("patch", {"n_layers": 3}),
    "n_layers": ("patch", {}),
}
"""Preset name -> (architecture, the keyword arguments it fixes): the reference's ``--netD`` names."""

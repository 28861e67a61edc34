"""ResNet generator (Johnson et al. 2016 as used by CycleGAN, Zhu et al. 2017).

7x7 reflect-padded head, two stride-2 downsamplings, ``n_blocks`` residual blocks,
two transposed-convolution upsamplings, 7x7 output convolution and tanh. Parameter
counts equal the reference CycleGAN generator with ``base_channels=64``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from ..options import AttentionStride, Blocks, ImageChannels, Width
from .antialias import BlurDownsample, BlurUpsample
from .blocks import (
    Norm,
    Predict,
    SelfAttention,
    Upsample,
    check_attention,
    check_choice,
    check_predict,
    conv_bias,
    make_norm,
    predicted_image,
    upsample_conv,
    zero_last_layer,
)

PADDINGS = ("reflect", "replicate", "zero")


Padding = Literal["reflect", "replicate", "zero"]


def _pad(padding: str, p: int) -> tuple[list[nn.Module], int]:
    """Explicit padding layers and the conv's own padding for a ``padding`` mode."""
    check_choice("padding", padding, PADDINGS)
    if padding == "zero":
        return [], p
    return [nn.ReflectionPad2d(p) if padding == "reflect" else nn.ReplicationPad2d(p)], 0


class ResnetBlock(nn.Module):
    """``x + conv-norm-relu-[dropout]-conv-norm(x)``; shape ``(N, C, H, W)`` preserved."""

    def __init__(self, *, channels: int, norm: Norm = "instance", dropout: bool = False,
                 padding: Padding = "reflect") -> None:
        super().__init__()
        bias = conv_bias(norm)
        layers: list[nn.Module] = []
        for i in range(2):
            pad, p = _pad(padding, 1)
            layers += [*pad, nn.Conv2d(channels, channels, 3, padding=p, bias=bias), make_norm(norm, channels)]
            if i == 0:
                layers.append(nn.ReLU(True))
                if dropout:
                    layers.append(nn.Dropout(0.5))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class ResnetGenerator(nn.Module):
    """ResNet-based generator; inputs must be multiples of 4 in height and width.

    ``attention``: 0 (none), 4 (a SAGAN self-attention block in the middle of the residual
    blocks, at 1/4 of the image's side) or 2 (after the first upsampling).

    ``antialias`` (CUT's default): each stride-2 convolution becomes a stride-1 convolution, its
    norm and ReLU, then a :class:`~.antialias.BlurDownsample`; ``antialias_up``: each upsampling
    is a :class:`~.antialias.BlurUpsample` then a 3x3 convolution, norm and ReLU. Either way the
    layers of ``model`` are in the authors' order, so CUT's ``nce_layers`` 0, 4, 8, 12, 16 name the
    input padding, both downsampling convolutions and residual blocks 1 and 5.

    Input ``(N, in_channels, H, W)`` in [-1, 1]; output ``(N, out_channels, H, W)`` in [-1, 1].
    """

    def __init__(
        self,
        *,
        in_channels: ImageChannels = 3,
        out_channels: ImageChannels = 3,
        n_blocks: Blocks = 9,
        base_channels: Width = 64,
        norm: Norm = "batch",
        dropout: bool = False,
        padding: Padding = "reflect",
        upsample: Upsample = "transpose",
        predict: Predict = "image",
        attention: AttentionStride = 0,
        antialias: bool = False,
        antialias_up: bool = False,
    ) -> None:
        super().__init__()
        check_attention(attention, [2, 4], "the ResNet generator")
        if antialias_up and upsample != "transpose":
            raise ValueError(f"antialias_up=True replaces the upsampling layers; it cannot be combined with "
                             f"upsample={upsample!r}")
        self.predict = check_predict(predict, in_channels, out_channels)
        if n_blocks < 0:
            raise ValueError(f"n_blocks={n_blocks} must be >= 0")
        c = base_channels
        bias = conv_bias(norm)
        pad, p = _pad(padding, 3)
        layers: list[nn.Module] = [*pad, nn.Conv2d(in_channels, c, 7, padding=p, bias=bias), make_norm(norm, c),
                                   nn.ReLU(True)]
        for i in range(2):
            m = 2**i
            layers += [nn.Conv2d(c * m, c * m * 2, 3, 1 if antialias else 2, 1, bias=bias), make_norm(norm, c * m * 2),
                       nn.ReLU(True)]
            if antialias:
                layers.append(BlurDownsample(c * m * 2))
        blocks: list[nn.Module] = [ResnetBlock(channels=c * 4, norm=norm, dropout=dropout,
                                               padding=padding) for _ in range(n_blocks)]
        if attention == 4:  # at the bottleneck, between the two halves of the residual blocks
            blocks.insert(n_blocks // 2, SelfAttention(c * 4))
        layers += blocks
        for i in range(2):
            m = 2 ** (2 - i)
            up = ([BlurUpsample(c * m), nn.Conv2d(c * m, c * m // 2, 3, 1, 1, bias=bias)] if antialias_up else
                  [upsample_conv(upsample, c * m, c * m // 2, kernel=3, padding=1, output_padding=1, bias=bias)])
            layers += [*up, make_norm(norm, c * m // 2), nn.ReLU(True)]
            if attention == 2 and i == 0:
                layers.append(SelfAttention(c * 2))
        pad, p = _pad(padding, 3)
        layers += [*pad, nn.Conv2d(c, 2 if predict == "chroma" else out_channels, 7, padding=p), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        self.size_multiple = 4
        self.in_channels = in_channels
        self.out_channels = out_channels
        if predict == "residual":
            zero_last_layer(self.model)

    def forward(self, x: torch.Tensor, layers: tuple[int, ...] | None = None) -> torch.Tensor | list[torch.Tensor]:
        """The output image; with ``layers`` (indices into ``model``, ascending), instead the outputs of
        those layers, ``[(N, C_l, H_l, W_l)]``, computing nothing after the last (CUT's encoder
        features; the authors' ``encode_only``)."""
        if layers is None:
            return predicted_image(self.predict, x, self.model(x))
        feats, feat = [], x
        for i, layer in enumerate(self.model[:max(layers) + 1]):
            feat = layer(feat)
            if i in layers:
                feats.append(feat)
        return feats

    def example_inputs(self, batch_size: int = 2) -> tuple[torch.Tensor, ...]:
        """A small valid input: ``(batch_size, in_channels, 16, 16)`` in [-1, 1]."""
        return (torch.rand(batch_size, self.in_channels, 16, 16) * 2 - 1,)


PRESETS: dict[str, tuple[str, dict[str, int]]] = {
    "resnet_6blocks": ("resnet", {"n_blocks": 6}),
    "resnet_9blocks": ("resnet", {"n_blocks": 9}),
}
"""Preset name -> (architecture, the keyword arguments it fixes): the reference's ``--netG`` names."""

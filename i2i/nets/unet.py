"""U-Net generator (Ronneberger et al. 2015 as used by pix2pix, Isola et al. 2017).

Layer for layer the reference pix2pix U-Net: 4x4 stride-2 convolutions, LeakyReLU(0.2)
going down, ReLU going up, transposed convolutions, skip connections by channel
concatenation, dropout 0.5 in the innermost 8x-channel decoder blocks, tanh output.
With ``base_channels=64`` its parameter count equals the reference exactly.
"""

from __future__ import annotations

from typing import Annotated

import torch
from torch import nn

from ..options import AttentionStride, ImageChannels, Range, Width
from .blocks import (
    Norm,
    Predict,
    SelfAttention,
    Upsample,
    check_attention,
    check_predict,
    conv_bias,
    make_norm,
    predicted_image,
    upsample_conv,
    zero_last_layer,
)


class UnetBlock(nn.Module):
    """One U-Net level: ``down`` -> ``inner`` -> ``up``, output concatenated with the input.

    The outermost level has no skip concatenation and ends in tanh.
    Input ``(N, outer, H, W)``; output ``(N, 2*outer, H, W)`` (``(N, out, H, W)`` outermost).
    """

    def __init__(
        self,
        *,
        outer: int,
        inner: int,
        in_channels: int | None = None,
        sub: nn.Module | None = None,
        outermost: bool = False,
        norm: str = "batch",
        dropout: bool = False,
        upsample: str = "transpose",
        attention: bool = False,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        in_channels = outer if in_channels is None else in_channels
        bias = conv_bias(norm)
        down_conv = nn.Conv2d(in_channels, inner, 4, 2, 1, bias=bias)
        if outermost:
            down: list[nn.Module] = [down_conv]
            up: list[nn.Module] = [nn.ReLU(True), upsample_conv(upsample, inner * 2, outer), nn.Tanh()]
        elif sub is None:  # innermost: no norm at the 1x1 bottleneck going down
            down = [nn.LeakyReLU(0.2, True), down_conv]
            up = [nn.ReLU(True), upsample_conv(upsample, inner, outer, bias=bias), make_norm(norm, outer)]
        else:
            down = [nn.LeakyReLU(0.2, True), down_conv, make_norm(norm, inner)]
            up = [nn.ReLU(True), upsample_conv(upsample, inner * 2, outer, bias=bias), make_norm(norm, outer)]
            if dropout:
                up.append(nn.Dropout(0.5))
        if attention and not outermost:
            up.append(SelfAttention(outer))
        self.down = nn.Sequential(*down)
        self.sub = sub if sub is not None else nn.Identity()
        self.up = nn.Sequential(*up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.up(self.sub(self.down(x)))
        return y if self.outermost else torch.cat([x, y], 1)


class UnetGenerator(nn.Module):
    """U-Net with ``num_downs`` stride-2 levels; inputs must be multiples of ``2**num_downs``.

    Args:
        in_channels / out_channels: image channels (1 or 3 usually).
        num_downs: number of downsamplings (7 -> "unet_128", 8 -> "unet_256").
        base_channels: channels after the first convolution (64 in the paper); deeper
            levels use 2x, 4x and then 8x this.
        norm: ``batch`` | ``instance`` | ``none``.
        dropout: dropout 0.5 in the ``num_downs - 5`` innermost 8x-channel decoder blocks.
        upsample: ``transpose`` (reference) or ``resize`` (no checkerboard; see :data:`~i2i.nets.blocks.Upsample`).
        predict: ``image`` (reference) or ``chroma`` (colourisation, 1 -> 3 channels: the
            net predicts Cb, Cr and the input luma passes through; see :data:`~i2i.nets.blocks.Predict`).
        attention: 0 (none) or a stride 2, 4, ... 2**(num_downs-1): a SAGAN self-attention block
            on the decoder's features at 1/attention of the image's side, before the skip concatenation.

    Input ``(N, in_channels, H, W)`` in [-1, 1]; output ``(N, out_channels, H, W)`` in [-1, 1].
    """

    def __init__(
        self,
        *,
        in_channels: ImageChannels = 3,
        out_channels: ImageChannels = 3,
        num_downs: Annotated[int, Range(1, 12)] = 8,
        base_channels: Width = 64,
        norm: Norm = "batch",
        dropout: bool = True,
        upsample: Upsample = "transpose",
        predict: Predict = "image",
        attention: AttentionStride = 0,
    ) -> None:
        super().__init__()
        if num_downs < 5:
            raise ValueError(f"num_downs={num_downs} is too small; the U-Net needs at least 5 levels")
        check_attention(attention, [2**k for k in range(1, num_downs)], f"a U-Net with {num_downs} levels")
        # the blocks below the outermost, innermost first, work at 1/2**k of the image's side, k = num_downs - 1 .. 1;
        # self-attention goes into the one at 1/attention
        attend = [attention == 2**k for k in range(num_downs - 1, 0, -1)]
        self.predict = check_predict(predict, in_channels, out_channels)
        c, up = base_channels, {"norm": norm, "upsample": upsample}
        block = UnetBlock(outer=c * 8, inner=c * 8, attention=attend[0], **up)
        for i in range(num_downs - 5):
            block = UnetBlock(outer=c * 8, inner=c * 8, sub=block, dropout=dropout, attention=attend[1 + i], **up)
        block = UnetBlock(outer=c * 4, inner=c * 8, sub=block, attention=attend[-3], **up)
        block = UnetBlock(outer=c * 2, inner=c * 4, sub=block, attention=attend[-2], **up)
        block = UnetBlock(outer=c, inner=c * 2, sub=block, attention=attend[-1], **up)
        net_out = 2 if predict == "chroma" else out_channels
        self.model = UnetBlock(outer=net_out, inner=c, in_channels=in_channels, sub=block, outermost=True, **up)
        self.size_multiple = 2**num_downs
        self.in_channels = in_channels
        self.out_channels = out_channels
        if predict == "residual":
            zero_last_layer(self.model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.model(x)
        return predicted_image(self.predict, x, y)

    def example_inputs(self, batch_size: int = 2) -> tuple[torch.Tensor, ...]:
        """The smallest valid input: ``(batch_size, in_channels, 2**num_downs, 2**num_downs)`` in [-1, 1]."""
        s = self.size_multiple
        return (torch.rand(batch_size, self.in_channels, s, s) * 2 - 1,)


PRESETS: dict[str, tuple[str, dict[str, int]]] = {
    "unet_128": ("unet", {"num_downs": 7}),
    "unet_256": ("unet", {"num_downs": 8}),
}
"""Preset name -> (architecture, the keyword arguments it fixes): the reference's ``--netG`` names."""

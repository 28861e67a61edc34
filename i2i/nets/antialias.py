"""Anti-aliased resampling (Zhang, ICML 2019, "Making Convolutional Networks Shift-Invariant Again"),
as CUT's generator and discriminator use it.

:class:`BlurDownsample` low-passes with a fixed binomial filter before taking every second pixel
(a stride-2 convolution becomes a stride-1 convolution followed by it); :class:`BlurUpsample`
is the matching fixed transposed convolution. Both keep the filter as a buffer named ``filt`` (one
copy per channel), so a state dict has the keys the authors' files have (``model.7.filt``) and
their generators import unchanged. kornia's ``BlurPool2D`` computes the same kind of filter but
pads with zeros and names its buffer differently, which would break both the numbers and the keys.
"""

from __future__ import annotations

from math import comb

import torch
import torch.nn.functional as F
from torch import nn

_PADS = {"reflect": nn.ReflectionPad2d, "replicate": nn.ReplicationPad2d, "zero": nn.ZeroPad2d}


def binomial_filter(size: int) -> torch.Tensor:
    """The ``(size, size)`` outer product of binomial coefficients ``C(size-1, k)``, summing to 1
    (``size`` 3: [1, 2, 1] x [1, 2, 1] / 16)."""
    if not 1 <= size <= 7:
        raise ValueError(f"filter size {size} must be between 1 and 7")
    a = torch.tensor([float(comb(size - 1, k)) for k in range(size)])
    f = a[:, None] * a[None, :]
    return f / f.sum()


class BlurDownsample(nn.Module):
    """Blur then subsample by 2: ``(N, C, H, W)`` -> ``(N, C, ceil(H/2), ceil(W/2))``.

    ``pad``: how the borders are extended before the ``filt_size`` x ``filt_size`` binomial
    filter (reflect, as the authors' default)."""

    def __init__(self, channels: int, *, pad: str = "reflect", filt_size: int = 3) -> None:
        super().__init__()
        lo, hi = (filt_size - 1) // 2, filt_size // 2
        self.pad = _PADS[pad]((lo, hi, lo, hi))
        self.register_buffer("filt", binomial_filter(filt_size)[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(self.pad(x), self.filt, stride=2, groups=x.shape[1])


class BlurUpsample(nn.Module):
    """Upsample by 2 with a fixed ``filt_size`` binomial transposed convolution (4: bilinear-like):
    ``(N, C, H, W)`` -> ``(N, C, 2H, 2W)``; borders replicated first, as the authors' layer does."""

    def __init__(self, channels: int, *, filt_size: int = 4) -> None:
        super().__init__()
        self.odd = filt_size % 2 == 1
        self.pad_size = (filt_size - 1) // 2
        self.pad = nn.ReplicationPad2d(1)
        self.register_buffer("filt", (binomial_filter(filt_size) * 4)[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv_transpose2d(self.pad(x), self.filt, stride=2, padding=1 + self.pad_size, groups=x.shape[1])
        y = y[:, :, 1:, 1:]
        return y if self.odd else y[:, :, :-1, :-1]

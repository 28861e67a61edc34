"""Image quality metrics on tensors in [-1, 1] (converted to [0, 1] before measuring).

All functions take ``(N, C, H, W)`` tensors and return one value per image, ``(N,)``,
so that averages over a dataset are means of per-image values, as papers report them.
"""

from __future__ import annotations

import torch


def _unit(x: torch.Tensor) -> torch.Tensor:
    return (x.float().clamp(-1, 1) + 1.0) / 2.0


def l1_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error per image on the [0, 1] scale; ``(N,)``."""
    return (_unit(pred) - _unit(target)).abs().flatten(1).mean(1)


def psnr(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image over all channels (RGB convention), data
    range 1 on the [0, 1] scale; ``(N,)``. Identical images give ``10*log10(1/eps)``."""
    mse = ((_unit(pred) - _unit(target)) ** 2).flatten(1).mean(1)
    return 10.0 * torch.log10(1.0 / (mse + eps))

"""Image quality metrics on tensors in [-1, 1] (converted to [0, 1] before measuring).

All functions take ``(N, C, H, W)`` tensors and return one value per image, ``(N,)``,
so that averages over a dataset are means of per-image values, as papers report them.

Super-resolution papers report PSNR / SSIM in one of two conventions, both offered here:
``y=True`` measures the BT.601 luma (MATLAB's ``rgb2ycbcr``: Y = 16 + 65.481 R +
128.553 G + 24.966 B for RGB in [0, 1], so Y spans [16, 235] / 255) as in SRGAN's Table;
``y=False`` measures all RGB channels. ``border`` pixels are cut from every side first
(the SR convention is ``border = scale``).
"""

from __future__ import annotations

import torch


def _unit(x: torch.Tensor) -> torch.Tensor:
    return (x.float().clamp(-1, 1) + 1.0) / 2.0


def rgb_to_y(x01: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of ``(N, 3, H, W)`` RGB in [0, 1], as ``(N, 1, H, W)`` in [16, 235] / 255."""
    w = torch.tensor([65.481, 128.553, 24.966], dtype=x01.dtype, device=x01.device).view(1, 3, 1, 1)
    return (16.0 + (x01 * w).sum(1, keepdim=True)) / 255.0


def prepare(x: torch.Tensor, *, y: bool = False, border: int = 0) -> torch.Tensor:
    """[-1, 1] images -> [0, 1] (luma when ``y`` and 3 channels), ``border`` cut from each side."""
    u = _unit(x).double()
    if y and u.shape[1] == 3:
        u = rgb_to_y(u)
    if border:
        u = u[..., border:-border, border:-border]
    return u


def l1_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error per image on the [0, 1] scale; ``(N,)``."""
    return (_unit(pred) - _unit(target)).abs().flatten(1).mean(1)


def psnr(pred: torch.Tensor, target: torch.Tensor, *, y: bool = False, border: int = 0, eps: float = 1e-10) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image (data range 1 on the [0, 1] scale); ``(N,)``.
    ``y``: on BT.601 luma; ``border``: pixels cut from each side. Identical images give
    ``10*log10(1/eps)``."""
    mse = ((prepare(pred, y=y, border=border) - prepare(target, y=y, border=border)) ** 2).flatten(1).mean(1)
    return (10.0 * torch.log10(1.0 / (mse + eps))).float()


def ssim(pred: torch.Tensor, target: torch.Tensor, *, y: bool = False, border: int = 0) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004) per image; ``(N,)``.

    As the reference MATLAB code: 11x11 Gaussian window with sigma 1.5, constants
    (0.01)^2 and (0.03)^2 for data range 1, statistics over the window's valid positions
    only, mean over pixels and channels. Computed with kornia.
    """
    import kornia

    a, b = prepare(pred, y=y, border=border).float(), prepare(target, y=y, border=border).float()
    m = kornia.metrics.ssim(a, b, window_size=11, max_val=1.0, padding="valid")
    return m.flatten(1).mean(1)

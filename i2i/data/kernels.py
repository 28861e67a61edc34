"""Blur kernels of Real-ESRGAN's degradation model (Wang et al., ICCVW 2021), batched in torch.

Every kernel is ``size`` x ``size`` (odd), sums to 1, and is centred on the middle pixel:

* Gaussian ``exp(-q / 2)``, generalised Gaussian ``exp(-q^beta / 2)`` and plateau
  ``1 / (q^beta + 1)`` (as BasicSR writes them), where ``q = x^T S^-1 x`` for the covariance
  ``S = R diag(sx^2, sy^2) R^T`` rotated by ``theta`` (isotropic: ``sx = sy``, ``theta = 0``);
* sinc (circular low-pass, ``omega`` the cut-off in radians per pixel):
  ``omega J1(omega r) / (2 pi r)``, ``omega^2 / (4 pi)`` at the centre; it rings, which is
  what Real-ESRGAN uses it for (the ringing and overshoot artefacts of real images).

A batch holds kernels of several sizes in one common size: a size-``k`` kernel is the common
grid's values inside the central ``k`` x ``k`` window (zero outside), normalised, which is the
size-``k`` kernel zero-padded, as Real-ESRGAN pads them.
"""

from __future__ import annotations

import math

import torch

KERNEL_TYPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")


def _grid(size: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``(size, size, 2)`` pixel offsets ``(x, y)`` from the centre."""
    ax = torch.arange(size, dtype=dtype) - (size - 1) / 2
    yy, xx = torch.meshgrid(ax, ax, indexing="ij")
    return torch.stack([xx, yy], -1)


def quadratic_form(size: int, sigma_x: torch.Tensor, sigma_y: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """``(N, size, size)``: ``x^T S^-1 x`` at every offset for each kernel's covariance
    ``S = R(theta) diag(sigma_x^2, sigma_y^2) R(theta)^T`` (``(N,)`` parameters, pixels)."""
    c, s = torch.cos(theta.double()), torch.sin(theta.double())
    rot = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)  # (N, 2, 2)
    inv_d = torch.diag_embed(torch.stack([sigma_x.double() ** -2, sigma_y.double() ** -2], -1))
    inv_cov = rot @ inv_d @ rot.transpose(-1, -2)
    g = _grid(size)
    return torch.einsum("hwi,nij,hwj->nhw", g, inv_cov, g)


def window(size: int, support: torch.Tensor) -> torch.Tensor:
    """``(N, size, size)`` float64: 1 inside each kernel's central ``support`` x ``support``
    window (odd ``(N,)`` sizes), 0 outside."""
    r = (support.double().view(-1, 1, 1) - 1) / 2
    g = _grid(size).abs()
    return ((g[..., 0] <= r) & (g[..., 1] <= r)).double()


def anisotropic_kernels(size: int, kind: torch.Tensor, sigma_x: torch.Tensor, sigma_y: torch.Tensor,
                        theta: torch.Tensor,
                        beta: torch.Tensor, support: torch.Tensor | None = None) -> torch.Tensor:
    """``(N, size, size)`` float32 kernels summing to 1. ``kind``: 0 Gaussian, 1 generalised
    Gaussian, 2 plateau (``(N,)`` integers); ``beta`` is ignored for Gaussians; ``support``:
    each kernel's odd size (default ``size``)."""
    q = quadratic_form(size, sigma_x, sigma_y, theta)
    b = beta.double().view(-1, 1, 1)
    k = kind.view(-1, 1, 1)
    gauss = torch.exp(-0.5 * q)
    generalized = torch.exp(-0.5 * q.pow(b))
    plateau = 1.0 / (q.pow(b) + 1.0)
    out = torch.where(k == 0, gauss, torch.where(k == 1, generalized, plateau))
    if support is not None:
        out = out * window(size, support)
    return (out / out.sum((-1, -2), keepdim=True)).float()


def sinc_kernels(size: int, omega: torch.Tensor, support: torch.Tensor | None = None) -> torch.Tensor:
    """``(N, size, size)`` float32 circular low-pass kernels with cut-offs ``omega`` (``(N,)``,
    radians per pixel, up to pi), summing to 1; ``support``: each kernel's odd size."""
    r = _grid(size).norm(dim=-1)  # (size, size)
    w = omega.double().view(-1, 1, 1)
    safe_r = torch.where(r == 0, torch.ones_like(r), r)
    k = w * torch.special.bessel_j1(w * safe_r) / (2 * math.pi * safe_r)
    k = torch.where(r == 0, w**2 / (4 * math.pi), k)
    if support is not None:
        k = k * window(size, support)
    return (k / k.sum((-1, -2), keepdim=True)).float()


def pulse(n: int, size: int) -> torch.Tensor:
    """``(n, size, size)`` identity kernels (1 at the centre)."""
    k = torch.zeros(n, size, size)
    k[:, size // 2, size // 2] = 1.0
    return k

"""MATLAB-compatible ``imresize`` with the bicubic kernel, on tensors.

The super-resolution literature makes low-resolution images with MATLAB's
``imresize(hr, 1/scale, 'bicubic')``: Keys' cubic kernel with ``a = -0.5``, widened by the
scale factor when shrinking (antialiasing), and symmetric (mirror) boundary handling.
OpenCV's and PyTorch's bicubic use ``a = -0.75`` and no antialiasing, which shifts PSNR
by about 1 dB; this module reproduces MATLAB's weights so figures are comparable.
Each dimension is a matrix product with precomputed weights (cached per size).
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch


def cubic(x: torch.Tensor) -> torch.Tensor:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``)."""
    ax = x.abs()
    ax2, ax3 = ax**2, ax**3
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))


@lru_cache(maxsize=64)
def resize_matrix(in_len: int, out_len: int, scale: float, antialias: bool = True) -> torch.Tensor:
    """``(out_len, in_len)`` float64 weights of MATLAB's bicubic imresize along one dimension."""
    width = 4.0
    if scale < 1 and antialias:
        def kernel(x: torch.Tensor) -> torch.Tensor:
            return scale * cubic(scale * x)

        width = width / scale
    else:
        kernel = cubic
    x = torch.arange(1, out_len + 1, dtype=torch.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)  # output pixel centre in input coordinates (1-based)
    left = torch.floor(u - width / 2)
    taps = math.ceil(width) + 2
    idx = left[:, None] + torch.arange(taps, dtype=torch.float64)[None, :]
    w = kernel(u[:, None] - idx)
    w = w / w.sum(1, keepdim=True)
    # Symmetric boundary: index -> mirrored index in [0, in_len).
    mirror = torch.cat([torch.arange(in_len), torch.arange(in_len - 1, -1, -1)])
    src = mirror[(idx.long() - 1) % (2 * in_len)]
    m = torch.zeros(out_len, in_len, dtype=torch.float64)
    m.scatter_add_(1, src, w)
    return m


def imresize(x: torch.Tensor, scale: float | None = None, size: tuple[int, int] | None = None,
             antialias: bool = True) -> torch.Tensor:
    """Resize ``(..., H, W)`` like MATLAB's ``imresize(x, scale, 'bicubic')``.

    Give ``scale`` (output = ceil(input * scale), as MATLAB) or ``size`` = (H', W').
    Values are not clipped or rounded; callers do that where their format needs it.
    """
    h, w = x.shape[-2:]
    if size is None:
        if scale is None:
            raise ValueError("imresize needs scale or size")
        size = (math.ceil(h * scale), math.ceil(w * scale))
        sh = sw = scale
    else:
        sh, sw = size[0] / h, size[1] / w
    dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
    y = x.to(dtype)
    # MATLAB resizes the dimension with the smaller scale first.
    for dim in sorted((0, 1), key=lambda d: (sh, sw)[d]):
        s, n_in, n_out = (sh, h, size[0]) if dim == 0 else (sw, w, size[1])
        if n_in == n_out and s == 1:
            continue
        m = resize_matrix(n_in, n_out, float(s), antialias).to(y.device, dtype)
        y = torch.matmul(m, y) if dim == 0 else torch.matmul(y, m.T)
    return y

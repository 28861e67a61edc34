"""Any image size through a fixed-stride net: padding to the net's multiple, and tiles.

Two tiling regimes, chosen by measuring the net's receptive field (:func:`receptive_radius`):
exact tiles with real context when the influence of a pixel is finite (SRResNet, ResNet
with eval batch norm), and overlapping tiles blended with linear ramps when every output
pixel depends on the whole image (U-Net, instance norm).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

Run = Callable[[torch.Tensor], torch.Tensor]


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad ``(N, C, H, W)`` on the bottom/right to multiples of ``multiple`` (see :func:`pad_to_size`)."""
    return pad_to_size(x, multiple)


def pad_to_size(x: torch.Tensor, multiple: int, minimum: int = 0,
                square: bool = False) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad ``(N, C, H, W)`` on the bottom/right to at least ``minimum`` pixels, multiples of
    ``multiple``, and (``square``) to a square: what a net needs of its input.

    Reflection padding where the image is large enough, edge replication otherwise
    (e.g. a 100-pixel image padded to 256). Returns the padded tensor and ``(H, W)``.
    """
    h, w = x.shape[-2:]
    th, tw = (-(-max(n, minimum) // multiple) * multiple for n in (h, w))
    if square:
        th = tw = max(th, tw)
    ph, pw = th - h, tw - w
    if ph == 0 and pw == 0:
        return x, (h, w)
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)


def shift_equivariant(run: Run, in_channels: int, scale: int, grid: int, reach: int, minimum: int = 0) -> bool:
    """True when ``run`` (a float64 net, with its padding) commutes with a shift by ``grid`` input
    pixels away from the borders: then tiles whose corners sit on that grid, with ``reach`` pixels
    of context, equal whole-image output. Window attention (SwinIR, HAT) partitions the image on a
    grid of its own and fails this at a smaller grid; convolutions pass."""
    size = max(-(-(2 * reach + 2 * grid + 16) // grid) * grid, -(-(minimum + grid) // grid) * grid)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, in_channels, size, size, generator=g, dtype=torch.float64) * 2 - 1
    with torch.no_grad():
        whole, shifted = run(x), run(x[:, :, grid:, grid:])
    s, lo, hi = scale, reach, size - grid - reach
    a = whole[:, :, (grid + lo) * s : (grid + hi) * s, (grid + lo) * s : (grid + hi) * s]
    b = shifted[:, :, lo * s : hi * s, lo * s : hi * s]
    return bool(torch.allclose(a, b, rtol=0, atol=1e-9))


def receptive_radius(net: nn.Module, in_channels: int, scale: int = 1, probe: int = 129,
                     multiple: int = 1) -> int | None:
    """How many input pixels on each side influence one output pixel of a convolutional
    ``net`` (measured on random inputs), or None when the influence reaches the edge of the
    test image (e.g. a U-Net: no exact tiling then). The test image is ``probe`` pixels rounded
    up to ``multiple``.

    Measured forward only, without autograd (the memory of one inference, not of a backward
    pass: 8 GB for the published RRDBNet with gradients), in float64 on a copy of the net: the
    centre pixel is changed and every output pixel that changes is within reach. Outputs are
    deterministic for equal inputs, so untouched pixels compare exactly equal, and float64
    sees influences far below float32's resolution (in float32 a 1-block RRDBNet measured 10
    pixels where its convolutions reach 17)."""
    probe = -(-probe // multiple) * multiple
    c = probe // 2
    reach = 0
    device = next(net.parameters()).device
    device = torch.device("cpu") if device.type == "mps" else device  # no float64 there
    twin = copy.deepcopy(net).to(device, torch.float64).eval()
    for seed in (0,):  # one draw: a change of the whole pixel (every channel by 1) passes any single dead ReLU
        g = torch.Generator().manual_seed(seed)
        x = (torch.rand(1, in_channels, probe, probe, generator=g, dtype=torch.float64) * 2 - 1).to(device)
        moved = x.clone()
        moved[:, :, c, c] = torch.where(x[:, :, c, c] >= 0, x[:, :, c, c] - 1, x[:, :, c, c] + 1)
        with torch.no_grad():
            changed = (twin(moved) != twin(x)).any(1)[0]  # (scale * probe, scale * probe)
        nz = changed.nonzero()
        if len(nz):
            reach = max(reach, int((nz.div(scale, rounding_mode="floor") - c).abs().max()))
    del twin
    return None if reach >= c - 1 else reach


def exact_tiles(run: Run, x: torch.Tensor, tile: int, context: int, *, scale: int, out_channels: int) -> torch.Tensor:
    """``run`` over ``tile``-pixel pieces of ``x`` ``(N, C, H, W)``, each with ``context`` pixels of
    its real neighbourhood, assembled on the CPU into ``(N, out_channels, scale*H, scale*W)``.
    Equals whole-image inference when ``context`` covers the receptive radius."""
    h, w = x.shape[-2:]
    s = scale
    out = torch.empty(x.shape[0], out_channels, h * s, w * s)
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            py0, px0, py1, px1 = max(0, y0 - context), max(0, x0 - context), min(h, y1 + context), min(w, x1 + context)
            piece = run(x[:, :, py0:py1, px0:px1])
            oy, ox = (y0 - py0) * s, (x0 - px0) * s
            out[:, :, y0 * s : y1 * s, x0 * s : x1 * s] = piece[:, :, oy : oy + (y1 - y0) * s,
                                                                ox : ox + (x1 - x0) * s].cpu()
    return out


def _ramp(n: int, k: int, lo_edge: bool, hi_edge: bool) -> torch.Tensor:
    r = torch.ones(n)
    k = min(k, n)
    up = torch.linspace(1.0 / k, 1.0, k)
    if not lo_edge:
        r[:k] = torch.minimum(r[:k], up)
    if not hi_edge:
        r[-k:] = torch.minimum(r[-k:], up.flip(0))
    return r


def blended_tiles(run: Run, x: torch.Tensor, tile: int, *, scale: int, out_channels: int) -> torch.Tensor:
    """Overlapping ``tile``-pixel tiles (overlap tile/4) blended with linear ramps, for nets whose
    output depends on the whole image: no seams, close to (not equal to) whole-image output."""
    h, w = x.shape[-2:]
    s, overlap = scale, max(tile // 4, 1)
    step = tile - overlap

    def starts(n: int) -> list[int]:
        return sorted({min(p, max(n - tile, 0)) for p in range(0, max(n - overlap, 1), step)})

    out = torch.zeros(x.shape[0], out_channels, h * s, w * s)
    weight = torch.zeros(1, 1, h * s, w * s)
    for y0 in starts(h):
        for x0 in starts(w):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            piece = run(x[:, :, y0:y1, x0:x1]).cpu()
            wy = _ramp((y1 - y0) * s, overlap * s, y0 == 0, y1 == h)
            wx = _ramp((x1 - x0) * s, overlap * s, x0 == 0, x1 == w)
            win = (wy[:, None] * wx[None, :])[None, None]
            out[:, :, y0 * s : y1 * s, x0 * s : x1 * s] += piece * win
            weight[:, :, y0 * s : y1 * s, x0 * s : x1 * s] += win
    return out / weight


SEAMLESS = ("wrap", "mirror")
"""Seamless modes: ``wrap`` (the output tiles like the input repeated: textures) and ``mirror`` (like
the input repeated with every other copy flipped, as GL_MIRRORED_REPEAT)."""


def periodic_pad(x: torch.Tensor, pad: int, mode: str) -> torch.Tensor:
    """``(N, C, H, W)`` extended by ``pad`` pixels on every side as if the image were repeated
    (``wrap``) or mirrored with its edge pixels repeated (``mirror``), for any ``pad``, even larger
    than the image."""
    if mode not in SEAMLESS:
        raise ValueError(f"seamless mode {mode!r} must be one of {', '.join(SEAMLESS)}")

    def index(n: int) -> torch.Tensor:
        i = torch.arange(-pad, n + pad, device=x.device)
        if mode == "wrap":
            return i % n
        j = i % (2 * n)
        return torch.where(j < n, j, 2 * n - 1 - j)

    h, w = x.shape[-2:]
    return x.index_select(-2, index(h)).index_select(-1, index(w))


class CircularConvTranspose2d(nn.ConvTranspose2d):
    """A ``ConvTranspose2d`` whose borders wrap around: the input is padded circularly by enough
    pixels for every output pixel to get all its contributions, and the extra output is cropped
    through a larger ``padding``. The output size, the parameters and their state-dict keys are
    those of ``ConvTranspose2d``; a periodic input gives a periodic output."""

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        qh, qw = (-(-k // s) for k, s in zip(self.kernel_size, self.stride))
        xp = F.pad(x, (qw, qw, qh, qh), mode="circular")
        padding = (self.padding[0] + self.stride[0] * qh, self.padding[1] + self.stride[1] * qw)
        return F.conv_transpose2d(xp, self.weight, self.bias, self.stride, padding, self.output_padding, self.groups,
                                  self.dilation)


def circular_copy(net: nn.Module) -> nn.Module:
    """A copy of ``net`` whose every border wraps around: convolutions pad circularly, padding
    layers become circular ones, transposed convolutions wrap (:class:`CircularConvTranspose2d`).
    For a periodic input (sizes multiples of the net's stride) the output is periodic: the way to
    seamless output for nets whose receptive field covers the whole image (U-Net)."""
    twin = copy.deepcopy(net)
    for parent in list(twin.modules()):
        for name, m in list(parent.named_children()):
            if isinstance(m, nn.ConvTranspose2d):
                m.__class__ = CircularConvTranspose2d  # the same parameters, wrapping borders
            elif isinstance(m, nn.Conv2d) and any(p > 0 for p in m.padding):
                m.padding_mode = "circular"
            elif isinstance(m, (nn.ReflectionPad2d, nn.ReplicationPad2d, nn.ZeroPad2d, nn.ConstantPad2d)):
                setattr(parent, name, nn.CircularPad2d(m.padding))
    return twin

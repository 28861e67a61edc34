"""Shared building blocks: norm factory, bias rule, weight initialisation.

Every network in :mod:`i2i.nets` is built from these so that the bias/norm
conventions (which decide parameter counts and checkpoint compatibility with the
reference pix2pix/CycleGAN code) live in one place.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator
from typing import Literal

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm as sn

from ..options import BatchOrNone, Init, Norm, TestMode, choices

__all__ = ["BatchOrNone", "Norm"]  # re-exported: nets annotate their options with them

NORMS = choices(Norm)
INITS = choices(Init)


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise a ValueError naming ``name``."""
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not supported; choose one of {', '.join(choices)}")
    return value


def make_norm(norm: str, channels: int) -> nn.Module:
    """Normalisation layer for ``channels`` feature maps.

    ``batch``: BatchNorm2d with affine parameters and running statistics.
    ``instance``: InstanceNorm2d without affine parameters or running statistics
    (as in the reference CycleGAN code: it contributes no state-dict keys).
    ``none``: identity.
    """
    check_choice("norm", norm, NORMS)
    if norm == "batch":
        return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    return nn.Identity()


Upsample = Literal["transpose", "resize"]
"""How decoders double the resolution: ``transpose`` (the reference's transposed convolution)
or ``resize`` (nearest-neighbour upsampling then a 3x3 convolution: no checkerboard
artefacts, Odena et al. 2016, "Deconvolution and Checkerboard Artifacts")."""
Predict = Literal["image", "chroma", "residual"]
"""What an image generator outputs: the ``image``; for colourisation (1 -> 3 channels) the
``chroma``: two channels (BT.601 Cb, Cr) combined with the input luma, which passes through
unchanged (the reference colourisation model's idea, in the colour space the gray input is
defined in); or a ``residual`` added to the input (restoration, equal channels): the last
layer starts at zero, so the untrained net is exactly the identity and training only corrects."""


def check_predict(predict: str, in_channels: int, out_channels: int) -> str:
    """Validate a generator's ``predict`` option against its channels (see :data:`Predict`)."""
    check_choice("predict", predict, ("image", "chroma", "residual"))
    if predict == "chroma" and (in_channels, out_channels) != (1, 3):
        raise ValueError(f"predict='chroma' colourises: it needs in_channels=1 and out_channels=3, got {in_channels}, "
                         f"{out_channels}")
    if predict == "residual" and in_channels != out_channels:
        raise ValueError("predict='residual' adds a correction to the input: it needs in_channels == "
                         "out_channels, got "
                         f"{in_channels}, {out_channels}")
    return predict


def predicted_image(predict: str, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The output image from a generator's input ``x`` and raw output ``y`` (see :data:`Predict`)."""
    if predict == "chroma":
        return luma_chroma_to_rgb(x, y)
    if predict == "residual":
        return (x + y).clamp(-1, 1)
    return y


def zero_last_layer(net: nn.Module) -> None:
    """Flag the last convolution of ``net`` to start at zero (:func:`init_weights` honours it)."""
    last = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))][-1]
    last.zero_init = True


def upsample_conv(upsample: str, cin: int, cout: int, *, kernel: int = 4, padding: int = 1, output_padding: int = 0,
                  bias: bool = True) -> nn.Module:
    """A layer doubling the resolution from ``cin`` to ``cout`` channels (see :data:`Upsample`)."""
    check_choice("upsample", upsample, ("transpose", "resize"))
    if upsample == "transpose":
        return nn.ConvTranspose2d(cin, cout, kernel, 2, padding, output_padding=output_padding, bias=bias)
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, 1, 1, bias=bias))


def luma_chroma_to_rgb(luma: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
    """``(N, 1, H, W)`` BT.601 luma and ``(N, 2, H, W)`` Cb, Cr (all in [-1, 1]) ->
    ``(N, 3, H, W)`` RGB in [-1, 1] (clipped). The luma of the result is the input's,
    wherever the colour fits in the RGB cube."""
    # JPEG's full-range YCbCr with Cb, Cr in [-0.5, 0.5] scaled to [-1, 1] like the images.
    y, cb, cr = luma, chroma[:, :1], chroma[:, 1:2]
    r = y + 1.402 * cr
    g = y - 0.344136 * cb - 0.714136 * cr
    b = y + 1.772 * cb
    return torch.cat([r, g, b], 1).clamp(-1, 1)


def _keys_cubic(x: float) -> float:
    """Keys' cubic kernel with a = -0.5 (MATLAB's ``cubic``)."""
    ax = abs(x)
    if ax <= 1:
        return 1.5 * ax**3 - 2.5 * ax**2 + 1
    if ax < 2:
        return -0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2
    return 0.0


class BicubicUpsample(nn.Module):
    """Integer-factor upscaling equal to MATLAB's ``imresize(x, scale, 'bicubic')`` (Keys
    a = -0.5, symmetric borders; :func:`i2i.data.resize.imresize` is the reference), written as
    two fixed separable convolutions with one 5-tap filter per output phase, so it runs on any
    device, under autocast and in ONNX with dynamic sizes. No parameters, no state-dict keys.
    ``(N, C, H, W)`` -> ``(N, C, scale*H, scale*W)``; H, W >= 2."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale
        # Output pixel i*s + r sits at input coordinate i + (r + 0.5)/s - 0.5; taps i-2 .. i+2.
        taps = [[_keys_cubic((r + 0.5) / scale - 0.5 - k) for k in range(-2, 3)] for r in range(scale)]
        w = torch.tensor(taps, dtype=torch.float32)
        w = w / w.sum(1, keepdim=True)
        self.register_buffer("w_h", w.view(scale, 1, 5, 1), persistent=False)
        self.register_buffer("w_w", w.view(scale, 1, 1, 5), persistent=False)

    @staticmethod
    def _pad(x: torch.Tensor, dim: int) -> torch.Tensor:
        """Symmetric (edge-including) padding by 2 along ``dim`` (MATLAB's boundary rule)."""
        first, second = x.narrow(dim, 0, 1), x.narrow(dim, 1, 1)
        last, before_last = x.narrow(dim, x.shape[dim] - 1, 1), x.narrow(dim, x.shape[dim] - 2, 1)
        return torch.cat([second, first, x, last, before_last], dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        s = self.scale
        y = self._pad(x.reshape(n * c, 1, h, w), 2)
        y = nn.functional.conv2d(y, self.w_h.to(y.dtype))  # (nc, s, h, w): one channel per phase
        y = y.permute(0, 2, 1, 3).reshape(n * c, 1, h * s, w)
        y = nn.functional.conv2d(self._pad(y, 3), self.w_w.to(y.dtype))  # (nc, s, hs, w)
        return y.permute(0, 2, 3, 1).reshape(n, c, h * s, w * s)


class MinibatchStd(nn.Module):
    """Minibatch standard deviation (Karras et al. 2018, "Progressive Growing of GANs", sec. 3):
    the simplified minibatch discrimination. Appends one feature map holding, for each group
    of ``group_size`` samples, the standard deviation of every feature over the group,
    averaged: a discriminator can then see that a batch lacks variety (mode collapse), which
    no single-sample feature shows. ``(N, C, H, W)`` -> ``(N, C + 1, H, W)``. Groups are the
    largest divisor of N up to ``group_size``; a batch of one gets zeros."""

    def __init__(self, group_size: int = 4) -> None:
        super().__init__()
        if group_size < 2:
            raise ValueError(f"minibatch_std group size {group_size} must be >= 2 (0 turns the layer off)")
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = max(d for d in range(1, min(self.group_size, n) + 1) if n % d == 0)
        y = x.float().reshape(g, n // g, c, h, w)
        std = (y.var(0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (N/g,)
        s = std.repeat(g).view(n, 1, 1, 1).expand(n, 1, h, w).to(x.dtype)  # sample i is in group i % (N/g)
        return torch.cat([x, s], 1)


class SelfAttention(nn.Module):
    """Self-attention over all positions of a feature map (SAGAN, Zhang et al. 2019):
    ``x + gamma * softmax(q k^T) v`` with 1x1-convolution queries and keys of ``channels // 8``
    and values of ``channels``; ``gamma`` starts at 0, so the block starts as the identity and
    the net learns how much long-range context to mix in. ``(N, C, H, W)`` -> same shape.
    Cost grows with (H W)^2: place it at a coarse resolution."""

    def __init__(self, channels: int, *, spectral_norm: bool = False) -> None:
        super().__init__()
        k = max(channels // 8, 1)

        def conv(a: int, b: int) -> nn.Module:
            m = nn.Conv2d(a, b, 1, bias=False)
            return sn(m) if spectral_norm else m

        self.query, self.key, self.value = conv(channels, k), conv(channels, k), conv(channels, channels)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q = self.query(x).flatten(2).transpose(1, 2)[:, None]  # (N, 1, HW, k)
        k = self.key(x).flatten(2).transpose(1, 2)[:, None]
        v = self.value(x).flatten(2).transpose(1, 2)[:, None]  # (N, 1, HW, C)
        out = nn.functional.scaled_dot_product_attention(q, k, v, scale=1.0)  # SAGAN: no 1/sqrt(k)
        return x + self.gamma.to(x.dtype) * out[:, 0].transpose(1, 2).reshape(n, c, h, w)


def check_attention(attention: int, strides: Iterable[int], net: str) -> int:
    """Validate a net's ``attention`` option: 0 (none) or the stride (feature maps at 1/stride
    of the image's side) of one of the levels ``strides`` the net has."""
    allowed = sorted(set(strides))
    if attention and attention not in allowed:
        raise ValueError(f"attention={attention}: {net} has feature maps at strides {', '.join(map(str, allowed))} "
                         "(1/stride of the image's side); choose one of them, or 0 for none")
    return attention


def conv_bias(norm: str) -> bool:
    """Convolutions followed by batch norm carry no bias (the norm's shift replaces it)."""
    return norm != "batch"


def init_weights(net: nn.Module, init: str = "normal", gain: float = 0.02) -> nn.Module:
    """Initialise conv/linear weights in place and return ``net``.

    ``normal``: N(0, gain); ``xavier``/``orthogonal``: with ``gain``; ``kaiming``: fan-in.
    Biases are zeroed; batch-norm scales are drawn from N(1, gain) and shifts zeroed,
    following the DCGAN / pix2pix recipe. ``default``: the net's own initialisation, as built
    (PyTorch's layer defaults, or the published scheme where the net applies one, e.g.
    RRDBNet's kaiming x 0.1 dense blocks, as BasicSR). Layers flagged ``zero_init = True`` get
    zero weights in every scheme (a residual branch that starts by adding nothing).
    """
    check_choice("init", init, INITS)
    for m in net.modules():
        if init == "default":
            if getattr(m, "zero_init", False):
                nn.init.zeros_(m.weight)
            continue
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            w = m.weight
            if init == "normal":
                nn.init.normal_(w, 0.0, gain)
            elif init == "xavier":
                nn.init.xavier_normal_(w, gain=gain)
            elif init == "kaiming":
                nn.init.kaiming_normal_(w, a=0, mode="fan_in")
            else:
                nn.init.orthogonal_(w, gain=gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
            if getattr(m, "zero_init", False):  # e.g. the last layer of a residual branch: starts as "add nothing"
                nn.init.zeros_(w)

        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return net


def count_parameters(net: nn.Module) -> int:
    """Number of trainable and frozen parameters (buffers excluded)."""
    return sum(p.numel() for p in net.parameters())


def size_multiple(net: nn.Module) -> int:
    """Spatial size that inputs of ``net`` must be a multiple of (1 if it has no such need)."""
    return int(getattr(net, "size_multiple", 1))


def is_power_of_two(n: int) -> bool:
    """True for 1, 2, 4, 8, ..."""
    return n > 0 and 2 ** int(math.log2(n)) == n


TEST_MODES = choices(TestMode)


def set_test_mode(net: nn.Module, mode: str) -> Callable[[], None]:
    """Put ``net`` in an inference mode and return a function that restores its previous state.

    ``eval``: the usual ``net.eval()`` (running statistics, no dropout).
    ``paper``: pix2pix's test-time behaviour (Isola et al. 2017, sec. 3.3): dropout active
    and batch norm normalising with the statistics of the batch at hand. The running
    statistics are neither used nor updated (``track_running_stats`` off while in this
    mode), so inference never changes a model's saved state.
    """
    check_choice("mode", mode, TEST_MODES)
    saved = [(m, m.training, getattr(m, "track_running_stats", None)) for m in net.modules()]
    net.eval()
    if mode == "paper":
        for m in net.modules():
            if isinstance(m, nn.Dropout):
                m.train()
            elif isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.train()
                m.track_running_stats = False

    def restore() -> None:
        for m, training, track in saved:
            m.training = training
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.track_running_stats = track

    return restore


def samples_independent(net: nn.Module) -> bool:
    """True when ``net``, in training mode, computes every sample of a batch on its own, so one
    call on ``torch.cat([x, y])`` equals a call on ``x`` and one on ``y`` within float rounding:
    no batch norm (batch statistics mix samples), no minibatch std, no dropout (its masks would
    be drawn differently) and no parametrization such as spectral norm (its power iteration
    advances once per call)."""
    for m in net.modules():
        if isinstance(m, (nn.modules.batchnorm._BatchNorm, MinibatchStd)) or parametrize.is_parametrized(m):
            return False
        if isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0:
            return False
    return True


def has_batch_norm(net: nn.Module) -> bool:
    """True when ``net`` has batch norms that keep running statistics."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats for m in net.modules())


@torch.no_grad()
def recalibrate_batch_norm(net: nn.Module, inputs: Iterable[tuple]) -> int:
    """Replace the running statistics of ``net``'s batch norms by their exact average over
    ``inputs`` (tuples of positional arguments), computed as eval-mode inference will see the
    activations: dropout off, batch norm normalising each batch with its own statistics
    (precise BN, Wu & Johnson 2021; dropout off avoids the variance shift of Li et al. 2019).
    Weights are untouched; the net's train/eval state is restored. Returns the batch count."""
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not bns:
        return 0
    was_training = net.training
    momenta = [m.momentum for m in bns]
    net.eval()
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: every batch counts equally
        m.train()
    n = 0
    try:
        for args in inputs:
            net(*args)
            n += 1
    finally:
        for m, mom in zip(bns, momenta):
            m.momentum = mom
        net.train(was_training)
    return n


@contextlib.contextmanager
def inference_state(*nets: nn.Module, mode: str = "eval") -> Iterator[None]:
    """Run a block with ``nets`` in test ``mode`` (see :func:`set_test_mode`), restoring their
    training state afterwards (sample grids during training)."""
    restores = [set_test_mode(n, mode) for n in nets]
    try:
        yield
    finally:
        for restore in restores:
            restore()

"""DCGAN generator and discriminator (Radford et al., ICLR 2016), sized from the image size.

Generator: z (``latent_dim``) -> 4x4 feature map via a transposed convolution ("project
and reshape"), then transposed convolutions doubling the resolution with batch norm and
ReLU, tanh output. Discriminator: strided convolutions halving the resolution, batch norm
on all but the first, LeakyReLU(0.2), a final 4x4 convolution to one logit; no pooling, no
hidden fully connected layers. Channels: ``base_channels * image_size / 8`` at 4x4 (the
paper's 1024 for 64x64 with base 128; the PyTorch example uses base 64 -> 512).

Class-conditional variant (``num_classes > 0``): the generator concatenates the one-hot
label to z (Mirza & Osindero 2014; its first layer is linear, so this is a learned
per-class shift of the 4x4 map). A learned ``nn.Embedding`` there instead (N(0, 1) entries,
as large as z) collapsed to one image per class on discs and squares, with either
discriminator; see ARCHITECTURE.md. The discriminator sees the label either as an extra input channel (a
learned per-class map, ``conditioning: concat``) or by projection (``conditioning:
projection``, Miyato & Koyama 2018): its logit gains the inner product of a learned class
embedding with its globally summed last features, ``psi(phi(x)) + <embed(y), sum phi(x)>``.

Stabilisers from the GAN literature, all off by default: ``attention`` (a SAGAN
self-attention block at the feature maps of 1/attention the image's side, in G or D),
``minibatch_std`` (D: a minibatch standard-deviation map before the last convolution,
against mode collapse), ``spectral_norm`` (D).
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _sn

from ..options import AttentionStride, Classes, GroupSize, ImageChannels, ImageSize, Range, Width
from ..tiling import CircularConvTranspose2d
from .blocks import (
    BatchOrNone,
    MinibatchStd,
    SelfAttention,
    check_attention,
    check_choice,
    conv_bias,
    is_power_of_two,
    make_norm,
)

PRIORS = ("gaussian", "uniform")


def sample_latent(n: int, dim: int, prior: str = "gaussian", *, generator: torch.Generator | None = None,
                  truncation: float | None = None) -> torch.Tensor:
    """``(n, dim)`` latents from N(0, 1) or U(-1, 1); ``truncation`` T redraws gaussian
    entries with ``|z| > T`` (the truncation trick: fidelity for variety)."""
    check_choice("prior", prior, PRIORS)
    if prior == "uniform":
        return torch.rand(n, dim, generator=generator) * 2 - 1
    z = torch.randn(n, dim, generator=generator)
    if truncation is not None:
        if truncation <= 0:
            raise ValueError(f"truncation {truncation} must be positive")
        bad = z.abs() > truncation
        while bad.any():
            z[bad] = torch.randn(int(bad.sum()), generator=generator)
            bad = z.abs() > truncation
    return z


def _levels(image_size: int) -> int:
    if not is_power_of_two(image_size) or image_size < 16:
        raise ValueError(f"image_size={image_size} must be a power of two >= 16 (e.g. 32, 64, 128)")
    return int(math.log2(image_size)) - 2  # stride-2 layers between 4x4 and the image


class DCGANGenerator(nn.Module):
    """``(N, latent_dim)`` z (and ``(N,)`` labels) -> ``(N, out_channels, S, S)`` in [-1, 1].

    ``prior`` is the distribution z is drawn from (:meth:`sample_latent`): part of what the
    generator is, so sampling code never has to be told it. ``tileable``: the upsampling layers
    wrap around their borders (:class:`~i2i.tiling.CircularConvTranspose2d`), so every sample is
    exactly periodic and tiles without a seam (textures); the parameters are the same."""

    def __init__(self, *, latent_dim: Annotated[int, Range(1, 65536)] = 100, out_channels: ImageChannels = 3,
                 image_size: ImageSize = 64, base_channels: Width = 64, num_classes: Classes = 0,
                 norm: BatchOrNone = "batch",
                 prior: Literal["gaussian", "uniform"] = "gaussian", attention: AttentionStride = 0,
                 tileable: bool = False) -> None:
        super().__init__()
        check_choice("norm", norm, ("batch", "none"))
        self.prior = check_choice("prior", prior, PRIORS)
        n = _levels(image_size)
        check_attention(attention, [2**k for k in range(1, n + 1)], "the DCGAN generator")
        c = base_channels * image_size // 8
        zin = latent_dim + num_classes
        bias = conv_bias(norm)
        # tileable: every upsampling layer wraps around, so samples tile seamlessly (textures)
        up = CircularConvTranspose2d if tileable else nn.ConvTranspose2d
        self.tileable = tileable
        layers: list[nn.Module] = [nn.ConvTranspose2d(zin, c, 4, 1, 0, bias=bias), make_norm(norm, c), nn.ReLU(True)]
        size = 4
        for _ in range(n - 1):
            if attention == image_size // size:
                layers.append(SelfAttention(c))
            layers += [up(c, c // 2, 4, 2, 1, bias=bias), make_norm(norm, c // 2), nn.ReLU(True)]
            c //= 2
            size *= 2
        if attention == image_size // size:
            layers.append(SelfAttention(c))
        layers += [up(c, out_channels, 4, 2, 1), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        self.latent_dim, self.num_classes, self.image_size, self.out_channels = (
            latent_dim,
            num_classes,
            image_size,
            out_channels,
        )

    def upgrade_state_dict(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``state`` in this layout. Conditional generators of the earlier layout fed a learned
        ``(K, latent_dim)`` label embedding E through the first layer's weight rows W_e; since
        W_e^T E[y] is the one-hot row (E W_e)[y], their weights fold in exactly (same images)."""
        w, old = state.get("model.0.weight"), state.get("embed.weight")
        if old is None or w is None or w.shape[0] != 2 * self.latent_dim or old.shape[0] != self.num_classes:
            return state
        state = {k: v for k, v in state.items() if k != "embed.weight"}
        z_rows, e_rows = w[: self.latent_dim], w[self.latent_dim :]
        state["model.0.weight"] = torch.cat([z_rows, torch.einsum("kd,dchw->kchw", old.to(w.dtype), e_rows)])
        return state

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes:
            if labels is None:
                raise ValueError("this generator is class-conditional: pass labels")
            # One-hot rows by comparison: F.one_hot reads the labels back to check their range
            # (a host synchronisation on every step); labels come from the dataset's class folders.
            one_hot = labels[:, None] == torch.arange(self.num_classes, device=labels.device)
            z = torch.cat([z, one_hot.to(z.dtype)], 1)
        return self.model(z[:, :, None, None])

    def sample_latent(self, n: int, *, generator: torch.Generator | None = None,
                      truncation: float | None = None) -> torch.Tensor:
        """``(n, latent_dim)`` latents from this generator's prior (on the CPU)."""
        return sample_latent(n, self.latent_dim, self.prior, generator=generator, truncation=truncation)

    def example_inputs(self, batch_size: int = 2) -> tuple[torch.Tensor, ...]:
        """``(z, labels)``: latents from the prior, and class labels (None when unconditional)."""
        z = self.sample_latent(batch_size)
        return (z, torch.arange(batch_size) % self.num_classes if self.num_classes else None)


class DCGANDiscriminator(nn.Module):
    """``(N, in_channels, S, S)`` images (and ``(N,)`` labels) -> ``(N,)`` logits.

    ``minibatch_std``: group size of a :class:`~i2i.nets.blocks.MinibatchStd` layer before the
    last convolution (0: none; 4 in the paper). ``conditioning`` (with ``num_classes``): how the
    label enters (see the module docstring)."""

    def __init__(self, *, in_channels: ImageChannels = 3, image_size: ImageSize = 64, base_channels: Width = 64,
                 num_classes: Classes = 0, norm: BatchOrNone = "batch", spectral_norm: bool = False,
                 attention: AttentionStride = 0, minibatch_std: GroupSize = 0,
                 conditioning: Literal["concat", "projection"] = "concat") -> None:
        super().__init__()
        n = _levels(image_size)
        check_attention(attention, [2**k for k in range(1, n + 1)], "the DCGAN discriminator")
        self.conditioning = check_choice("conditioning", conditioning, ("concat", "projection"))
        concat = bool(num_classes) and conditioning == "concat"
        self.label_map = nn.Embedding(num_classes, image_size * image_size) if concat else None
        cin = in_channels + (1 if concat else 0)

        def conv(a: int, b: int, k: int, s: int, p: int, bias: bool) -> nn.Module:
            m = nn.Conv2d(a, b, k, s, p, bias=bias)
            return _sn(m) if spectral_norm else m

        c = base_channels
        layers: list[nn.Module] = [conv(cin, c, 4, 2, 1, True), nn.LeakyReLU(0.2, True)]
        stride = 2
        for _ in range(n - 1):
            if attention == stride:
                layers.append(SelfAttention(c, spectral_norm=spectral_norm))
            layers += [conv(c, c * 2, 4, 2, 1, conv_bias(norm)), make_norm(norm, c * 2), nn.LeakyReLU(0.2, True)]
            c *= 2
            stride *= 2
        if attention == stride:
            layers.append(SelfAttention(c, spectral_norm=spectral_norm))
        if minibatch_std:
            layers.append(MinibatchStd(minibatch_std))
        # One Sequential whose last layer is the head: checkpoints keep the keys they always had.
        self.model = nn.Sequential(*layers, conv(c + (1 if minibatch_std else 0), 1, 4, 1, 0, True))
        self.projection = None
        if num_classes and conditioning == "projection":
            emb = nn.Embedding(num_classes, c + (1 if minibatch_std else 0))
            nn.init.normal_(emb.weight, 0.0, (c + (1 if minibatch_std else 0)) ** -0.5)
            self.projection = _sn(emb) if spectral_norm else emb
        self.image_size, self.num_classes, self.in_channels = image_size, num_classes, in_channels

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes and labels is None:
            raise ValueError("this discriminator is class-conditional: pass labels")
        if self.label_map is not None:
            x = torch.cat([x, self.label_map(labels).view(-1, 1, self.image_size, self.image_size).to(x.dtype)], 1)
        h = self.model[:-1](x)
        out = self.model[-1](h).flatten(1).squeeze(1)
        if self.projection is not None:
            out = out + (self.projection(labels).to(h.dtype) * h.sum(dim=(2, 3))).sum(1)
        return out

    def example_inputs(self, batch_size: int = 2) -> tuple[torch.Tensor, ...]:
        """``(images, labels)``: ``(batch_size, in_channels, S, S)`` in [-1, 1], labels None when unconditional."""
        x = torch.rand(batch_size, self.in_channels, self.image_size, self.image_size) * 2 - 1
        return (x, torch.arange(batch_size) % self.num_classes if self.num_classes else None)

"""DCGAN (Radford et al., ICLR 2016): unconditional or class-conditional image generation.

Per iteration: z from the prior; D step on real vs ``G(z).detach()``; G step with D
frozen. All GAN loss modes apply (non-saturating vanilla by default; hinge; WGAN-GP with
the penalty, preferably with ``model.discriminator.norm: none`` since batch norm breaks
the per-sample gradient the penalty assumes). Sample grids use fixed noise from the seed.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..config import Config, ConfigError
from ..data.datasets import ImageDataset
from ..losses import GANLoss, gradient_penalty
from ..nets.blocks import test_mode
from .base import Pipeline, StepContext, discriminator_from_config, generator_from_config


def sample_latent(n: int, dim: int, prior: str = "gaussian", *, generator: torch.Generator | None = None,
                  truncation: float | None = None) -> torch.Tensor:
    """``(n, dim)`` latents from N(0, 1) or U(-1, 1); ``truncation`` T redraws gaussian
    entries with ``|z| > T`` (the truncation trick: fidelity for variety)."""
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


class DCGAN(Pipeline):
    """Nets: ``G`` (z [, label] -> image) and ``D`` (image [, label] -> logit)."""

    net_names = ("G", "D")
    directions = {"a_to_b": "G"}
    preview = 64

    def __init__(self, cfg: Config) -> None:
        if cfg.model.generator.name != "dcgan":
            raise ConfigError(f"pipeline dcgan needs model.generator.name: dcgan, not {cfg.model.generator.name!r}")
        super().__init__(cfg)
        self.gan = GANLoss(cfg.loss.gan_mode)
        g = self.nets["G"]
        self.latent_dim, self.num_classes, self.prior = g.latent_dim, g.num_classes, cfg.model.generator.prior
        gen = torch.Generator().manual_seed(cfg.seed + 12345)
        self.fixed_z = sample_latent(self.preview, self.latent_dim, self.prior, generator=gen)
        self.fixed_labels = torch.arange(self.preview) % max(self.num_classes, 1)

    @classmethod
    def build_net(cls, cfg: Config, name: str) -> nn.Module:
        g, d, size = cfg.model.generator, cfg.model.discriminator, cfg.data.crop_size
        if name == "G":
            return generator_from_config(g, extra={"image_size": size}, exclude=("in_channels",))
        if name == "D":
            extra = {"image_size": size, "num_classes": g.num_classes or 0} if d.name == "dcgan" else None
            return discriminator_from_config(d, g.out_channels, extra=extra)
        raise KeyError(f"dcgan has no net {name!r}; it has G, D")

    @classmethod
    def make_dataset(cls, cfg: Config, *, train: bool, root: str | None = None) -> ImageDataset:
        d, g = cfg.data, cfg.model.generator
        return ImageDataset(root or d.root, size=d.crop_size, channels=g.out_channels, dataset=d.dataset,
                            labels=bool(g.num_classes), train=train, flip=d.flip, download=d.download, seed=cfg.seed)

    def param_groups(self) -> dict[str, dict[str, Any]]:
        o = self.cfg.optim
        return {"G": {"params": list(self.nets["G"].parameters()), "lr": o.lr_g},
                "D": {"params": list(self.nets["D"].parameters()), "lr": o.lr_d}}

    def train_step(self, batch: dict[str, Any], ctx: StepContext) -> dict[str, torch.Tensor]:
        real = batch["image"]
        labels = batch["label"] if self.num_classes else None
        z = sample_latent(real.shape[0], self.latent_dim, self.prior).to(real.device)
        with ctx.autocast():
            fake = ctx.module("G")(z, labels)
        D = ctx.module("D")
        with ctx.autocast():
            d_real, d_fake = self.gan.real_loss(D(real, labels)), self.gan.fake_loss(D(fake.detach(), labels))
            loss_d = d_real + d_fake
        logs = {"D_real": d_real.detach(), "D_fake": d_fake.detach()}
        if self.gan.mode == "wgangp":
            with ctx.autocast():
                gp = gradient_penalty(lambda x: D(x, labels), real, fake, self.cfg.loss.gp_weight)
            loss_d = loss_d + gp
            logs["D_gp"] = gp.detach()
        ctx.backward_step("D", loss_d)
        with ctx.frozen("D") as (D_frozen,), ctx.autocast():
            loss_g = self.gan.g_loss(D_frozen(fake, labels))
        ctx.backward_step("G", loss_g)
        logs["G"] = loss_g.detach()
        return logs

    @torch.no_grad()
    def sample(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        G = self.nets["G"]
        device = next(G.parameters()).device
        with test_mode(G):
            imgs = G(self.fixed_z.to(device), self.fixed_labels.to(device) if self.num_classes else None)
        cols = 8
        return {f"col{c}": imgs[c::cols] for c in range(cols)}  # an 8x8 grid; column c holds class c % num_classes

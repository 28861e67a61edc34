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

from ..config import Config, ConfigError, LossConfig
from ..data.generation import GenerationDataConfig, ImageDataset
from ..nets.blocks import inference_state
from ..nets.dcgan import sample_latent
from .base import Pipeline, StepContext, net_from_spec, to_device_async


class DCGAN(Pipeline):
    """Nets: ``G`` (z [, label] -> image) and ``D`` (image [, label] -> logit)."""

    name = "dcgan"
    kind = "generation"
    net_names = ("G", "D")
    sampled_net = "G"
    evaluation = "generation"
    DataConfig = GenerationDataConfig
    LossConfig = LossConfig
    default_nets = {"generator": "dcgan", "discriminator": "dcgan"}
    derived_options = {"generator": ("image_size",), "discriminator": ("in_channels", "image_size", "num_classes")}
    renamed_options = {"data": {"crop_size": "image_size"}}
    example = {
        "model": {"generator": {"name": "dcgan", "out_channels": 1, "base_channels": 4, "latent_dim": 8,
                                "num_classes": 2},
                  "discriminator": {"name": "dcgan", "base_channels": 4}},
        "data": {"image_size": 16, "batch_size": 4},
    }
    preview = 64

    @classmethod
    def validate_config(cls, cfg: Config) -> None:
        super().validate_config(cfg)
        if cfg.model.generator.name != "dcgan":
            raise ConfigError(f"pipeline dcgan needs model.generator.name: dcgan, not {cfg.model.generator.name!r}")

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg)
        self.gan = self.adversarial_loss(cfg.loss)
        g = self.nets["G"]
        self.latent_dim, self.num_classes, self.prior = g.latent_dim, g.num_classes, g.prior
        gen = torch.Generator().manual_seed(cfg.seed + 12345)
        self.fixed_z = sample_latent(self.preview, self.latent_dim, self.prior, generator=gen)
        self.fixed_labels = torch.arange(self.preview) % max(self.num_classes, 1)

    @classmethod
    def build_net(cls, cfg: Config, name: str) -> nn.Module:
        g, size = cfg.model.generator, cfg.data.image_size
        if name == "G":
            return net_from_spec(g, image_size=size)
        if name == "D":
            return net_from_spec(cfg.model.discriminator, in_channels=g.arg("out_channels"), image_size=size,
                             num_classes=g.arg("num_classes"))
        raise KeyError(f"dcgan has no net {name!r}; it has G, D")

    @classmethod
    def make_dataset(cls, cfg: Config, *, train: bool, root: str | None = None) -> ImageDataset:
        d, g = cfg.data, cfg.model.generator
        ds = ImageDataset(root or d.root, d, channels=g.arg("out_channels"), labels=bool(g.arg("num_classes")),
                          train=train,
                          seed=cfg.seed)
        n = g.arg("num_classes")
        if n and len(ds.classes) > n:
            raise ConfigError(f"model.generator.num_classes={n}, but '{ds.root}' holds {len(ds.classes)} classes "
                              f"({', '.join(ds.classes[:8])}{', ...' if len(ds.classes) > 8 else ''}); set "
                              f"num_classes: {len(ds.classes)}")
        return ds

    def param_groups(self) -> dict[str, dict[str, Any]]:
        return {"G": self.generator_group("G"), "D": self.discriminator_group("D")}

    def host_draws(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        # From the CPU's global generator, so a run draws the same latents on every device.
        return {"z": sample_latent(batch["image"].shape[0], self.latent_dim, self.prior)}

    def train_step(self, batch: dict[str, Any], ctx: StepContext) -> dict[str, torch.Tensor]:
        real = batch["image"]
        labels = batch["label"] if self.num_classes else None
        z = batch["z"]
        with ctx.autocast():
            fake = ctx.module("G")(z, labels)
        D = ctx.module("D")
        with ctx.autocast():
            loss_d, parts = self.gan.discriminator_loss(lambda x: D(x, labels), real, fake)
        logs = {f"D_{k}": v for k, v in parts.items()}
        ctx.backward_step("D", loss_d)
        with ctx.frozen("D") as (D_frozen,), ctx.autocast():
            loss_g = self.gan.generator_loss(lambda x: D_frozen(x, labels), fake, real=real)
        ctx.backward_step("G", loss_g)
        logs["G"] = loss_g.detach()
        return logs

    def generator_inputs(self, name: str, batch: dict[str, Any], rng: torch.Generator) -> tuple[Any, ...]:
        real = batch["image"]
        z = to_device_async(sample_latent(real.shape[0], self.latent_dim, self.prior, generator=rng), real.device)
        return (z, batch["label"] if self.num_classes else None)

    @torch.no_grad()
    def sample(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        G = self.nets["G"]
        device = next(G.parameters()).device
        with inference_state(G):
            imgs = G(self.fixed_z.to(device), self.fixed_labels.to(device) if self.num_classes else None)
        cols = 8  # an 8x8 grid; column c holds class c % num_classes (conditional models)
        return {(f"#{c} c{c % self.num_classes}" if self.num_classes else f"#{c}"): imgs[c::cols] for c in range(cols)}

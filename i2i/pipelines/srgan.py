"""SRGAN (Ledig et al., CVPR 2017): super-resolution with pixel, perceptual and adversarial losses.

With ``loss.adversarial_weight: 0`` this trains SRResNet alone (pixel loss; no
discriminator is built). Otherwise each iteration is a D step (real HR vs ``G(LR)``
detached) followed by a G step with D frozen minimising
``pixel_weight x pixel + perceptual_weight x VGG + adversarial_weight x GAN``. The paper's
two phases are two configs: SRResNet with MSE, then SRGAN initialised from it
(``model.generator.init_from``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config import Config, ConfigError
from ..data.datasets import SRDataset
from ..data.resize import imresize
from ..losses import GANLoss, VGGPerceptualLoss, gradient_penalty
from ..nets.blocks import test_mode
from .base import Pipeline, StepContext, discriminator_from_config, generator_from_config


class SRGAN(Pipeline):
    """Nets: ``G`` (SRResNet, LR -> HR) and, when adversarial, ``D`` (judges HR images)."""

    net_names = ("G", "D")
    directions = {"a_to_b": "G"}

    def __init__(self, cfg: Config) -> None:
        g, d, loss = cfg.model.generator, cfg.model.discriminator, cfg.loss
        scale = self.scale_of(cfg)
        if cfg.data.crop_size % scale:
            raise ConfigError(f"data.crop_size={cfg.data.crop_size} must be a multiple of model.generator.scale={scale}")
        if g.in_channels != g.out_channels:
            raise ConfigError("SRGAN maps an image to a larger one of the same kind: model.generator.in_channels must equal out_channels")
        self.adversarial = loss.adversarial_weight > 0
        if self.adversarial and d.name == "srgan" and cfg.data.crop_size % 16:
            raise ConfigError(f"the srgan discriminator needs data.crop_size to be a multiple of 16, got {cfg.data.crop_size}")
        self.net_names = ("G", "D") if self.adversarial else ("G",)
        super().__init__(cfg)
        self.gan = GANLoss(loss.gan_mode)
        self.perceptual = None
        if loss.perceptual_weight > 0:
            try:
                self.perceptual = VGGPerceptualLoss(loss.perceptual_layer, weights=loss.vgg_weights)
            except (FileNotFoundError, ValueError) as e:
                raise ConfigError(f"loss.perceptual_weight={loss.perceptual_weight}: {e}") from None

    @staticmethod
    def scale_of(cfg: Config) -> int:
        return cfg.model.generator.scale or 4

    @classmethod
    def build_net(cls, cfg: Config, name: str) -> nn.Module:
        if name == "G":
            return generator_from_config(cfg.model.generator)
        if name == "D":
            d = cfg.model.discriminator
            return discriminator_from_config(d, cfg.model.generator.out_channels,
                                             extra={"input_size": cfg.data.crop_size} if d.name == "srgan" else None)
        raise KeyError(f"srgan has no net {name!r}; it has G, D")

    @classmethod
    def make_dataset(cls, cfg: Config, *, train: bool, root: str | None = None) -> SRDataset:
        d = cfg.data
        return SRDataset(root or d.root, scale=cls.scale_of(cfg), crop_size=d.crop_size, channels=cfg.model.generator.out_channels,
                         train=train, flip=d.flip, rotate=d.rotate, lr_root=d.lr_root if root is None else None, seed=cfg.seed)

    def param_groups(self) -> dict[str, dict[str, Any]]:
        o = self.cfg.optim
        groups = {"G": {"params": list(self.nets["G"].parameters()), "lr": o.lr_g}}
        if self.adversarial:
            groups["D"] = {"params": list(self.nets["D"].parameters()), "lr": o.lr_d}
        return groups

    def train_step(self, batch: dict[str, Any], ctx: StepContext) -> dict[str, torch.Tensor]:
        lr, hr = batch["input"], batch["target"]
        loss = self.cfg.loss
        with ctx.autocast():
            sr = ctx.module("G")(lr)
        logs: dict[str, torch.Tensor] = {}
        if self.adversarial:
            D = ctx.module("D")
            with ctx.autocast():
                d_real, d_fake = self.gan.real_loss(D(hr)), self.gan.fake_loss(D(sr.detach()))
                loss_d = d_real + d_fake
                if self.gan.mode == "wgangp":
                    gp = gradient_penalty(D, hr, sr, loss.gp_weight)
                    loss_d = loss_d + gp
                    logs["D_gp"] = gp.detach()
            ctx.backward_step("D", loss_d)
            logs.update(D_real=d_real.detach(), D_fake=d_fake.detach())

        pixel = (F.mse_loss if loss.pixel_loss == "mse" else F.l1_loss)(sr.float(), hr.float())
        total = loss.pixel_weight * pixel
        logs["G_pixel"] = pixel.detach()
        if self.perceptual is not None:
            self.perceptual.to(sr.device)
            with ctx.autocast():
                perc = self.perceptual(sr, hr)
            total = total + loss.perceptual_weight * perc
            logs["G_vgg"] = perc.detach()
        if self.adversarial:
            with ctx.frozen("D") as (D_frozen,), ctx.autocast():
                adv = self.gan.g_loss(D_frozen(sr))
            total = total + loss.adversarial_weight * adv
            logs["G_adv"] = adv.detach()
        ctx.backward_step("G", total)
        return logs

    @torch.no_grad()
    def sample(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        with test_mode(self.nets["G"], mode=self.cfg.test.mode):
            sr = self.nets["G"](batch["input"]).clamp(-1, 1)
        bicubic = imresize(batch["input"], float(self.scale_of(self.cfg))).clamp(-1, 1)
        return {"bicubic": bicubic, "output": sr, "target": batch["target"]}

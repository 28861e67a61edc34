"""pix2pix (Isola et al., CVPR 2017): paired translation with a conditional GAN + L1.

Per iteration, as in the reference: G produces ``fake = G(input)``; the D step judges
``concat(input, target)`` as real and ``concat(input, fake.detach())`` as fake, with the
loss halved so D learns at half G's rate; then the G step with D frozen minimises
``adversarial(D(concat(input, fake))) + l1_weight * |fake - target|``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config import Config, LossConfig, TemporalRegularised
from ..data.paired import PairedDataConfig, PairedDataset
from ..nets.blocks import inference_state
from ..options import LossWeight
from .base import Pipeline, StepContext, net_from_spec


@dataclass
class Pix2PixLoss(LossConfig, TemporalRegularised):
    """pix2pix objective: adversarial (``gan_mode``) + ``l1_weight`` x L1 to the target (100 in the
    paper) + ``temporal_reg`` x the motion consistency (:class:`~i2i.config.TemporalRegularised`)."""

    l1_weight: LossWeight = 100.0


class Pix2Pix(Pipeline):
    """Nets: ``G`` (input -> output) and ``D`` (conditional PatchGAN on input+image)."""

    name = "pix2pix"
    kind = "translation"
    net_names = ("G", "D")
    directions = {"a_to_b": "G"}
    evaluation = "paired"
    DataConfig = PairedDataConfig
    LossConfig = Pix2PixLoss
    default_nets = {"generator": "unet_256", "discriminator": "basic"}
    derived_options = {"discriminator": ("in_channels",)}
    example = {
        "model": {"generator": {"name": "unet", "num_downs": 5, "base_channels": 4},
                  "discriminator": {"name": "patch", "n_layers": 2, "base_channels": 4}},
        "data": {"load_size": 36, "crop_size": 32, "batch_size": 2},
    }

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg)
        self.gan = self.adversarial_loss(cfg.loss)

    @classmethod
    def build_net(cls, cfg: Config, name: str) -> nn.Module:
        g = cfg.model.generator
        if name == "G":
            return net_from_spec(g)
        if name == "D":
            return net_from_spec(cfg.model.discriminator, in_channels=g.arg("in_channels") + g.arg("out_channels"))
        raise KeyError(f"pix2pix has no net {name!r}; it has {', '.join(cls.net_names)}")

    @classmethod
    def make_dataset(cls, cfg: Config, *, train: bool, root: str | None = None) -> PairedDataset:
        d, g = cfg.data, cfg.model.generator
        return PairedDataset(root or d.root, d, in_channels=g.arg("in_channels"), out_channels=g.arg("out_channels"),
                             train=train,
                             seed=cfg.seed)

    def param_groups(self) -> dict[str, dict[str, Any]]:
        return {"G": self.generator_group("G"), "D": self.discriminator_group("D")}

    def train_step(self, batch: dict[str, Any], ctx: StepContext) -> dict[str, torch.Tensor]:
        real_a, real_b = batch["input"], batch["target"]
        G, D = ctx.module("G"), ctx.module("D")
        with ctx.autocast():
            fake_b = G(real_a)

        # D step: the loss detaches the fake, so this backward never reaches G; halved so D
        # learns at half G's rate (as in the reference). With wgangp the penalty is applied,
        # unlike the reference code where it is defined but unused.
        with ctx.autocast():
            loss_d, parts = self.gan.discriminator_loss(D, real_b, fake_b, scale=0.5, condition=real_a)
        ctx.backward_step("D", loss_d)
        logs = {f"D_{k}": v for k, v in parts.items()}

        # G step: D is frozen, so its parameters get no gradients from the G loss.
        with ctx.frozen("D") as (D_frozen,), ctx.autocast():
            loss_g_gan = self.gan.generator_loss(D_frozen, fake_b, condition=real_a, real=real_b)
        loss_l1 = F.l1_loss(fake_b.float(), real_b.float())
        total = loss_g_gan + self.cfg.loss.l1_weight * loss_l1
        logs.update(G_gan=loss_g_gan.detach(), G_L1=loss_l1.detach())
        if (motion := self.motion_loss(ctx, (G, real_a, fake_b))) is not None:
            total = total + self.cfg.loss.temporal_reg * motion
            logs["motion"] = motion.detach()
        ctx.backward_step("G", total)
        return logs

    def generator_inputs(self, name: str, batch: dict[str, Any], rng: torch.Generator) -> tuple[Any, ...]:
        return (batch["input"],)

    @torch.no_grad()
    def sample(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        with inference_state(self.nets["G"], mode=self.cfg.test.mode):
            out = self.nets["G"](batch["input"])
        return {"input": batch["input"], "output": out, "target": batch["target"]}

"""CycleGAN (Zhu et al., ICCV 2017): unpaired translation between domains A and B.

Nets: ``G_ab`` (A -> B), ``G_ba`` (B -> A), ``D_a`` (judges domain A: real A vs G_ba's
output), ``D_b`` (judges domain B). Per iteration, as in the reference: the G step with
both discriminators frozen minimises adversarial losses both ways + ``cycle_weight`` x
L1 cycle reconstruction both ways + identity terms (``G_ab(b) ~ b``, ``G_ba(a) ~ a``,
weighted ``identity_weight x cycle_weight``); then the D step judges real images
against generated ones drawn from per-direction history pools, halved as in pix2pix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config import Config, ConfigError, LossConfig, TemporalRegularised
from ..data.unpaired import UnpairedDataConfig, UnpairedDataset
from ..losses import outside_change
from ..nets.blocks import inference_state, samples_independent
from ..options import LossWeight, Range
from .base import Pipeline, StepContext, net_from_spec
from .pool import ImagePool


@dataclass
class CycleGANLoss(LossConfig, TemporalRegularised):
    """CycleGAN objective: adversarial both ways + ``cycle_weight`` x L1 cycle reconstruction
    (each direction) + identity terms weighted ``identity_weight`` x ``cycle_weight`` (0
    disables). ``pool_size``: history of generated images per direction shown to the
    discriminators (0 disables). ``mask_conservation`` (as joliGEN): this weight x the L1 between
    each generator's input and output outside its mask (``trainA_mask/``, ``trainB_mask/``), so
    only the masked region changes; needs the masks. ``temporal_reg`` (both generators):
    :class:`~i2i.config.TemporalRegularised`."""

    cycle_weight: LossWeight = 10.0
    identity_weight: LossWeight = 0.5
    pool_size: Annotated[int, Range(0, 10**5)] = 50
    mask_conservation: LossWeight = 0.0


class CycleGAN(Pipeline):
    """Two generators and two discriminators trained with cycle consistency."""

    name = "cyclegan"
    kind = "translation"
    net_names = ("G_ab", "G_ba", "D_a", "D_b")
    directions = {"a_to_b": "G_ab", "b_to_a": "G_ba"}
    evaluation = "paired"  # where a known answer exists (testA/ + testB/ as pairs)
    DataConfig = UnpairedDataConfig
    LossConfig = CycleGANLoss
    default_nets = {"generator": "resnet_9blocks", "discriminator": "basic"}
    derived_options = {"discriminator": ("in_channels",)}
    example = {
        "model": {"generator": {"name": "resnet", "n_blocks": 1, "base_channels": 4, "norm": "instance"},
                  "discriminator": {"name": "patch", "n_layers": 1, "base_channels": 4, "norm": "instance"}},
        "data": {"load_size": 36, "crop_size": 32, "batch_size": 2},
        "loss": {"pool_size": 4},
    }

    @classmethod
    def validate_config(cls, cfg: Config) -> None:
        super().validate_config(cfg)
        g, loss = cfg.model.generator, cfg.loss
        if loss.identity_weight > 0 and g.arg("in_channels") != g.arg("out_channels"):
            raise ConfigError(
                f"loss.identity_weight={loss.identity_weight} needs domains with equal channel counts, but "
                f"model.generator.in_channels={g.arg('in_channels')} (A) and out_channels={g.arg('out_channels')} (B); "
                "set loss.identity_weight: 0"
            )

    def __init__(self, cfg: Config) -> None:
        loss = cfg.loss
        super().__init__(cfg)
        self.gan = self.adversarial_loss(loss)
        self.pools = {"a": ImagePool(loss.pool_size, seed=cfg.seed * 2 + 1),
                      "b": ImagePool(loss.pool_size, seed=cfg.seed * 2 + 2)}
        # Horizontal batching: one call per net where the net treats samples independently.
        on = cfg.train.horizontal_batching
        self.batched = {name: on and samples_independent(net) for name, net in self.nets.items()}
        if loss.identity_weight == 0:  # each generator then has one input per call: nothing to batch
            self.batched.update(G_ab=False, G_ba=False)

    @classmethod
    def build_net(cls, cfg: Config, name: str) -> nn.Module:
        g = cfg.model.generator
        a_ch, b_ch = g.arg("in_channels"), g.arg("out_channels")
        if name == "G_ab":
            return net_from_spec(g)
        if name == "G_ba":
            return net_from_spec(g, in_channels=b_ch, out_channels=a_ch)
        if name in ("D_a", "D_b"):
            return net_from_spec(cfg.model.discriminator, in_channels=a_ch if name == "D_a" else b_ch)
        raise KeyError(f"cyclegan has no net {name!r}; it has {', '.join(cls.net_names)}")

    @classmethod
    def make_dataset(cls, cfg: Config, *, train: bool, root: str | None = None) -> UnpairedDataset:
        return UnpairedDataset.for_config(cfg, train=train, root=root)

    def param_groups(self) -> dict[str, dict[str, Any]]:
        return {"G": self.generator_group("G_ab", "G_ba"), "D": self.discriminator_group("D_a", "D_b")}

    def host_draws(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        # The pools' choices for this step's fakes (one per image of each domain).
        return {"pool_a": self.pools["a"].draw(batch["b"].shape[0]),
                "pool_b": self.pools["b"].draw(batch["a"].shape[0])}

    def train_step(self, batch: dict[str, Any], ctx: StepContext) -> dict[str, torch.Tensor]:
        real_a, real_b = batch["a"], batch["b"]
        loss = self.cfg.loss
        G_ab, G_ba = ctx.module("G_ab"), ctx.module("G_ba")
        # A generator fed an image of its target domain should leave it alone (the identity
        # term): this keeps colours from drifting (the paper's photo <-> painting setting).
        identity = loss.identity_weight > 0
        together = identity and self.batched["G_ab"] and self.batched["G_ba"] and real_a.shape == real_b.shape
        with ctx.autocast():
            if together:  # each generator once on [its source, its target]: translation and identity image
                fake_b, same_b = G_ab(torch.cat([real_a, real_b])).chunk(2)
                fake_a, same_a = G_ba(torch.cat([real_b, real_a])).chunk(2)
            else:
                fake_b, fake_a = G_ab(real_a), G_ba(real_b)
            rec_a, rec_b = G_ba(fake_b), G_ab(fake_a)

        # G step: both discriminators frozen (their parameters get no gradient from it).
        with ctx.frozen("D_a", "D_b") as (D_a, D_b), ctx.autocast():
            adv_ab = self.gan.generator_loss(D_b, fake_b, real=real_b)
            adv_ba = self.gan.generator_loss(D_a, fake_a, real=real_a)
            idt_a = idt_b = torch.zeros((), device=real_a.device)
            if identity and not together:
                same_b, same_a = G_ab(real_b), G_ba(real_a)
            if identity:
                idt_b = F.l1_loss(same_b.float(), real_b.float())
                idt_a = F.l1_loss(same_a.float(), real_a.float())
        cyc_a = F.l1_loss(rec_a.float(), real_a.float())
        cyc_b = F.l1_loss(rec_b.float(), real_b.float())
        w, wi = loss.cycle_weight, loss.cycle_weight * loss.identity_weight
        keep = self._conservation(batch, fake_b, real_a, fake_a, real_b)
        motion = self.motion_loss(ctx, (G_ab, real_a, fake_b), (G_ba, real_b, fake_a))
        ctx.backward_step("G", adv_ab + adv_ba + w * (cyc_a + cyc_b) + wi * (idt_a + idt_b)
                          + loss.mask_conservation * keep + (0 if motion is None else loss.temporal_reg * motion))

        # D step on pooled history; fakes are detached, so nothing reaches the generators.
        pooled_a = self.pools["a"].apply(fake_a.detach(), batch["pool_a"])
        pooled_b = self.pools["b"].apply(fake_b.detach(), batch["pool_b"])
        D_a, D_b = ctx.module("D_a"), ctx.module("D_b")
        logs: dict[str, torch.Tensor] = {}
        loss_d = torch.zeros((), device=real_a.device)
        for name, D, real, fake in (("D_a", D_a, real_a, pooled_a), ("D_b", D_b, real_b, pooled_b)):
            with ctx.autocast():
                d_loss, parts = self.gan.discriminator_loss(D, real, fake, scale=0.5, batched=self.batched[name])
            for extra in ("gp", "r1"):
                if extra in parts:
                    logs[f"{name}_{extra}"] = parts[extra]
            logs[name] = d_loss.detach()
            loss_d = loss_d + d_loss
        ctx.backward_step("D", loss_d)
        logs.update(
            G_ab=adv_ab.detach(), G_ba=adv_ba.detach(), cycle_a=cyc_a.detach(), cycle_b=cyc_b.detach(),
            idt_a=idt_a.detach(), idt_b=idt_b.detach(),
        )
        if loss.mask_conservation > 0:
            logs["conserve"] = keep.detach()
        if motion is not None:
            logs["motion"] = motion.detach()
        # How much each generator changes its input (mean absolute difference on [0, 1]; not a
        # loss): training health's "copies its input" verdict for unpaired data reads it.
        for key, fake, real in (("change_ab", fake_b, real_a), ("change_ba", fake_a, real_b)):
            if fake.shape == real.shape:
                logs[key] = (fake.detach().float() - real.float()).abs().mean() / 2
        return logs

    def _conservation(self, batch: dict[str, Any], fake_b: torch.Tensor, real_a: torch.Tensor, fake_a: torch.Tensor,
                      real_b: torch.Tensor) -> torch.Tensor:
        """Mean L1 between each generator's input and output where its mask is 0 (both directions)."""
        total = torch.zeros((), device=real_a.device)
        if self.cfg.loss.mask_conservation <= 0:
            return total
        for key, fake, real in (("mask_a", fake_b, real_a), ("mask_b", fake_a, real_b)):
            if key in batch and fake.shape == real.shape:
                total = total + outside_change(fake, real, batch[key])
        return total

    def generator_inputs(self, name: str, batch: dict[str, Any], rng: torch.Generator) -> tuple[Any, ...]:
        return (batch["a"] if name == "G_ab" else batch["b"],)

    @torch.no_grad()
    def sample(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        G_ab, G_ba = self.nets["G_ab"], self.nets["G_ba"]
        with inference_state(G_ab, G_ba, mode=self.cfg.test.mode):
            real_a, real_b = batch["a"], batch["b"]
            fake_b, fake_a = G_ab(real_a), G_ba(real_b)
            return {"real_a": real_a, "fake_b": fake_b, "rec_a": G_ba(fake_b), "real_b": real_b, "fake_a": fake_a,
                    "rec_b": G_ab(fake_a)}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "pools": {k: p.state_dict() for k, p in self.pools.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        for k, p in self.pools.items():
            p.load_state_dict(state["pools"][k])

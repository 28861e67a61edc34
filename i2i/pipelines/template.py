"""The file a new method copies: a complete, working pipeline with every declaration explained.

What it trains: paired translation with an *unconditional* discriminator (D judges outputs
alone, not input/output pairs) and an L1 term, the smallest adversarial method that exercises
every hook. It is not registered; ``tests/test_registry.py`` registers it and runs the registry
contract on it (``tests/contract.py``: one step, exact resume, validation, every command), which is
what a new method gets.

To add a method: copy this file to ``i2i/pipelines/<name>.py``, rename the class and ``name``,
change the declarations and :meth:`train_step`, add ``configs/<name>/*.yaml`` and one line in
:data:`i2i.recipes.PIPELINES`. Never import another pipeline; build nets with
:func:`~.base.net_from_spec`; touch no files, devices or optimizers (the trainer does, through
the :class:`~.base.StepContext`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config import Config, LossConfig
from ..data.paired import PairedDataConfig, PairedDataset
from ..nets.blocks import inference_state
from ..options import LossWeight
from .base import Pipeline, StepContext, net_from_spec


@dataclass
class TemplateLoss(LossConfig):
    """The ``loss`` section: the shared ``gan_mode`` / ``gp_weight`` / ``r1_weight`` plus this
    method's terms. Numeric fields declare their range in the annotation (``LossWeight``)."""

    l1_weight: LossWeight = 100.0


class Template(Pipeline):
    """Nets: ``G`` (input -> output) and ``D`` (judges output images alone)."""

    name = "template"
    kind = "translation"  # or "generation" (then sampled_net instead of directions)
    net_names = ("G", "D")  # every net this pipeline trains (checkpoint keys)
    directions = {"a_to_b": "G"}  # what convert / Translator run
    evaluation = "paired"  # a name in i2i.evaluate.EVALUATIONS (metrics, validation, results page)
    DataConfig = PairedDataConfig  # reuse a data section, or declare a subclass beside its dataset
    LossConfig = TemplateLoss
    default_nets = {"generator": "unet_256", "discriminator": "basic"}  # when the config names none
    derived_options = {"discriminator": ("in_channels",)}  # options the pipeline sets (refused in configs)
    example = {  # the smallest config that trains every net: the registry tests train it
        "model": {"generator": {"name": "unet", "num_downs": 5, "base_channels": 4},
                  "discriminator": {"name": "patch", "n_layers": 2, "base_channels": 4}},
        "data": {"load_size": 36, "crop_size": 32, "batch_size": 2},
    }

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg)  # builds self.nets from build_net, in net_names order
        self.gan = self.adversarial_loss(cfg.loss)

    @classmethod
    def build_net(cls, cfg: Config, name: str) -> nn.Module:
        """Class-level, so inference can build the generator alone."""
        g = cfg.model.generator
        if name == "G":
            return net_from_spec(g)
        if name == "D":
            return net_from_spec(cfg.model.discriminator, in_channels=g.arg("out_channels"))
        raise KeyError(f"{cls.name} has no net {name!r}; it has {', '.join(cls.net_names)}")

    @classmethod
    def make_dataset(cls, cfg: Config, *, train: bool, root: str | None = None) -> PairedDataset:
        """Items are dicts of ``(C, H, W)`` tensors in [-1, 1]; augmentation draws come from
        ``(seed, epoch, index)`` so resume is exact."""
        d, g = cfg.data, cfg.model.generator
        # the dataset takes its config section; data.max_items applies in training only (validation reads its
        # folder whole)
        return PairedDataset(root or d.root, d, in_channels=g.arg("in_channels"), out_channels=g.arg("out_channels"),
                             train=train,
                             seed=cfg.seed)

    def param_groups(self) -> dict[str, dict[str, Any]]:
        """One optimizer per side; the generator side steps every ``optim.n_critic``-th iteration."""
        return {"G": self.generator_group("G"), "D": self.discriminator_group("D")}

    def train_step(self, batch: dict[str, Any], ctx: StepContext) -> dict[str, torch.Tensor]:
        """One iteration: D step, then G step with D frozen. Returns detached scalar losses."""
        real_a, real_b = batch["input"], batch["target"]
        with ctx.autocast():
            fake_b = ctx.module("G")(real_a)
            # The D objective of the step (penalties included); it detaches the fake itself.
            loss_d, parts = self.gan.discriminator_loss(ctx.module("D"), real_b, fake_b)
        ctx.backward_step("D", loss_d)
        with ctx.frozen("D") as (D,), ctx.autocast():
            loss_g_gan = self.gan.generator_loss(D, fake_b, real=real_b)
        loss_l1 = F.l1_loss(fake_b.float(), real_b.float())
        ctx.backward_step("G", loss_g_gan + self.cfg.loss.l1_weight * loss_l1)
        return {**{f"D_{k}": v for k, v in parts.items()}, "G_gan": loss_g_gan.detach(), "G_L1": loss_l1.detach()}

    def generator_inputs(self, name: str, batch: dict[str, Any], rng: torch.Generator) -> tuple[Any, ...]:
        """What generator ``name`` is fed in :meth:`train_step` (batch-norm recalibration uses it)."""
        return (batch["input"],)

    @torch.no_grad()
    def sample(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Columns of the sample grid, in order."""
        with inference_state(self.nets["G"], mode=self.cfg.test.mode):
            out = self.nets["G"](batch["input"])
        return {"input": batch["input"], "output": out, "target": batch["target"]}

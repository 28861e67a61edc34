"""CUT and FastCUT (Park, Efros, Zhang, Zhu, ECCV 2020): one-sided unpaired translation with a
contrastive loss between input and output patches.

Nets: ``G`` (A -> B; the authors' anti-aliased ResNet: ``antialias``/``antialias_up`` in the
recipes), ``D`` (judges B images; anti-aliased PatchGAN) and ``F``
(:class:`~i2i.nets.patch_sampler.PatchSampler`: one two-layer MLP head per encoder layer of G). Per
iteration, as the authors' ``CUTModel.optimize_parameters``: G runs on A (CUT: on A and B together,
B giving the identity image), D steps on real B against ``G(A)``, then G and F step on
``gan_weight`` x the adversarial loss + PatchNCE: the features of ``G(A)`` at layers
``nce_layers`` of G's ``model`` (0, 4, 8, 12, 16: input padding, both downsampling convolutions,
residual blocks 1 and 5) must identify the features of A at the same ``num_patches`` positions
among the other positions of the same image (:func:`~i2i.losses.patch_nce`), weighted
``nce_weight`` and averaged over layers. CUT (``nce_idt``) averages that with the same loss between
B and ``G(B)``. FastCUT (``flip_equivariance``) feeds G a horizontally flipped batch half of the time
and flips the output's features back.

The random decisions (the flip, the patch positions of each layer) are drawn on the host from the
pipeline's own generator (:meth:`CUT.host_draws`), in the authors' order: the flip, then the
positions of the A -> B term, then those of the identity term. The parity tool
(``tools/cut_parity.py``) feeds the authors' recorded draws through the same keys.

Deviation, documented: in the authors' decay epochs the data loader resizes to ``crop_size`` instead
of ``load_size`` (whole images, no crop); i2i keeps the configured ``load_size`` throughout (set
``data.load_size`` equal to ``data.crop_size`` to train that way from the start).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import torch
from torch import nn

from ..config import Config, ConfigError, LossConfig
from ..data.unpaired import UnpairedDataConfig, UnpairedDataset
from ..losses import full, outside_change, patch_nce
from ..nets.blocks import inference_state, init_weights
from ..nets.patch_sampler import PatchSampler
from ..nets.registry import resolve_arch_name
from ..options import GANMode, LossWeight, Range
from .base import Pipeline, StepContext, net_from_spec


@dataclass
class CUTLoss(LossConfig):
    """CUT's objective (the authors' option names in brackets): ``gan_weight`` [lambda_GAN] x the
    adversarial loss + ``nce_weight`` [lambda_NCE] x PatchNCE on G's ``nce_layers`` with
    ``num_patches`` positions per layer, temperature ``nce_temperature`` [nce_T], heads of
    ``mlp_channels`` [netF_nc]; ``nce_idt``: PatchNCE also between B and G(B), averaged with the
    A -> B term (CUT: on; FastCUT: off); ``flip_equivariance`` (FastCUT); ``nce_batch_negatives``
    [nce_includes_all_negatives_from_minibatch]: negatives from every image of the batch, not only
    the query's own (the authors use it for single-image translation). ``mask_conservation`` (as
    CycleGAN's): this weight x the L1 between G's input and output outside each A image's mask
    (``trainA_mask/``), so only the masked region changes; needs the masks."""

    gan_mode: GANMode = "lsgan"  # the authors' default
    gan_weight: LossWeight = 1.0
    nce_weight: LossWeight = 1.0
    nce_idt: bool = True
    nce_layers: tuple[Annotated[int, Range(0, 1000)], ...] = (0, 4, 8, 12, 16)
    num_patches: Annotated[int, Range(1, 1 << 20)] = 256
    nce_temperature: Annotated[float, Range(0.0, 100.0, low_open=True)] = 0.07
    mlp_channels: Annotated[int, Range(1, 4096)] = 256
    flip_equivariance: bool = False
    nce_batch_negatives: bool = False
    mask_conservation: LossWeight = 0.0

    def problems(self) -> list[str]:
        out = super().problems()
        layers = list(self.nce_layers)
        if not layers:
            out.append("loss.nce_layers is empty; name at least one layer of the generator (the paper: "
                       "[0, 4, 8, 12, 16])")
        elif layers != sorted(set(layers)):
            out.append(f"loss.nce_layers {layers} must be increasing, without repeats")
        return out


class CUT(Pipeline):
    """Contrastive unpaired translation: ``G`` (A -> B), ``D`` (B), ``F`` (PatchNCE's heads)."""

    name = "cut"
    kind = "translation"
    net_names = ("G", "F", "D")
    directions = {"a_to_b": "G"}
    evaluation = "paired"  # where a known answer exists (testA/ + testB/ as pairs)
    DataConfig = UnpairedDataConfig
    LossConfig = CUTLoss
    default_nets = {"generator": "resnet_9blocks", "discriminator": "basic"}
    derived_options = {"discriminator": ("in_channels",)}
    example = {
        "model": {"generator": {"name": "resnet", "n_blocks": 1, "base_channels": 4, "norm": "instance",
                                "antialias": True, "antialias_up": True},
                  "discriminator": {"name": "patch", "n_layers": 1, "base_channels": 4, "norm": "instance",
                                    "antialias": True}},
        "data": {"load_size": 36, "crop_size": 32, "batch_size": 2},
        "loss": {"nce_layers": [0, 4, 8, 12], "num_patches": 16, "mlp_channels": 8},
    }

    @classmethod
    def nets_for(cls, cfg: Config) -> tuple[str, ...]:
        # Without PatchNCE there is nothing for F to do (the authors never build its heads then).
        return cls.net_names if cfg.loss.nce_weight > 0 else ("G", "D")

    @classmethod
    def validate_config(cls, cfg: Config) -> None:
        super().validate_config(cfg)
        g, loss = cfg.model.generator, cfg.loss
        if resolve_arch_name("generator", g.name) != "resnet":
            raise ConfigError(f"model.generator is {g.name!r}; CUT reads the encoder features of a ResNet generator "
                              "(resnet_9blocks, resnet_6blocks or resnet)")
        if loss.nce_idt and g.arg("in_channels") != g.arg("out_channels"):
            raise ConfigError(f"loss.nce_idt needs domains with equal channel counts (G is also fed B images), but "
                              f"model.generator.in_channels={g.arg('in_channels')} and "
                              f"out_channels={g.arg('out_channels')}; set loss.nce_idt: false")
        with torch.device("meta"):
            n = len(net_from_spec(g).model)
        if loss.nce_layers and max(loss.nce_layers) >= n:
            raise ConfigError(f"loss.nce_layers names layer {max(loss.nce_layers)}, but this generator has layers "
                              f"0-{n - 1}")

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg)
        self.gan = self.adversarial_loss(cfg.loss)
        self.rng = torch.Generator().manual_seed(cfg.seed * 2 + 1)
        self._sizes: dict[tuple[int, int], list[int]] = {}

    @classmethod
    def feature_shapes(cls, cfg: Config, height: int, width: int) -> list[tuple[int, int, int]]:
        """``(C, H, W)`` of G's features at ``loss.nce_layers`` for a ``height`` x ``width`` input
        (computed on the meta device: no memory, no weights)."""
        g = cfg.model.generator
        with torch.device("meta"):
            G = net_from_spec(g)
            feats = G(torch.empty(1, g.arg("in_channels"), height, width), tuple(cfg.loss.nce_layers))
        return [tuple(f.shape[1:]) for f in feats]

    @classmethod
    def build_net(cls, cfg: Config, name: str) -> nn.Module:
        g = cfg.model.generator
        if name == "G":
            return net_from_spec(g)
        if name == "D":
            return net_from_spec(cfg.model.discriminator, in_channels=g.arg("out_channels"))
        if name == "F":
            channels = [c for c, _, _ in cls.feature_shapes(cfg, 32, 32)]
            return init_weights(PatchSampler(channels, mlp_channels=cfg.loss.mlp_channels), g.init, g.init_gain)
        raise KeyError(f"cut has no net {name!r}; it has {', '.join(cls.net_names)}")

    @classmethod
    def make_dataset(cls, cfg: Config, *, train: bool, root: str | None = None) -> UnpairedDataset:
        return UnpairedDataset.for_config(cfg, train=train, root=root)

    def param_groups(self) -> dict[str, dict[str, Any]]:
        # The authors keep separate Adam optimizers for G and F with the same settings: the same updates.
        return {"G": self.generator_group(*[n for n in ("G", "F") if n in self.nets]),
                "D": self.discriminator_group("D")}

    def _positions(self, height: int, width: int) -> list[int]:
        if (height, width) not in self._sizes:
            self._sizes[height, width] = [h * w for _, h, w in self.feature_shapes(self.cfg, height, width)]
        return self._sizes[height, width]

    def host_draws(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """``flip`` (FastCUT: a 0-dim bool, true half of the time) and, per PatchNCE term (``nce``:
        A -> B; ``nce_y``: the identity term) and layer ``l``, ``ids_<term>_<l>``: the positions
        sampled from that layer (see :meth:`PatchSampler.draw_ids`)."""
        loss, out = self.cfg.loss, {}
        if loss.flip_equivariance:
            out["flip"] = torch.rand((), generator=self.rng) < 0.5
        if loss.nce_weight > 0:
            terms = [("nce", batch["a"])] + ([("nce_y", batch["b"])] if loss.nce_idt else [])
            for term, images in terms:
                sizes = self._positions(*images.shape[-2:])
                for layer, ids in enumerate(PatchSampler.draw_ids(sizes, loss.num_patches, self.rng)):
                    out[f"ids_{term}_{layer}"] = ids
        return out

    def train_step(self, batch: dict[str, Any], ctx: StepContext) -> dict[str, torch.Tensor]:
        real_a, real_b = batch["a"], batch["b"]
        loss = self.cfg.loss
        G = ctx.module("G")
        flip = batch.get("flip")
        real = torch.cat([real_a, real_b]) if loss.nce_idt else real_a
        with ctx.autocast():
            fake = G(_flip_where(flip, real))  # branch-free: the step never reads the flip on the host
        fake_b, idt_b = fake[: real_a.shape[0]], fake[real_a.shape[0]:]

        with ctx.autocast():
            loss_d, parts = self.gan.discriminator_loss(ctx.module("D"), real_b, fake_b, scale=0.5)
        ctx.backward_step("D", loss_d)

        logs: dict[str, torch.Tensor] = {f"D_{k}": v for k, v in parts.items()}  # real, fake (gp, r1)
        with ctx.frozen("D") as (D,), ctx.autocast():
            g_gan = self.gan.generator_loss(D, fake_b, real=real_b) * loss.gan_weight
        total = g_gan
        if loss.nce_weight > 0:
            F_ = ctx.module("F")
            nce = self.nce_loss(ctx, G, F_, (real_a, fake_b), batch, "nce")
            logs["NCE"] = nce.detach()
            if loss.nce_idt:
                nce_y = self.nce_loss(ctx, G, F_, (real_b, idt_b), batch, "nce_y")
                logs["NCE_Y"] = nce_y.detach()
                nce = (nce + nce_y) * 0.5
            total = total + nce
        if loss.mask_conservation > 0 and "mask_a" in batch:
            keep = outside_change(_flip_where(flip, fake_b), real_a, batch["mask_a"])
            logs["conserve"] = keep.detach()
            total = total + loss.mask_conservation * keep
        ctx.backward_step("G", total)
        logs["G_GAN"] = g_gan.detach()
        # How much G changes its input (mean absolute difference on [0, 1]; not a loss): training
        # health's "copies its input" verdict for unpaired data reads it.
        if fake_b.shape == real_a.shape:
            logs["change_ab"] = (_flip_where(flip, fake_b.detach()).float() - real_a.float()).abs().mean() / 2
        return logs

    def nce_loss(self, ctx: StepContext, G: nn.Module, F_: nn.Module, pair: tuple[torch.Tensor, torch.Tensor],
                 batch: dict[str, Any], term: str) -> torch.Tensor:
        """PatchNCE between ``pair = (src, tgt)``: the keys are G's features of the input ``src``, the
        queries G's features of its output ``tgt`` (flipped back where ``batch["flip"]`` flipped the
        input), over ``loss.nce_layers`` at the positions ``batch["ids_<term>_<l>"]``: ``nce_weight``
        x the mean over patches, averaged over layers (the authors' ``calculate_NCE_loss``)."""
        loss, (src, tgt) = self.cfg.loss, pair
        layers = tuple(loss.nce_layers)
        ids = [batch[f"ids_{term}_{i}"] for i in range(len(layers))]
        with ctx.autocast():
            queries = [_flip_where(batch.get("flip"), f) for f in G(tgt, layers)]
            with torch.no_grad():  # the keys are detached in the loss: no graph needed for them
                keys = F_(G(src, layers), ids)
            queries = F_(queries, ids)
        total = torch.zeros((), device=src.device)
        for q, k in zip(queries, keys, strict=True):
            per_patch = patch_nce(full(q), full(k), batch_size=src.shape[0], temperature=loss.nce_temperature,
                                  batch_negatives=loss.nce_batch_negatives)
            total = total + per_patch.mean() * loss.nce_weight
        return total / len(layers)

    def generator_inputs(self, name: str, batch: dict[str, Any], rng: torch.Generator) -> tuple[Any, ...]:
        return (batch["a"],)

    @torch.no_grad()
    def sample(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        G = self.nets["G"]
        with inference_state(G, mode=self.cfg.test.mode):
            out = {"real_a": batch["a"], "fake_b": G(batch["a"]), "real_b": batch["b"]}
            if self.cfg.loss.nce_idt:
                out["idt_b"] = G(batch["b"])
        return out

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "rng": self.rng.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.rng.set_state(state["rng"])


def _flip_where(flip: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    """``x`` mirrored left-right where the 0-dim bool ``flip`` is true (as-is without a flip)."""
    return x if flip is None else torch.where(flip, x.flip(3), x)

"""SRGAN (Ledig et al., CVPR 2017): super-resolution with pixel, perceptual and adversarial losses.

With ``loss.adversarial_weight: 0`` this trains SRResNet alone (pixel loss; no
discriminator is built). Otherwise each iteration is a D step (real HR vs ``G(LR)``
detached) followed by a G step with D frozen minimising
``pixel_weight x pixel + perceptual_weight x VGG + adversarial_weight x GAN``. The paper's
two phases are two configs: SRResNet with MSE, then SRGAN initialised from it
(``model.generator.init_from``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..config import Config, ConfigError, LossConfig, TemporalRegularised
from ..data.degradations import degrade, draw, usm_sharp
from ..data.resize import imresize
from ..data.sr import SRDataConfig, SRDataset
from ..losses import VGGPerceptualLoss, parse_vgg_layers
from ..nets.blocks import inference_state
from ..nets.registry import resolve_arch_name
from ..options import LossWeight, Range
from .base import Pipeline, StepContext, net_from_spec


@dataclass
class SRGANLoss(LossConfig, TemporalRegularised):
    """SRGAN objective: ``pixel_weight`` x ``pixel_loss`` + ``perceptual_weight`` x VGG19
    feature distance + ``adversarial_weight`` x GAN loss (0: plain SRResNet / RRDBNet training,
    no discriminator).

    The perceptual term (:class:`~i2i.losses.VGGPerceptualLoss`, weights from ``vgg_weights`` or
    torchvision's cache): ``perceptual_layer`` is one VGG19 layer or ``"name:weight,..."``;
    ``relu5_4`` with ``mse`` and ``perceptual_feature_scale`` 12.75 is SRGAN's VGG54, ``conv5_4``
    (before the activation) with ``l1`` and scale 1 is ESRGAN's, and
    ``conv1_2:0.1,conv2_2:0.1,conv3_4:1,conv4_4:1,conv5_4:1`` Real-ESRGAN's. ``gan_mode: ragan``
    is ESRGAN's relativistic average GAN. ``temporal_reg``: :class:`~i2i.config.TemporalRegularised`."""

    pixel_loss: Literal["mse", "l1"] = "mse"
    pixel_weight: LossWeight = 1.0
    perceptual_weight: LossWeight = 0.0
    perceptual_layer: str = "relu5_4"
    perceptual_criterion: Literal["mse", "l1"] = "mse"
    perceptual_feature_scale: Annotated[float, Range(1e-6, 1e6)] = 12.75
    vgg_weights: str | None = None
    adversarial_weight: LossWeight = 1e-3


class SRGAN(Pipeline):
    """Nets: ``G`` (SRResNet, LR -> HR) and, when adversarial, ``D`` (judges HR images)."""

    name = "srgan"
    kind = "translation"
    net_names = ("G", "D")
    directions = {"a_to_b": "G"}
    evaluation = "super_resolution"
    DataConfig = SRDataConfig
    renamed_options = {"data": {"rotate": "rotate90"}}
    LossConfig = SRGANLoss
    default_nets = {"generator": "srresnet", "discriminator": "srgan"}
    derived_options = {"discriminator": ("in_channels", "input_size")}
    example = {
        "model": {"generator": {"name": "srresnet", "scale": 2, "n_blocks": 1, "base_channels": 4},
                  "discriminator": {"name": "srgan", "base_channels": 4}},
        "data": {"crop_size": 16, "batch_size": 2},
        "loss": {"adversarial_weight": 0.001},
    }

    @classmethod
    def validate_config(cls, cfg: Config) -> None:
        super().validate_config(cfg)
        g, d, loss = cfg.model.generator, cfg.model.discriminator, cfg.loss
        scale = g.arg("scale")
        if cfg.data.crop_size % scale:
            raise ConfigError(f"data.crop_size={cfg.data.crop_size} must be a multiple of "
                              f"model.generator.scale={scale}")
        if g.arg("in_channels") != g.arg("out_channels"):
            raise ConfigError("SRGAN maps an image to a larger one of the same kind: model.generator.in_channels must "
                              "equal out_channels")
        if loss.adversarial_weight > 0 and d is not None and d.name == "srgan" and cfg.data.crop_size % 16:
            raise ConfigError("the srgan discriminator needs data.crop_size to be a multiple of 16, got "
                              f"{cfg.data.crop_size}")
        if loss.adversarial_weight > 0 and d is not None and d.name == "unet_sn" and cfg.data.crop_size % 8:
            raise ConfigError("the unet_sn discriminator needs data.crop_size to be a multiple of 8, got "
                              f"{cfg.data.crop_size}")
        if resolve_arch_name("generator", g.name) == "rrdbnet" and cfg.data.crop_size % 4:
            raise ConfigError("rrdbnet works at a quarter of the HR size inside: data.crop_size must be a multiple "
                              "of 4, "
                              f"got {cfg.data.crop_size}")
        if cfg.data.degradation == "realesrgan" and cfg.data.crop_size % (4 * scale):
            raise ConfigError(f"data.degradation: realesrgan needs data.crop_size to be a multiple of 4 x the scale "
                              f"({4 * scale}), got {cfg.data.crop_size}")
        if loss.perceptual_weight > 0:
            try:
                parse_vgg_layers(loss.perceptual_layer)
            except ValueError as e:
                raise ConfigError(f"loss.perceptual_layer: {e}") from None

    @classmethod
    def nets_for(cls, cfg: Config) -> tuple[str, ...]:
        return ("G", "D") if cfg.loss.adversarial_weight > 0 else ("G",)

    @classmethod
    def working_bytes(cls, cfg: Config, height: int, width: int) -> tuple[int, str]:
        """Real-ESRGAN's degradation resizes the crop by up to the largest resize factor in float32
        and keeps about four images of that size at once (the image, its blurred copy, the noise,
        the resized result)."""
        if cfg.data.degradation != "realesrgan":
            return 0, ""
        r = cfg.data.realesrgan
        grow = max(1.0, r.resize_range[1], r.resize_range2[1])
        channels = cfg.model.generator.arg("out_channels")
        side = math.ceil(height * grow) * math.ceil(width * grow)
        return 4 * 4 * channels * side, f"the degradation's images (up to data.realesrgan resize factor {grow:g})"

    @classmethod
    def generator_input_size(cls, cfg: Config, height: int, width: int) -> tuple[int, int]:
        if cfg.data.degradation == "realesrgan":  # training items are HR crops only; the generator gets them / scale
            return height // cls.scale_of(cfg), width // cls.scale_of(cfg)
        return height, width

    @classmethod
    def capture_blockers(cls, cfg: Config) -> list[str]:
        if cfg.data.degradation == "realesrgan":
            return ["data.degradation: realesrgan (its resize sizes change every step)"]
        return []

    def __init__(self, cfg: Config) -> None:
        loss = cfg.loss
        self.adversarial = loss.adversarial_weight > 0
        self.degradation = cfg.data.realesrgan if cfg.data.degradation == "realesrgan" else None
        super().__init__(cfg)
        self.gan = self.adversarial_loss(loss)
        self.perceptual = None
        if loss.perceptual_weight > 0:
            try:
                self.perceptual = VGGPerceptualLoss(loss.perceptual_layer, weights=loss.vgg_weights,
                                                    feature_scale=loss.perceptual_feature_scale,
                                                    criterion=loss.perceptual_criterion)
            except (FileNotFoundError, ValueError) as e:
                raise ConfigError(f"loss.perceptual_weight={loss.perceptual_weight}: {e}") from None
            self.loss_modules["vgg"] = self.perceptual

    @staticmethod
    def scale_of(cfg: Config) -> int:
        return cfg.model.generator.arg("scale")

    @classmethod
    def build_net(cls, cfg: Config, name: str) -> nn.Module:
        if name == "G":
            return net_from_spec(cfg.model.generator)
        if name == "D":
            return net_from_spec(cfg.model.discriminator, in_channels=cfg.model.generator.arg("out_channels"),
                                 input_size=cfg.data.crop_size)
        raise KeyError(f"srgan has no net {name!r}; it has G, D")

    @classmethod
    def make_dataset(cls, cfg: Config, *, train: bool, root: str | None = None) -> SRDataset:
        d = cfg.data if root is None else replace(cfg.data, lr_root=None)  # other folders (validation) have no LR twins
        return SRDataset(root or d.root, d, scale=cls.scale_of(cfg), channels=cfg.model.generator.arg("out_channels"),
                         train=train,
                         seed=cfg.seed, make_input=not (train and d.degradation == "realesrgan"))

    def param_groups(self) -> dict[str, dict[str, Any]]:
        groups = {"G": self.generator_group("G")}
        if self.adversarial:
            groups["D"] = self.discriminator_group("D")
        return groups

    def host_draws(self, batch: dict[str, Any]) -> dict[str, Any]:
        # Real-ESRGAN's degradation parameters, from the host's global generator (saved in checkpoints)
        if self.degradation is None:
            return {}
        return {"degrade": draw(self.degradation, batch["target"].shape[0])}

    def _degraded(self, hr: torch.Tensor, draws: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(LR input, sharpened HR)`` in [-1, 1] of HR crops (Real-ESRGAN: both from the
        unsharp-masked target when ``target_usm``)."""
        assert self.degradation is not None
        with torch.no_grad():
            hr01 = (hr.float() + 1) / 2
            if self.degradation.target_usm:
                hr01 = usm_sharp(hr01)
            lr01 = degrade(hr01, draws, self.scale_of(self.cfg))
        return (lr01 * 2 - 1).to(hr.dtype), (hr01 * 2 - 1).to(hr.dtype)

    def train_step(self, batch: dict[str, Any], ctx: StepContext) -> dict[str, torch.Tensor]:
        hr = gan_real = batch["target"]
        if self.degradation is not None:  # the GAN judges the plain target, L1 and VGG the sharpened one (Real-ESRGAN)
            lr, hr = self._degraded(hr, batch["degrade"])
        else:
            lr = batch["input"]
        loss = self.cfg.loss
        with ctx.autocast():
            sr = ctx.module("G")(lr)
        logs: dict[str, torch.Tensor] = {}
        if self.adversarial:
            with ctx.autocast():
                loss_d, parts = self.gan.discriminator_loss(ctx.module("D"), gan_real, sr)
            ctx.backward_step("D", loss_d)
            logs.update({f"D_{k}": v for k, v in parts.items()})

        pixel = (F.mse_loss if loss.pixel_loss == "mse" else F.l1_loss)(sr.float(), hr.float())
        total = loss.pixel_weight * pixel
        logs["G_pixel"] = pixel.detach()
        if self.perceptual is not None:
            with ctx.autocast():
                perc = self.perceptual(sr, hr)
            total = total + loss.perceptual_weight * perc
            logs["G_vgg"] = perc.detach()
        if self.adversarial:
            with ctx.frozen("D") as (D_frozen,), ctx.autocast():
                adv = self.gan.generator_loss(D_frozen, sr, real=gan_real)
            total = total + loss.adversarial_weight * adv
            logs["G_adv"] = adv.detach()
        if (motion := self.motion_loss(ctx, (ctx.module("G"), lr, sr))) is not None:
            total = total + loss.temporal_reg * motion
            logs["motion"] = motion.detach()
        ctx.backward_step("G", total)
        return logs

    def generator_inputs(self, name: str, batch: dict[str, Any], rng: torch.Generator) -> tuple[Any, ...]:
        if self.degradation is not None:
            return (self._degraded(batch["target"], draw(self.degradation, batch["target"].shape[0], rng))[0],)
        return (batch["input"],)

    @torch.no_grad()
    def sample(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        with inference_state(self.nets["G"], mode=self.cfg.test.mode):
            sr = self.nets["G"](batch["input"]).clamp(-1, 1)
        bicubic = imresize(batch["input"], float(self.scale_of(self.cfg))).clamp(-1, 1)
        return {"bicubic": bicubic, "output": sr, "target": batch["target"]}

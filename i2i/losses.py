"""GAN losses on discriminator logits, and the WGAN-GP gradient penalty.

All losses take raw logits and compute in float32, so they are safe under autocast.

=========  ======================================  ==============================
mode       discriminator loss                      generator loss
=========  ======================================  ==============================
vanilla    BCE(real, 1) + BCE(fake, 0)             BCE(fake, 1) (non-saturating)
lsgan      MSE(real, 1) + MSE(fake, 0)             MSE(fake, 1)
hinge      relu(1 - real) + relu(1 + fake)         -fake
wgangp     fake - real (+ gradient penalty)        -fake
=========  ======================================  ==============================
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from .augment import DiscriminatorAugment, parse_policy
from .checkpoint import load_state_file
from .hints import first_line
from .options import GANMode, choices

GAN_MODES = choices(GANMode)


class GANLoss:
    """Adversarial loss for one ``mode``; see the module table.

    ``d_loss(real_logits, fake_logits)`` and ``g_loss(fake_logits)`` return scalar
    float32 tensors; logits are any shape (PatchGAN maps are averaged). ``r1_weight``
    (gamma) adds the R1 penalty on real data to :meth:`discriminator_loss` in any mode;
    ``gp_weight`` weights the WGAN-GP gradient penalty (``wgangp`` mode only). ``augment``:
    what D's inputs pass through, real and fake alike, in :meth:`discriminator_loss` and
    :meth:`generator_loss` (:class:`~i2i.augment.DiscriminatorAugment`; None: nothing).
    """

    def __init__(self, mode: str = "vanilla", *, r1_weight: float = 0.0, gp_weight: float = 10.0,
                 augment: DiscriminatorAugment | None = None) -> None:
        if mode not in GAN_MODES:
            raise ValueError(f"gan_mode={mode!r} is not supported; choose one of {', '.join(GAN_MODES)}")
        if r1_weight < 0 or gp_weight < 0:
            raise ValueError(f"r1_weight={r1_weight} and gp_weight={gp_weight} must be >= 0")
        self.mode = mode
        self.r1_weight = r1_weight
        self.gp_weight = gp_weight
        self.augment = augment

    @classmethod
    def from_config(cls, loss: Any) -> GANLoss:
        """The adversarial loss a ``loss`` config section asks for (its ``gan_mode``,
        ``r1_weight``, ``gp_weight`` and the ``augment_*`` / ``ada_*`` keys: every pipeline's
        :class:`~i2i.config.LossConfig` has them)."""
        policy = parse_policy(loss.augment_policy)
        augment = None
        if policy:
            adaptive = loss.ada_target is not None
            augment = DiscriminatorAugment(policy, p=0.0 if adaptive else loss.augment_p, ada_target=loss.ada_target,
                                           ada_kimg=loss.ada_kimg, threshold=0.5 if loss.gan_mode == "lsgan" else 0.0)
        return cls(loss.gan_mode, r1_weight=loss.r1_weight, gp_weight=loss.gp_weight, augment=augment)

    def judge(self, critic: Callable[[torch.Tensor], torch.Tensor],
              condition: torch.Tensor | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
        """``critic`` as the losses call it: on ``[condition, x]`` (channels concatenated, for a
        conditional D; the condition repeated when ``x`` holds several batches), through
        :attr:`augment` (one draw for the whole pair)."""
        if condition is None and self.augment is None:
            return critic
        augment = self.augment

        def judged(x: torch.Tensor) -> torch.Tensor:
            groups = None
            if condition is not None:
                c = condition if condition.shape[0] == x.shape[0] else condition.repeat(x.shape[0] // condition.shape[0], 1, 1, 1)
                x, groups = torch.cat([c, x], 1), (c.shape[1], x.shape[1])
            return critic(augment(x, groups) if augment is not None else x)

        return judged

    def _target(self, logits: torch.Tensor, real: bool) -> torch.Tensor:
        x = logits.float()
        t = torch.ones_like(x) if real else torch.zeros_like(x)
        if self.mode == "vanilla":
            return F.binary_cross_entropy_with_logits(x, t)
        return F.mse_loss(x, t)

    def real_loss(self, logits: torch.Tensor) -> torch.Tensor:
        """Discriminator's loss term for logits of real images."""
        if self.mode in ("vanilla", "lsgan"):
            return self._target(logits, True)
        if self.mode == "hinge":
            return F.relu(1.0 - logits.float()).mean()
        return -logits.float().mean()

    def fake_loss(self, logits: torch.Tensor) -> torch.Tensor:
        """Discriminator's loss term for logits of generated images."""
        if self.mode in ("vanilla", "lsgan"):
            return self._target(logits, False)
        if self.mode == "hinge":
            return F.relu(1.0 + logits.float()).mean()
        return logits.float().mean()

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """Discriminator loss: real term + fake term (no gradient penalty; see below)."""
        return self.real_loss(real_logits) + self.fake_loss(fake_logits)

    def discriminator_loss(
        self,
        critic: Callable[[torch.Tensor], torch.Tensor],
        real: torch.Tensor,
        fake: torch.Tensor,
        *,
        scale: float = 1.0,
        batched: bool = False,
        condition: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The whole D objective of one step: ``scale * (real term + fake term)``, plus the
        gradient penalty (weighted ``gp_weight``) in ``wgangp`` mode. ``critic`` maps ``(N, C, H, W)`` images to logits
        (a conditional one is a closure holding its condition); ``fake`` is detached here, so
        this loss never reaches the generator. ``critic`` is called on ``real`` first.
        With ``r1_weight`` the R1 penalty of the same real logits is added (:func:`r1_penalty`).
        ``batched``: judge real and fake images in one call of ``critic`` on both, concatenated
        (equal within float rounding for a critic that treats samples independently, see
        :func:`i2i.nets.blocks.samples_independent`; images of different shapes keep two calls).
        ``condition``: a conditional D's input image, concatenated before each image it judges;
        with :attr:`augment`, every image D sees is augmented first (see :meth:`judge`) and the
        real logits feed its adaptive probability.
        Returns the loss and its detached parts ``{"real", "fake"[, "gp"][, "r1"]}``."""
        critic = self.judge(critic, condition)
        if self.r1_weight:
            real = real.detach().requires_grad_(True)
        if batched and real.shape[1:] == fake.shape[1:]:
            real_logits, fake_logits = critic(torch.cat([real, fake.detach()])).split([real.shape[0], fake.shape[0]])
        else:
            real_logits = critic(real)
            fake_logits = critic(fake.detach())
        if self.augment is not None:
            self.augment.observe(real_logits)
        real_term = self.real_loss(real_logits)
        fake_term = self.fake_loss(fake_logits)
        loss = scale * (real_term + fake_term)
        parts = {"real": real_term.detach(), "fake": fake_term.detach()}
        if self.r1_weight:
            r1 = r1_penalty(real_logits, real, self.r1_weight)
            loss = loss + r1
            parts["r1"] = r1.detach()
        if self.mode == "wgangp":
            gp = gradient_penalty(critic, real, fake, self.gp_weight)
            loss = loss + gp
            parts["gp"] = gp.detach()
        return loss, parts

    def generator_loss(self, critic: Callable[[torch.Tensor], torch.Tensor], fake: torch.Tensor, *,
                       condition: torch.Tensor | None = None) -> torch.Tensor:
        """The generator's adversarial loss for its images ``fake`` as ``critic`` judges them
        (after ``condition`` and :attr:`augment`, as in :meth:`discriminator_loss`)."""
        return self.g_loss(self.judge(critic, condition)(fake))

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        """Generator loss for logits of its own images (non-saturating for vanilla)."""
        if self.mode in ("vanilla", "lsgan"):
            return self._target(fake_logits, True)
        return -fake_logits.float().mean()


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    weight: float = 10.0,
) -> torch.Tensor:
    """WGAN-GP penalty ``weight * E[(||grad critic(x_hat)||_2 - 1)^2]`` (Gulrajani et al. 2017).

    ``x_hat`` mixes ``real`` and ``fake`` (both ``(N, C, H, W)``) with one uniform weight
    per sample. ``critic`` maps images to logits; a conditional critic is passed as a
    closure that concatenates its condition. The penalty is differentiable with respect
    to the critic's parameters (``create_graph=True``), so adding it to the D loss trains it.
    """
    alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    out = critic(x_hat)
    (grad,) = torch.autograd.grad(out.float().sum(), x_hat, create_graph=True)
    norms = grad.flatten(1).float().norm(2, dim=1)
    return weight * ((norms - 1.0) ** 2).mean()


def r1_penalty(real_logits: torch.Tensor, real: torch.Tensor, weight: float) -> torch.Tensor:
    """R1 penalty ``weight / 2 * E[||grad_x D(x)||^2]`` on real images (Mescheder et al. 2018,
    "Which Training Methods for GANs do actually Converge?"): it pulls the discriminator's
    gradient on the data to zero, so it cannot push real samples around, which damps the
    oscillations of unregularised GANs. ``real`` must have ``requires_grad`` and
    ``real_logits`` (any shape; patch logits are summed per image) must come from it. The
    penalty is differentiable with respect to the discriminator (``create_graph=True``)."""
    (grad,) = torch.autograd.grad(real_logits.float().sum(), real, create_graph=True)
    return 0.5 * weight * grad.float().pow(2).flatten(1).sum(1).mean()


# torchvision's VGG19 feature indices of the ReLU after each conv ("relu{block}_{conv}").
VGG19_RELU = {
    "relu1_1": 1, "relu1_2": 3, "relu2_1": 6, "relu2_2": 8, "relu3_1": 11, "relu3_2": 13, "relu3_3": 15, "relu3_4": 17,
    "relu4_1": 20, "relu4_2": 22, "relu4_3": 24, "relu4_4": 26, "relu5_1": 29, "relu5_2": 31, "relu5_3": 33, "relu5_4": 35,
}
VGG19_FILE = "vgg19-dcbb9e9d.pth"  # torchvision's name for VGG19_Weights.IMAGENET1K_V1
VGG19_URL = "https://download.pytorch.org/models/" + VGG19_FILE


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@functools.lru_cache(maxsize=16)
def _imagenet_stats(device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """The ImageNet mean and std as ``(1, 3, 1, 1)`` tensors on ``device``, made once per device
    and dtype (a tensor built from a list on CUDA is a synchronising copy, every call)."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=dtype, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=dtype, device=device).view(1, 3, 1, 1)
    return mean, std


def imagenet_normalize(x: torch.Tensor) -> torch.Tensor:
    """``(N, 3, H, W)`` in [-1, 1] -> ImageNet-normalised input for torchvision's classifiers."""
    mean, std = _imagenet_stats(x.device, x.dtype)
    return ((x + 1) / 2 - mean) / std


def torchvision_cached_weights(file: str, *, needed_for: str, otherwise: str, url: str | None = None) -> str:
    """Path of the cached weights ``file`` (``<torch hub>/checkpoints/file``, torchvision's cache).

    Raises ``FileNotFoundError`` saying where to put which download (``url``, by default
    torchvision's) and what else to do; i2i never downloads weights by itself (``i2i
    download`` does, when asked) and never falls back to random ones.
    """
    path = os.path.join(torch.hub.get_dir(), "checkpoints", file)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{needed_for} needs '{path}', which does not exist. Download {url or 'https://download.pytorch.org/models/' + file} "
            f"and save it there (torchvision's cache), {otherwise}. i2i never downloads weights by itself"
        )
    return path


def vgg19_weights_path(path: str | None = None) -> str:
    """The VGG19 weights file to use: ``path`` if given, else torchvision's cache entry.

    Raises ``FileNotFoundError`` saying exactly which file to put where; never falls
    back to random weights (a random VGG gives a meaningless perceptual loss).
    """
    if path:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"loss.vgg_weights file '{path}' does not exist; download {VGG19_URL} and point loss.vgg_weights at it")
        return path
    return torchvision_cached_weights(VGG19_FILE, needed_for="the perceptual loss (ImageNet VGG19)",
                                      otherwise=f"or set loss.vgg_weights: /path/to/{VGG19_FILE}")


class VGGPerceptualLoss(torch.nn.Module):
    """MSE between VGG19 features of two images (Ledig et al.'s VGG loss).

    Inputs ``(N, 3, H, W)`` in [-1, 1] are mapped to ImageNet-normalised [0, 1]. Features
    are taken after ``layer`` (``relu5_4`` = the paper's VGG54; ``relu2_2`` = VGG22) and
    divided by ``feature_scale`` (12.75 in the paper) before the MSE. The network is
    frozen and kept in eval mode. ``weights``: path of torchvision's ``vgg19`` state dict
    (see :func:`vgg19_weights_path`).
    """

    def __init__(self, layer: str = "relu5_4", *, weights: str | None = None, feature_scale: float = 12.75) -> None:
        super().__init__()
        if layer not in VGG19_RELU:
            raise ValueError(f"perceptual layer {layer!r} is not one of {', '.join(VGG19_RELU)}")
        from torchvision.models import vgg19  # torchvision imports torch._dynamo (~1.5 s): only where used

        net = vgg19(weights=None)
        state = load_state_file(vgg19_weights_path(weights), "the VGG19 weights (loss.vgg_weights)")
        try:
            net.load_state_dict(state)
        except RuntimeError as e:
            raise ValueError(f"'{weights or VGG19_FILE}' is not a torchvision vgg19 state dict: {first_line(e)}") from None
        self.features = net.features[: VGG19_RELU[layer] + 1].eval().requires_grad_(False)
        self.feature_scale = feature_scale

    def train(self, mode: bool = True) -> VGGPerceptualLoss:
        super().train(mode)
        self.features.eval()  # never batch/dropout behaviour: VGG19 has none, but stay explicit
        return self

    def _feat(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(imagenet_normalize(x)) / self.feature_scale

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Scalar float32 loss; gradients flow to ``pred`` only."""
        with torch.no_grad():
            t = self._feat(target)
        return F.mse_loss(self._feat(pred).float(), t.float())

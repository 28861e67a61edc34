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

from collections.abc import Callable

import torch
import torch.nn.functional as F

GAN_MODES = ("vanilla", "lsgan", "hinge", "wgangp")


class GANLoss:
    """Adversarial loss for one ``mode``; see the module table.

    ``d_loss(real_logits, fake_logits)`` and ``g_loss(fake_logits)`` return scalar
    float32 tensors; logits are any shape (PatchGAN maps are averaged).
    """

    def __init__(self, mode: str = "vanilla") -> None:
        if mode not in GAN_MODES:
            raise ValueError(f"gan_mode={mode!r} is not supported; choose one of {', '.join(GAN_MODES)}")
        self.mode = mode

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

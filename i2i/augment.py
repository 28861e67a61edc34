"""Differentiable augmentation of what a discriminator sees (DiffAugment, Zhao et al. 2020;
adaptive probability, Karras et al. 2020, StyleGAN2-ADA).

Real and generated images pass through the same random transforms before D, in D's step
and in G's (the gradient flows through them to G), so D cannot overfit a small training set
without the generator learning the augmentations. Every transform is applied to each image
with probability ``p`` (DiffAugment: ``p = 1``); with an ``ada_target``, ``p`` starts at 0
and follows how confident D is on real images, as in StyleGAN2-ADA: every ``interval`` D
steps, ``r_t = E[sign(D(real) - threshold)]`` over those steps' real logits, and ``p`` moves
by ``sign(r_t - target) * images / (kimg * 1000)`` (so from 0 to 1 in ``kimg`` thousand
images at the fastest), clipped to [0, 1].

Transforms (``policy`` names):

- ``color``: brightness ``+ U(-0.5, 0.5)``, saturation ``x U(0, 2)`` around the pixel's channel
  mean, contrast ``x U(0.5, 1.5)`` around the image mean (each a separate draw);
- ``translation``: an integer shift of up to 1/8 of each side, zeros shifted in;
- ``cutout``: a zeroed square of half the side at a random place;
- ``flip``: horizontal flip; ``rot90``: a random multiple of 90 degrees (180 only on
  non-square images).

Images are ``(N, C, H, W)`` floats in [-1, 1]. ``groups`` splits the channels into images
that share one draw (a conditional D's ``(input, output)`` pair: the geometry and colour
change is the same for both, each colour statistic computed per image). Random numbers come
from the global torch generator of the images' device, which the checkpoints save, so a
resumed run draws what an uninterrupted one would; nothing is read back to the host.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .options import parse_policy


def _uniform(n: int, lo: float, hi: float, like: torch.Tensor) -> torch.Tensor:
    return torch.rand(n, 1, 1, 1, device=like.device, dtype=torch.float32).mul_(hi - lo).add_(lo).to(like.dtype)


def _scale_about_mean(x: torch.Tensor, groups: Sequence[int], factor: torch.Tensor,
                      dims: tuple[int, ...]) -> torch.Tensor:
    """Each channel group of ``x`` scaled by ``factor`` (N, 1, 1, 1) about its own mean over ``dims``
    (channels: saturation; channels and pixels: contrast)."""
    parts = []
    for g in x.split(list(groups), 1):
        mean = g.mean(dims, keepdim=True)
        parts.append((g - mean) * factor + mean)
    return torch.cat(parts, 1)


def _translate(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    n, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sy, sy + 1, (n, 1, 1), device=x.device)
    dx = torch.randint(-sx, sx + 1, (n, 1, 1), device=x.device)
    ys = (torch.arange(h, device=x.device).view(1, h, 1) + dy).clamp(-1, h) + 1  # -1 and h: the zero border
    xs = (torch.arange(w, device=x.device).view(1, 1, w) + dx).clamp(-1, w) + 1
    padded = F.pad(x, [1, 1, 1, 1])
    rows = torch.arange(n, device=x.device).view(n, 1, 1)
    return padded.permute(0, 2, 3, 1)[rows, ys.expand(n, h, w), xs.expand(n, h, w)].permute(0, 3, 1, 2)


def _cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    oy = torch.randint(0, h + (1 - ch % 2), (n, 1), device=x.device) - ch // 2
    ox = torch.randint(0, w + (1 - cw % 2), (n, 1), device=x.device) - cw // 2
    ys, xs = torch.arange(h, device=x.device).view(1, h), torch.arange(w, device=x.device).view(1, w)
    in_y = (ys >= oy) & (ys < oy + ch)
    in_x = (xs >= ox) & (xs < ox + cw)
    keep = ~(in_y[:, :, None] & in_x[:, None, :])
    return x * keep[:, None].to(x.dtype)


def _rot90(x: torch.Tensor) -> torch.Tensor:
    n, _, h, w = x.shape
    square = h == w
    k = torch.randint(0, 4 if square else 2, (n, 1, 1, 1), device=x.device) * (1 if square else 2)
    out = x
    for turns in (1, 2, 3) if square else (2,):
        out = torch.where(k == turns, torch.rot90(x, turns, (2, 3)), out)
    return out


class DiscriminatorAugment(nn.Module):
    """The augmentation in front of a discriminator; see the module docstring.

    ``policy``: transform names (:data:`i2i.options.AUGMENTATIONS`); ``p``: the fixed probability, or with
    ``ada_target`` the starting one (StyleGAN2-ADA starts at 0); ``threshold``: where D's
    logits change from fake to real (0 for logits, 0.5 for least-squares targets).
    ``p`` is a buffer on the nets' device; the counters are saved with it (``state_dict``)."""

    def __init__(self, policy: Sequence[str], *, p: float = 1.0, ada_target: float | None = None, ada_interval: int = 4,
                 ada_kimg: float = 500.0, threshold: float = 0.0) -> None:
        super().__init__()
        self.policy = tuple(policy)
        parse_policy(",".join(self.policy))
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"augment p={p} must be within [0, 1]")
        self.ada_target, self.ada_interval, self.ada_kimg, self.threshold = (
            ada_target,
            ada_interval,
            ada_kimg,
            threshold,
        )
        self.register_buffer("p", torch.tensor(float(p)))
        # Since the last adjustment of p: sum of signs, logits counted, real images, D steps.
        self.register_buffer("counts", torch.zeros(4))
        self.always = ada_target is None and p >= 1.0  # decided from the config: p is never read from the device

    @property
    def adaptive(self) -> bool:
        return self.ada_target is not None

    def _gate(self, x: torch.Tensor, augmented: torch.Tensor) -> torch.Tensor:
        """``augmented`` for each image with probability ``p``, else ``x``."""
        if self.always:
            return augmented
        on = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < self.p
        return torch.where(on, augmented, x)

    def forward(self, x: torch.Tensor, groups: Sequence[int] | None = None) -> torch.Tensor:
        """``x`` ``(N, C, H, W)`` augmented (a new tensor; gradients flow through)."""
        groups = tuple(groups) if groups else (x.shape[1],)
        n = x.shape[0]
        for name in self.policy:
            if name == "color":
                x = self._gate(x, x + _uniform(n, -0.5, 0.5, x))  # brightness
                x = self._gate(x, _scale_about_mean(x, groups, _uniform(n, 0.0, 2.0, x), (1,)))  # saturation
                x = self._gate(x, _scale_about_mean(x, groups, _uniform(n, 0.5, 1.5, x), (1, 2, 3)))  # contrast
            elif name == "translation":
                x = self._gate(x, _translate(x))
            elif name == "cutout":
                x = self._gate(x, _cutout(x))
            elif name == "flip":
                x = self._gate(x, x.flip(3))
            elif name == "rot90":
                x = self._gate(x, _rot90(x))
        return x

    @torch.no_grad()
    def observe(self, real_logits: torch.Tensor) -> None:
        """With an ``ada_target``: count the signs of D's logits on (augmented) real images, and
        on every ``ada_interval``-th call move ``p``. Device work only, with no branch on the
        counts (a CUDA graph replays it); across processes each call's counts are summed
        first (one small all-reduce), so every rank holds the same ``p``."""
        if not self.adaptive:
            return
        logits = real_logits.detach().float()
        step = torch.stack([torch.sign(logits - self.threshold).sum(), torch.full_like(logits.sum(), logits.numel()),
                            torch.full_like(logits.sum(), logits.shape[0]), torch.ones_like(logits.sum())])
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(step)
            step[3] = 1.0
        counts = self.counts.add_(step)
        due = counts[3] >= self.ada_interval
        r_t = counts[0] / counts[1].clamp_min(1.0)
        moved = (self.p + torch.sign(r_t - self.ada_target) * counts[2] / (self.ada_kimg * 1000)).clamp(0.0, 1.0)
        self.p.copy_(torch.where(due, moved, self.p))
        counts.mul_(~due)

    def extra_repr(self) -> str:
        how = f"adaptive p, target {self.ada_target}" if self.adaptive else f"p {float(self.p):g}"
        return f"{','.join(self.policy) or 'none'}; {how}"

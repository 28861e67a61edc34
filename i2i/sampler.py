"""Sampling from unconditional / class-conditional generators (generation pipelines, e.g. DCGAN).

``Generator.from_checkpoint(path).sample(16, seed=0)`` returns images as a tensor;
``sample_arrays`` as uint8 arrays; ``interpolate`` makes latent interpolation strips
(Radford et al.'s figure). Everything is reproducible from the seed. The EMA weights are
used when the checkpoint has them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from .config import Config
from .data.io import from_tensor, write_image
from .engine.dist import resolve_device
from .loading import load_generator
from .nets.dcgan import sample_latent


class Generator:
    """A trained z -> image generator ready for sampling. The net defines its latent space:
    ``latent_dim``, ``num_classes`` (0: unconditional) and ``prior``."""

    def __init__(self, net: nn.Module, cfg: Config, *, device: str | torch.device = "auto", weights: str = "given") -> None:
        self.cfg = cfg
        self.device = resolve_device(device)
        self.net = net.to(self.device).eval().requires_grad_(False)
        self.latent_dim, self.num_classes, self.prior = net.latent_dim, net.num_classes, net.prior
        self.weights = weights

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, device: str | torch.device = "auto", use_ema: bool = True) -> Generator:
        """Load a generation model's training checkpoint or export (EMA weights preferred with
        ``use_ema``; :attr:`weights` says which were used)."""
        g = load_generator(path, use_ema=use_ema, kind="generation", purpose="sampling")
        return cls(g.net, g.cfg, device=device, weights=g.weights)

    @classmethod
    def from_pretrained(cls, folder: str | Path, **kwargs) -> Generator:
        """Load a model folder (``config.json`` + ``model.safetensors``; no pickle is read).
        Takes the options of :meth:`from_checkpoint`."""
        if not Path(folder).is_dir():
            raise FileNotFoundError(f"'{folder}' is not a model folder; use Generator.from_checkpoint for .pt files")
        return cls.from_checkpoint(folder, **kwargs)

    def __repr__(self) -> str:
        cond = f", {self.num_classes} classes" if self.num_classes else ""
        return (f"Generator({self.cfg.pipeline}, z {self.latent_dim}-d {self.prior}{cond}, weights={self.weights}, "
                f"device={self.device})")

    def _labels(self, n: int, label: int | None, g: torch.Generator) -> torch.Tensor | None:
        if not self.num_classes:
            if label is not None:
                raise ValueError("this generator is unconditional; label= (--label) needs a class-conditional model")
            return None
        if label is None:
            return torch.randint(self.num_classes, (n,), generator=g)
        if not 0 <= label < self.num_classes:
            raise ValueError(f"label {label} is out of range: the model has classes 0..{self.num_classes - 1}")
        return torch.full((n,), label, dtype=torch.long)

    @torch.inference_mode()
    def _decode(self, z: torch.Tensor, labels: torch.Tensor | None, batch_size: int) -> torch.Tensor:
        out = []
        for i in range(0, z.shape[0], batch_size):
            lab = labels[i : i + batch_size].to(self.device) if labels is not None else None
            out.append(self.net(z[i : i + batch_size].to(self.device), lab).float().cpu())
        return torch.cat(out)

    def sample(self, n: int, *, seed: int = 0, truncation: float | None = None, label: int | None = None,
               batch_size: int = 256) -> torch.Tensor:
        """``(n, C, S, S)`` images in [-1, 1]; the same seed gives the same images."""
        g = torch.Generator().manual_seed(seed)
        z = sample_latent(n, self.latent_dim, self.prior, generator=g, truncation=truncation)
        return self._decode(z, self._labels(n, label, g), batch_size)

    def sample_arrays(self, n: int, **kwargs) -> list[np.ndarray]:
        """Like :meth:`sample`, as ``(S, S, C)`` uint8 arrays."""
        return [from_tensor(t) for t in self.sample(n, **kwargs)]

    def interpolate(self, strips: int, steps: int = 8, *, seed: int = 0, label: int | None = None) -> torch.Tensor:
        """``(strips, steps, C, S, S)``: each strip walks between two random latents (spherical
        interpolation for the gaussian prior, linear for the uniform one)."""
        g = torch.Generator().manual_seed(seed)
        a = sample_latent(strips, self.latent_dim, self.prior, generator=g)
        b = sample_latent(strips, self.latent_dim, self.prior, generator=g)
        t = torch.linspace(0, 1, steps)[None, :, None]
        if self.prior == "gaussian":
            omega = torch.arccos((a / a.norm(dim=1, keepdim=True) * b / b.norm(dim=1, keepdim=True)).sum(1).clamp(-1, 1))[:, None, None]
            so = torch.sin(omega).clamp_min(1e-6)
            z = torch.sin((1 - t) * omega) / so * a[:, None] + torch.sin(t * omega) / so * b[:, None]
        else:
            z = (1 - t) * a[:, None] + t * b[:, None]
        labels = self._labels(strips, label, g)
        labels = labels.repeat_interleave(steps) if labels is not None else None
        imgs = self._decode(z.reshape(strips * steps, -1), labels, 256)
        return imgs.view(strips, steps, *imgs.shape[1:])

    def save_samples(self, out_dir: str | Path, n: int, *, ext: str = ".png", **kwargs) -> list[Path]:
        """Write ``n`` samples as ``sample_00000.png``... (atomically); returns the paths."""
        paths = []
        for i, img in enumerate(self.sample_arrays(n, **kwargs)):
            paths.append(write_image(Path(out_dir) / f"sample_{i:05d}{ext}", img))
        return paths

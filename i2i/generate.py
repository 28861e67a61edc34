"""Sampling from unconditional / class-conditional generators (generation pipelines, e.g. DCGAN).

``Generator.from_checkpoint(path).sample(16, seed=0)`` returns images as a tensor;
``sample_arrays`` as uint8 arrays; ``interpolate`` makes latent interpolation strips
(Radford et al.'s figure). Everything is reproducible from the seed. The EMA weights are
used when the checkpoint has them.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .config import Config
from .data.io import from_tensor, write_image
from .dist import resolve_device
from .loading import load_generator
from .nets.dcgan import sample_latent


def parse_arithmetic(expression: str) -> list[tuple[float, list[int]]]:
    """``"3,17,40 - 5,9 + 22"`` -> ``[(1.0, [3, 17, 40]), (-1.0, [5, 9]), (1.0, [22])]``: terms
    of comma-separated sample indices joined by ``+`` and ``-`` (a leading sign is allowed)."""
    text = expression.replace(" ", "")
    if not text or not re.fullmatch(r"[+-]?\d+(,\d+)*([+-]\d+(,\d+)*)*", text):
        raise ValueError(f"arithmetic {expression!r}: write terms of sample indices joined by + and -, e.g. '3,17,40 - "
                         "5,9 + 22'")
    out = []
    for sign, idx in re.findall(r"([+-]?)(\d+(?:,\d+)*)", text):
        out.append((-1.0 if sign == "-" else 1.0, [int(i) for i in idx.split(",")]))
    return out


class Generator:
    """A trained z -> image generator ready for sampling. The net defines its latent space:
    ``latent_dim``, ``num_classes`` (0: unconditional) and ``prior``."""

    def __init__(self, net: nn.Module, cfg: Config, *, device: str | torch.device = "auto",
                 weights: str = "given") -> None:
        self.cfg = cfg
        self.device = resolve_device(device)
        self.net = net.to(self.device).eval().requires_grad_(False)
        self.latent_dim, self.num_classes, self.prior = net.latent_dim, net.num_classes, net.prior
        self.weights = weights

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, device: str | torch.device = "auto",
                        use_ema: bool = True) -> Generator:
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
        return self.sample_labelled(n, seed=seed, truncation=truncation, label=label, batch_size=batch_size)[0]

    def sample_labelled(self, n: int, *, seed: int = 0, truncation: float | None = None, label: int | None = None,
                        batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:meth:`sample`'s images and the ``(n,)`` class labels they were drawn for (None when
        unconditional)."""
        g = torch.Generator().manual_seed(seed)
        z = sample_latent(n, self.latent_dim, self.prior, generator=g, truncation=truncation)
        labels = self._labels(n, label, g)
        return self._decode(z, labels, batch_size), labels

    def latents(self, n: int, *, seed: int = 0, truncation: float | None = None) -> torch.Tensor:
        """``(n, latent_dim)``: the latents :meth:`sample` with the same arguments decodes, so
        sample ``i`` of a grid can be picked up again as ``latents(n, seed=...)[i]``."""
        g = torch.Generator().manual_seed(seed)
        return sample_latent(n, self.latent_dim, self.prior, generator=g, truncation=truncation)

    def decode(self, z: torch.Tensor, *, label: int | None = None, batch_size: int = 256) -> torch.Tensor:
        """``(N, latent_dim)`` (or one ``(latent_dim,)``) latents -> ``(N, C, S, S)`` images in
        [-1, 1]; a class-conditional model needs ``label``."""
        z = z[None] if z.dim() == 1 else z
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"latents must be (N, {self.latent_dim}), got shape {tuple(z.shape)}")
        if self.num_classes and label is None:
            raise ValueError(f"this generator is class-conditional: pass label= (0..{self.num_classes - 1})")
        labels = self._labels(z.shape[0], label, torch.Generator()) if label is not None or self.num_classes else None
        return self._decode(z.float(), labels, batch_size)

    def arithmetic(self, terms: list[tuple[float, list[int]]] | str, *, seed: int = 0, n: int = 64,
                   label: int | None = None,
                   variants: int = 1, noise: float = 0.25) -> dict[str, torch.Tensor]:
        """Latent vector arithmetic (Radford et al. 2016, sec. 6.3): each term averages the
        latents of some samples of ``sample(n, seed=seed)`` (picked by index from a grid) and
        the terms are added with their signs: ``"3,17,40 - 5,9 + 22"`` is
        ``mean(z3, z17, z40) - mean(z5, z9) + z22``; averaging several exemplars per concept is
        what makes it work. ``variants`` > 1 adds uniform noise in [-noise, noise] to copies of
        the result (the paper's 8 variations). Returns ``{"terms": (T, C, S, S)`` the decoded
        mean of each term, ``"result": (variants, C, S, S)``} in [-1, 1]."""
        if isinstance(terms, str):
            terms = parse_arithmetic(terms)
        z = self.latents(n, seed=seed)
        means, total = [], torch.zeros(self.latent_dim)
        for sign, idx in terms:
            bad = [i for i in idx if not 0 <= i < n]
            if bad:
                raise ValueError(f"sample index {bad[0]} is out of range: the grid of seed {seed} has samples "
                                 f"0..{n - 1} (--n)")
            m = z[idx].mean(0)
            means.append(m)
            total += sign * m
        result = total[None].repeat(variants, 1)
        if variants > 1:
            g = torch.Generator().manual_seed(seed + 1)
            result[1:] += (torch.rand(variants - 1, self.latent_dim, generator=g) * 2 - 1) * noise
        return {"terms": self.decode(torch.stack(means), label=label), "result": self.decode(result, label=label)}

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
            omega = torch.arccos(
                (a / a.norm(dim=1, keepdim=True) * b / b.norm(dim=1, keepdim=True)).sum(1).clamp(-1, 1)
            )[:, None, None]
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

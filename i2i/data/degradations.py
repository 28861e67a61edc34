"""Real-ESRGAN's second-order degradation model (Wang et al., ICCVW 2021), batched on the
training device: low-resolution inputs made on the fly from high-resolution photos alone.

Per batch of HR crops ``(N, C, H, W)`` in [0, 1] (optionally unsharp-masked first, as
Real-ESRGAN degrades and learns the sharpened targets):

1. blur with a random kernel (Gaussian, generalised Gaussian or plateau, isotropic or
   anisotropic; sinc with ``sinc_prob``), random resize (up / down / keep, area / bilinear /
   bicubic), Gaussian or Poisson noise (colour or gray), JPEG;
2. again, with the second ranges (the blur with ``second_blur_prob``), the resize relative to
   the final LR size;
3. resize to ``H / scale`` and a sinc (``final_sinc_prob``) then JPEG, or JPEG then the resize
   and sinc (even odds); rounded to 8-bit levels.

Randomness: every parameter is drawn on the host by :func:`draw` (kernels, sigmas, JPEG
qualities per image; resize factors, modes, noise kinds and orders per batch, as Real-ESRGAN
does) from the generator given, and the noise itself from a seed drawn with them, so a step's
degradation is a function of the host generator's state, which checkpoints save: resume is
exact, on any device. Defaults are Real-ESRGAN's training configuration (``train_realesrnet_x4plus.yml``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any

import torch
import torch.nn.functional as F

from ..options import Range
from .kernels import anisotropic_kernels, pulse, sinc_kernels

Prob = Annotated[float, Range(0.0, 1.0)]
Sigma = Annotated[float, Range(0.0, 20.0, low_open=True)]
"""A blur's standard deviation in pixels (Real-ESRGAN's reach 3)."""
Beta = Annotated[float, Range(0.0, 16.0, low_open=True)]
"""A generalised-Gaussian or plateau kernel's shape (Real-ESRGAN's reach 4)."""
Factor = Annotated[float, Range(0.05, 4.0)]
"""A resize factor (Real-ESRGAN's reach 0.15 and 1.5): the images a step holds grow with its square."""
KernelSize = Annotated[int, Range(1, 63)]
Quality = Annotated[float, Range(1.0, 100.0)]
RESIZE_MODES = ("area", "bilinear", "bicubic")
KERNEL = 21  # the common kernel size of a batch (Real-ESRGAN's largest)


@dataclass
class RealESRGANDegradation:
    """``data.realesrgan``: the ranges and probabilities of :mod:`i2i.data.degradations`
    (Real-ESRGAN's names; the ``2`` keys are the second stage's). ``kernel_probs``: iso, aniso,
    generalised iso, generalised aniso, plateau iso, plateau aniso. ``resize_probs``: up, down,
    keep. Ranges are ``[low, high]``. ``target_usm``: unsharp-mask the HR targets (Real-ESRGAN's
    ``gt_usm``; the degradations start from the sharpened image too)."""

    kernel_sizes: tuple[KernelSize, ...] = (7, 9, 11, 13, 15, 17, 19, 21)
    kernel_probs: tuple[Prob, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    sinc_prob: Prob = 0.1
    blur_sigma: tuple[Sigma, Sigma] = (0.2, 3.0)
    betag_range: tuple[Beta, Beta] = (0.5, 4.0)
    betap_range: tuple[Beta, Beta] = (1.0, 2.0)
    resize_probs: tuple[Prob, Prob, Prob] = (0.2, 0.7, 0.1)
    resize_range: tuple[Factor, Factor] = (0.15, 1.5)
    gaussian_noise_prob: Prob = 0.5
    noise_range: tuple[Annotated[float, Range(0.0, 255.0)], Annotated[float, Range(0.0, 255.0)]] = (1.0, 30.0)
    poisson_scale_range: tuple[Annotated[float, Range(0.0, 100.0)], Annotated[float, Range(0.0, 100.0)]] = (0.05, 3.0)
    gray_noise_prob: Prob = 0.4
    jpeg_range: tuple[Quality, Quality] = (30.0, 95.0)
    second_blur_prob: Prob = 0.8
    kernel_probs2: tuple[Prob, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    sinc_prob2: Prob = 0.1
    blur_sigma2: tuple[Sigma, Sigma] = (0.2, 1.5)
    betag_range2: tuple[Beta, Beta] = (0.5, 4.0)
    betap_range2: tuple[Beta, Beta] = (1.0, 2.0)
    resize_probs2: tuple[Prob, Prob, Prob] = (0.3, 0.4, 0.3)
    resize_range2: tuple[Factor, Factor] = (0.3, 1.2)
    gaussian_noise_prob2: Prob = 0.5
    noise_range2: tuple[Annotated[float, Range(0.0, 255.0)], Annotated[float, Range(0.0, 255.0)]] = (1.0, 25.0)
    poisson_scale_range2: tuple[Annotated[float, Range(0.0, 100.0)], Annotated[float, Range(0.0, 100.0)]] = (0.05, 2.5)
    gray_noise_prob2: Prob = 0.4
    jpeg_range2: tuple[Quality, Quality] = (30.0, 95.0)
    final_sinc_prob: Prob = 0.8
    target_usm: bool = True

    def problems(self) -> list[str]:
        """What is inconsistent (key: why), for the config loader to report."""
        out = []
        for key in ("kernel_probs", "kernel_probs2"):
            if len(getattr(self, key)) != 6:
                out.append(f"{key} needs 6 probabilities (iso, aniso, generalized_iso, generalized_aniso, plateau_iso, "
                           "plateau_aniso)")
        for key in ("kernel_probs", "kernel_probs2", "resize_probs", "resize_probs2"):
            if abs(sum(getattr(self, key)) - 1) > 1e-6:
                out.append(f"{key} must sum to 1, got {sum(getattr(self, key)):g}")
        if any(k % 2 == 0 or k > KERNEL for k in self.kernel_sizes) or not self.kernel_sizes:
            out.append(f"kernel_sizes must be odd sizes up to {KERNEL}, got {list(self.kernel_sizes)}")
        for key, value in vars(self).items():
            if key.endswith(("_range", "_range2", "blur_sigma", "blur_sigma2")) and value[0] > value[1]:
                out.append(f"{key} is [low, high]: {list(value)} is reversed")
        if (
            self.resize_range[0] > 1
            or self.resize_range[1] < 1
            or self.resize_range2[0] > 1
            or self.resize_range2[1] < 1
        ):
            out.append("resize_range and resize_range2 must contain 1 (down below it, up above it)")
        return out


def _uniform(lo: float, hi: float, n: int, g: torch.Generator | None) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g, dtype=torch.float64)


def _blur_kernels(n: int, sizes: tuple[int, ...], probs: tuple[float, ...], sinc_prob: float,
                  sigma: tuple[float, float],
                  betag: tuple[float, float], betap: tuple[float, float], g: torch.Generator | None) -> torch.Tensor:
    support = torch.tensor(sizes)[torch.randint(len(sizes), (n,), generator=g)]
    kind = torch.multinomial(torch.tensor(probs, dtype=torch.float64), n, replacement=True, generator=g)
    iso = kind % 2 == 0
    sx = _uniform(*sigma, n, g)
    sy = torch.where(iso, sx, _uniform(*sigma, n, g))
    theta = torch.where(iso, torch.zeros(n, dtype=torch.float64), _uniform(-math.pi, math.pi, n, g))
    family = kind // 2  # 0 Gaussian, 1 generalised, 2 plateau
    low = torch.rand(n, generator=g) < 0.5  # beta below or above 1 with even odds, as BasicSR
    bg = torch.where(low, _uniform(betag[0], 1.0, n, g), _uniform(1.0, betag[1], n, g))
    bp = torch.where(low, _uniform(betap[0], 1.0, n, g), _uniform(1.0, betap[1], n, g))
    kernels = anisotropic_kernels(KERNEL, family, sx, sy, theta, torch.where(family == 1, bg, bp), support)
    sinc = torch.rand(n, generator=g) < sinc_prob
    omega = torch.where(support < 13, _uniform(math.pi / 3, math.pi, n, g), _uniform(math.pi / 5, math.pi, n, g))
    return torch.where(sinc.view(-1, 1, 1), sinc_kernels(KERNEL, omega, support), kernels)


def _resize_choice(probs: tuple[float, float, float], rng: tuple[float, float],
                   g: torch.Generator | None) -> tuple[float, str]:
    updown = int(torch.multinomial(torch.tensor(probs, dtype=torch.float64), 1, generator=g))
    u = float(torch.rand(1, generator=g, dtype=torch.float64))
    factor = 1 + u * (rng[1] - 1) if updown == 0 else rng[0] + u * (1 - rng[0]) if updown == 1 else 1.0
    return factor, RESIZE_MODES[int(torch.randint(3, (1,), generator=g))]


def _noise_draws(n: int, gaussian_prob: float, sigma: tuple[float, float], poisson: tuple[float, float], gray: float,
                 g: torch.Generator | None) -> dict[str, Any]:
    return {"gaussian": bool(torch.rand(1, generator=g) < gaussian_prob), "sigma": _uniform(*sigma, n, g).float() / 255,
            "poisson": _uniform(*poisson, n, g).float(), "gray": torch.rand(n, generator=g) < gray}


def draw(cfg: RealESRGANDegradation, n: int, generator: torch.Generator | None = None) -> dict[str, Any]:
    """Every random decision of one batch of ``n`` images, on the CPU from ``generator`` (the
    global one when None): ``(n, 21, 21)`` kernels ``kernel1`` / ``kernel2`` (a pulse when the
    second blur is skipped) / ``sinc`` (a pulse without the final sinc), JPEG qualities
    ``jpeg1`` / ``jpeg2`` ``(n,)``, per-stage noise draws, resize factors and modes, the final
    order, and a ``seed`` for the noise."""
    g = generator
    kernel1 = _blur_kernels(n, cfg.kernel_sizes, cfg.kernel_probs, cfg.sinc_prob, cfg.blur_sigma, cfg.betag_range,
                            cfg.betap_range, g)
    kernel2 = _blur_kernels(n, cfg.kernel_sizes, cfg.kernel_probs2, cfg.sinc_prob2, cfg.blur_sigma2, cfg.betag_range2,
                            cfg.betap_range2, g)
    if not bool(torch.rand(1, generator=g) < cfg.second_blur_prob):
        kernel2 = pulse(n, KERNEL)
    support = torch.tensor(cfg.kernel_sizes)[torch.randint(len(cfg.kernel_sizes), (n,), generator=g)]
    sinc = sinc_kernels(KERNEL, _uniform(math.pi / 3, math.pi, n, g), support)
    keep = (torch.rand(n, generator=g) >= cfg.final_sinc_prob).view(-1, 1, 1)
    sinc = torch.where(keep, pulse(n, KERNEL), sinc)
    return {
        "kernel1": kernel1, "kernel2": kernel2, "sinc": sinc,
        "resize1": _resize_choice(cfg.resize_probs, cfg.resize_range, g),
        "resize2": _resize_choice(cfg.resize_probs2, cfg.resize_range2, g),
        "noise1": _noise_draws(n, cfg.gaussian_noise_prob, cfg.noise_range, cfg.poisson_scale_range,
                               cfg.gray_noise_prob, g),
        "noise2": _noise_draws(n, cfg.gaussian_noise_prob2, cfg.noise_range2, cfg.poisson_scale_range2,
                               cfg.gray_noise_prob2, g),
        "jpeg1": _uniform(*cfg.jpeg_range, n, g).float(), "jpeg2": _uniform(*cfg.jpeg_range2, n, g).float(),
        "sinc_first": bool(torch.rand(1, generator=g) < 0.5),
        "final_mode": RESIZE_MODES[int(torch.randint(3, (1,), generator=g))],
        "seed": int(torch.randint(2**62, (1,), generator=g)),
    }


def filter2d(x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Each image of ``(N, C, H, W)`` convolved with its own ``(N, k, k)`` kernel (odd k),
    reflect-padded (replicate where the image is smaller than the padding)."""
    n, c, h, w = x.shape
    k = kernels.shape[-1]
    p = k // 2
    mode = "reflect" if p < h and p < w else "replicate"
    xp = F.pad(x.reshape(1, n * c, h, w), (p, p, p, p), mode=mode)
    weight = kernels.to(x.dtype).repeat_interleave(c, 0).unsqueeze(1)
    return F.conv2d(xp, weight, groups=n * c).view(n, c, h, w)


def _resize(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    size = (max(1, size[0]), max(1, size[1]))
    if mode == "area":
        return F.interpolate(x, size=size, mode="area")
    return F.interpolate(x, size=size, mode=mode, align_corners=False)


def _gray(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] != 3:
        return x.mean(1, keepdim=True)
    w = torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def add_noise(x: torch.Tensor, d: dict[str, Any], gen: torch.Generator) -> torch.Tensor:
    """Gaussian noise (``sigma`` per image, on [0, 1]) or Poisson noise (``poisson`` scales;
    the image's count of levels rounded up to a power of two as the photon count, as BasicSR),
    gray (one noise for every channel) where ``gray``; clipped to [0, 1]."""
    n = x.shape[0]
    gray = d["gray"].to(x.device).view(-1, 1, 1, 1)
    if d["gaussian"]:
        colour = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
        mono = torch.randn((n, 1, *x.shape[2:]), generator=gen, device=x.device, dtype=x.dtype)
        noise = torch.where(gray, mono.expand_as(x), colour) * d["sigma"].to(x.device, x.dtype).view(-1, 1, 1, 1)
    else:
        q = (x * 255).round().clamp(0, 255) / 255
        g = _gray(q)
        noise_of = []
        for img in (q, g):
            vals = torch.tensor([torch.unique(i).numel() for i in img.unbind(0)], dtype=x.dtype, device=x.device)
            vals = (2 ** torch.ceil(torch.log2(vals))).view(-1, 1, 1, 1)
            noise_of.append(torch.poisson(img * vals, generator=gen) / vals - img)
        noise = torch.where(gray, noise_of[1].expand_as(x), noise_of[0]) * d["poisson"].to(x.device, x.dtype).view(-1,
                                                                                                                   1, 1,
                                                                                                                   1)
        x = q
    return (x + noise).clamp(0, 1)


def jpeg(x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """JPEG compression and decompression at per-image ``quality`` (kornia's differentiable
    codec: 4:2:0 chroma, the standard tables). ``x`` in [0, 1]; 1-channel images go through as gray RGB."""
    from kornia.enhance import jpeg_codec_differentiable

    c = x.shape[1]
    rgb = x.expand(-1, 3, -1, -1) if c == 1 else x
    out = jpeg_codec_differentiable(rgb.clamp(0, 1).float(), quality.to(x.device).float())
    return (out.mean(1, keepdim=True) if c == 1 else out).to(x.dtype)


def degrade(hr: torch.Tensor, d: dict[str, Any], scale: int) -> torch.Tensor:
    """``(N, C, H, W)`` HR in [0, 1] -> ``(N, C, H / scale, W / scale)`` LR in [0, 1] on 8-bit
    levels, by the draws ``d`` of :func:`draw` (H and W multiples of ``scale``)."""
    gen = torch.Generator(device=hr.device).manual_seed(d["seed"])
    n, _, h, w = hr.shape
    dev = hr.device
    out = filter2d(hr, d["kernel1"].to(dev))
    factor, mode = d["resize1"]
    out = _resize(out, (int(h * factor), int(w * factor)), mode)
    out = jpeg(add_noise(out, d["noise1"], gen), d["jpeg1"])
    out = filter2d(out, d["kernel2"].to(dev))
    factor, mode = d["resize2"]
    out = _resize(out, (int(h / scale * factor), int(w / scale * factor)), mode)
    out = add_noise(out, d["noise2"], gen)
    final = (h // scale, w // scale)
    if d["sinc_first"]:
        out = jpeg(filter2d(_resize(out, final, d["final_mode"]), d["sinc"].to(dev)), d["jpeg2"])
    else:
        out = filter2d(_resize(jpeg(out, d["jpeg2"]), final, d["final_mode"]), d["sinc"].to(dev))
    return (out * 255).round().clamp(0, 255) / 255


def _gaussian_1d(size: int, device: torch.device) -> torch.Tensor:
    sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8  # OpenCV's sigma for a kernel size (getGaussianKernel(size, 0))
    ax = torch.arange(size, device=device, dtype=torch.float64) - (size - 1) / 2
    k = torch.exp(-(ax**2) / (2 * sigma**2))
    return (k / k.sum()).float()


def usm_sharp(x: torch.Tensor, weight: float = 0.5, radius: int = 50, threshold: float = 10) -> torch.Tensor:
    """Unsharp masking as Real-ESRGAN sharpens its targets (BasicSR's ``USMSharp``): the
    residual over a Gaussian blur (kernel ``radius + 1`` wide, OpenCV's sigma for that size)
    added with ``weight`` where it exceeds ``threshold`` 8-bit levels (the mask softened by the
    same blur). ``(N, C, H, W)`` in [0, 1] -> same shape, in [0, 1]."""
    size = radius + 1 if radius % 2 == 0 else radius
    k1 = _gaussian_1d(size, x.device)
    kernel = (k1[:, None] * k1[None, :]).expand(x.shape[0], -1, -1)
    blur = filter2d(x, kernel)
    residual = x - blur
    mask = ((residual.abs() * 255) > threshold).to(x.dtype)
    soft = filter2d(mask, kernel)
    sharp = (x + weight * residual).clamp(0, 1)
    return soft * sharp + (1 - soft) * x

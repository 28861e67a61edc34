"""Image quality metrics on tensors in [-1, 1] (converted to [0, 1] before measuring).

All functions take ``(N, C, H, W)`` tensors and return one value per image, ``(N,)``,
so that averages over a dataset are means of per-image values, as papers report them.

Super-resolution papers report PSNR / SSIM in one of two conventions, both offered here:
``y=True`` measures the BT.601 luma (MATLAB's ``rgb2ycbcr``: Y = 16 + 65.481 R +
128.553 G + 24.966 B for RGB in [0, 1], so Y spans [16, 235] / 255) as in SRGAN's Table;
``y=False`` measures all RGB channels. ``border`` pixels are cut from every side first
(the SR convention is ``border = scale``).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch


def _unit(x: torch.Tensor) -> torch.Tensor:
    return (x.float().clamp(-1, 1) + 1.0) / 2.0


def rgb_to_y(x01: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of ``(N, 3, H, W)`` RGB in [0, 1], as ``(N, 1, H, W)`` in [16, 235] / 255."""
    w = torch.tensor([65.481, 128.553, 24.966], dtype=x01.dtype, device=x01.device).view(1, 3, 1, 1)
    return (16.0 + (x01 * w).sum(1, keepdim=True)) / 255.0


def prepare(x: torch.Tensor, *, y: bool = False, border: int = 0) -> torch.Tensor:
    """[-1, 1] images -> [0, 1] (luma when ``y`` and 3 channels), ``border`` cut from each side."""
    u = _unit(x).double()
    if y and u.shape[1] == 3:
        u = rgb_to_y(u)
    if border:
        u = u[..., border:-border, border:-border]
    return u


def l1_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error per image on the [0, 1] scale; ``(N,)``."""
    return (_unit(pred) - _unit(target)).abs().flatten(1).mean(1)


def psnr(pred: torch.Tensor, target: torch.Tensor, *, y: bool = False, border: int = 0,
         eps: float = 1e-10) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image (data range 1 on the [0, 1] scale); ``(N,)``.
    ``y``: on BT.601 luma; ``border``: pixels cut from each side. Identical images give
    ``10*log10(1/eps)``."""
    mse = ((prepare(pred, y=y, border=border) - prepare(target, y=y, border=border)) ** 2).flatten(1).mean(1)
    return (10.0 * torch.log10(1.0 / (mse + eps))).float()


def ssim(pred: torch.Tensor, target: torch.Tensor, *, y: bool = False, border: int = 0) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004) per image; ``(N,)``.

    As the reference MATLAB code: 11x11 Gaussian window with sigma 1.5, constants
    (0.01)^2 and (0.03)^2 for data range 1, statistics over the window's valid positions
    only, mean over pixels and channels. Computed with kornia. Images smaller than 11 pixels
    on a side (which the reference refuses) use the largest odd window that fits, down to 1
    (then only the luminance and contrast of single pixels are compared).
    """
    import kornia  # ~0.3 s to load: only where SSIM is computed

    a, b = prepare(pred, y=y, border=border).float(), prepare(target, y=y, border=border).float()
    window = min(11, *a.shape[-2:])
    window -= 1 - window % 2  # odd
    m = kornia.metrics.ssim(a, b, window_size=window, max_val=1.0, padding="valid")
    return m.flatten(1).mean(1)


def frechet_distance(feats_a: torch.Tensor, feats_b: torch.Tensor) -> float:
    """FID between two ``(N, D)`` feature sets: ``|mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))``
    (Heusel et al. 2017), in float64."""
    from scipy import linalg  # scipy's linear algebra loads in ~0.2 s: only where FID is computed

    a, b = feats_a.double().cpu().numpy(), feats_b.double().cpu().numpy()
    if not (np.isfinite(a).all() and np.isfinite(b).all()):  # sqrtm of a NaN matrix runs for minutes
        raise ValueError("FID needs finite features; the feature network gave NaN or infinite values")
    mu_a, mu_b = a.mean(0), b.mean(0)
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():  # a singular product (few samples) is handled just below
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(sa @ sb)
    if not np.isfinite(covmean).all():  # singular product: regularise as the reference code does
        eps = np.eye(sa.shape[0]) * 1e-6
        covmean = linalg.sqrtm((sa + eps) @ (sb + eps))
    covmean = covmean.real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(sa) + np.trace(sb) - 2 * np.trace(covmean))


def kernel_distance(feats_a: torch.Tensor, feats_b: torch.Tensor, *, subsets: int = 10, subset_size: int = 1000,
                    seed: int = 0) -> float:
    """KID (Binkowski et al. 2018): unbiased MMD^2 with the kernel ``(x.y / D + 1)^3``, averaged
    over random subsets of both sets."""
    a, b = feats_a.double().cpu(), feats_b.double().cpu()
    m = min(subset_size, a.shape[0], b.shape[0])
    d = a.shape[1]
    g = torch.Generator().manual_seed(seed)
    vals = []
    for _ in range(subsets):
        x = a[torch.randperm(a.shape[0], generator=g)[:m]]
        y = b[torch.randperm(b.shape[0], generator=g)[:m]]
        kxx, kyy, kxy = (x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3
        vals.append(((kxx.sum() - kxx.diag().sum()) + (kyy.sum() - kyy.diag().sum())) / (m * (m - 1)) - 2 * kxy.mean())
    return float(torch.stack(vals).mean())


def inception_score(logits: torch.Tensor, *, splits: int = 10) -> tuple[float, float]:
    """Inception Score (Salimans et al. 2016) of ``(N, K)`` class logits: ``exp(E_x KL(p(y|x) || p(y)))``
    computed on ``splits`` equal parts (``p(y)`` per part), as the original code does.
    Returns ``(mean, std)`` over the parts; 1 for uninformative predictions, up to K."""
    p = torch.softmax(logits.double(), dim=1)
    scores = []
    for part in torch.tensor_split(p, splits):
        if part.shape[0] == 0:
            continue
        py = part.mean(0, keepdim=True)
        kl = (part * (torch.log(part.clamp_min(1e-30)) - torch.log(py.clamp_min(1e-30)))).sum(1).mean()
        scores.append(torch.exp(kl))
    t = torch.stack(scores)
    return float(t.mean()), float(t.std(unbiased=False)) if len(scores) > 1 else 0.0


def mean_pairwise_distance(features: torch.Tensor) -> float:
    """Mean Euclidean distance between the ``(N, D)`` feature vectors of different samples
    (N >= 2): how spread out a set of images is. A generator that collapses to a few
    patterns scores far below the real images' value (see :func:`diversity`)."""
    f = features.double().flatten(1)
    n = f.shape[0]
    if n < 2:
        raise ValueError(f"pairwise distances need at least 2 samples, got {n}")
    return float(torch.cdist(f, f).sum() / (n * (n - 1)))


def diversity(fake: torch.Tensor, real: torch.Tensor) -> float:
    """Sample diversity relative to the data: the mean pairwise feature distance of the
    generated samples divided by that of the real images (``(N, D)`` each). About 1 when the
    samples vary as much as the data; toward 0 under mode collapse. NaN when the real images
    are all alike (their spread under a millionth of their features' size): then no ratio means
    anything."""
    spread = mean_pairwise_distance(real)
    if spread <= 1e-6 * float(real.double().flatten(1).norm(dim=1).mean()) or spread == 0:
        return float("nan")
    return mean_pairwise_distance(fake) / spread


def memorisation(fake: torch.Tensor, held_out: torch.Tensor, train: torch.Tensor) -> float:
    """How near samples lie to the training images, relative to new real images: the median
    distance from each ``(N, D)`` sample feature to its nearest ``(T, D)`` training feature, over
    the same median for ``(M, D)`` held-out real images (never trained on). About 1 (or more)
    when samples are as new as unseen real images; toward 0 when they are copies of training
    images. NaN when a held-out image equals a training image (median distance 0)."""
    def nearest(x: torch.Tensor) -> torch.Tensor:
        return torch.cdist(x.double().flatten(1), train.double().flatten(1)).min(1).values

    ref = float(nearest(held_out).median())
    return float(nearest(fake).median()) / ref if ref > 0 else float("nan")


def class_diversity(fake: torch.Tensor, labels: torch.Tensor, real: torch.Tensor) -> float:
    """:func:`diversity` within each class of a class-conditional generator: the mean pairwise
    feature distance of the ``(N, D)`` samples drawn for the same class (``labels``: ``(N,)``),
    averaged over the classes with at least 2 samples, over that of the ``(M, D)`` real images
    (all classes). A generator that draws one image per class scores about 0 here while its
    overall diversity looks healthy (the classes differ); a healthy one scores about the real
    images' own within-class value (below 1 when the classes differ)."""
    per_class = [mean_pairwise_distance(fake[labels == c]) for c in labels.unique() if int((labels == c).sum()) >= 2]
    if not per_class:
        raise ValueError("class diversity needs at least 2 samples of some class")
    if math.isnan(diversity(real, real)):
        return float("nan")
    return sum(per_class) / len(per_class) / max(mean_pairwise_distance(real), 1e-12)


def class_coverage(predicted: torch.Tensor, real_labels: torch.Tensor, num_classes: int) -> float:
    """Share of the classes the generator covers: a class counts when its share of the
    samples (``predicted``: ``(N,)`` class indices from a classifier) is at least half its
    share of the real images (``real_labels``). 1: every class present; 1/K: one class only."""
    fake_share = torch.bincount(predicted.long(), minlength=num_classes)[:num_classes].double() / max(predicted.numel(),
                                                                                                      1)
    real_share = torch.bincount(real_labels.long(),
                                minlength=num_classes)[:num_classes].double() / max(real_labels.numel(), 1)
    present = real_share > 0
    if not present.any():
        raise ValueError("class coverage needs real images with labels")
    return float((fake_share[present] >= 0.5 * real_share[present]).double().mean())

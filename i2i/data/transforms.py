"""Augmentations. The only module that imports albumentations.

Paired transforms are applied with identical parameters to both images, so crops and
flips stay in register. Randomness is seeded per sample from ``(seed, epoch, index)``
by the dataset, which makes every batch reproducible after a resume and independent
of the number of data-loader workers.
"""

from __future__ import annotations

import os
import weakref

# albumentations asks PyPI for a newer version on import (a network call, and a warning on
# machines without one); a library's import must not reach the network.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
import albumentations as A  # noqa: E402
import cv2
import numpy as np
import torch

from .plan import Geometry

#: Luma weights of ITU-R BT.601 (as torchvision's and PIL's grayscale), for colour jitter's saturation.
_LUMA = (0.299, 0.587, 0.114)


class ScaledResize(A.DualTransform):
    """Resize to ``size`` x ``size`` (None: the image's own size) times a factor drawn from
    [1 - ``jitter``, 1 + ``jitter``], raised where needed so both sides stay at least ``min_side``
    (the crop that follows must fit); bicubic, as ``A.Resize`` in :func:`paired_transform`."""

    def __init__(self, size: int | None, jitter: float, min_side: int, p: float = 1.0) -> None:
        super().__init__(p=p)
        self.size, self.jitter, self.min_side = size, jitter, min_side

    def get_params_dependent_on_data(self, params: dict, data: dict) -> dict:
        h, w = params["shape"][:2]
        bh, bw = (self.size, self.size) if self.size else (h, w)
        f = max(self.py_random.uniform(1 - self.jitter, 1 + self.jitter), self.min_side / bh, self.min_side / bw)
        return {"out_size": (max(self.min_side, round(bh * f)), max(self.min_side, round(bw * f)))}

    def apply(self, img: np.ndarray, out_size: tuple[int, int], **params) -> np.ndarray:
        return _hwc(cv2.resize(img, (out_size[1], out_size[0]), interpolation=cv2.INTER_CUBIC))

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("size", "jitter", "min_side")


def paired_transform(
    *, preprocess: str, load_size: int, crop_size: int, flip: bool, train: bool, rotate90: bool = False,
    scale_jitter: float = 0.0,
) -> A.Compose:
    """Transform applying the same geometry to ``image`` and ``image_b``.

    ``resize_and_crop``: resize to ``load_size`` square, then crop ``crop_size`` (random
    in training, centred otherwise); ``crop``: crop only; ``resize``: resize to
    ``crop_size``; ``none``: as is. Flips only in training; ``rotate90``: then a random number
    of quarter turns (training only; with ``flip`` every rotation and reflection of the square,
    transposes included; needs square outputs, so not with ``none``). ``scale_jitter`` = s > 0
    (training, ``resize_and_crop`` or ``crop`` only): the resize before the crop (to ``load_size``,
    or of the image itself with ``crop``) is scaled by a factor drawn from [1 - s, 1 + s], never
    below ``crop_size``.
    """
    if rotate90 and preprocess == "none":
        raise ValueError("data.rotate90 needs square training images: use data.preprocess crop, resize or "
                         "resize_and_crop")
    if scale_jitter and preprocess not in ("resize_and_crop", "crop"):
        raise ValueError("data.scale_jitter scales the image before its crop: use data.preprocess resize_and_crop "
                         "or crop "
                         f"(not {preprocess!r}), or set data.scale_jitter: 0")
    jitter = scale_jitter if train else 0.0
    if preprocess == "resize_and_crop" and load_size < crop_size:
        raise ValueError(f"data.load_size ({load_size}) must be >= data.crop_size ({crop_size}) with preprocess "
                         "'resize_and_crop'")
    ops: list = []
    interp = cv2.INTER_CUBIC
    if preprocess == "resize_and_crop":
        ops.append(ScaledResize(load_size, jitter, crop_size) if jitter else A.Resize(load_size, load_size,
                                                                                      interpolation=interp))
        ops.append(A.RandomCrop(crop_size, crop_size) if train else A.CenterCrop(crop_size, crop_size))
    elif preprocess == "crop":
        if jitter:
            ops.append(ScaledResize(None, jitter, crop_size))
        ops.append(A.RandomCrop(crop_size, crop_size) if train else A.CenterCrop(crop_size, crop_size))
    elif preprocess == "resize":
        ops.append(A.Resize(crop_size, crop_size, interpolation=interp))
    elif preprocess != "none":
        raise ValueError(f"data.preprocess={preprocess!r} is not supported")
    if train and flip:
        ops.append(A.HorizontalFlip(p=0.5))
    if train and rotate90:
        ops.append(A.RandomRotate90(p=1.0))
    # save_applied_params: :func:`draw_geometry` reads the draws back for ``data.cache: device``
    return A.Compose(ops, additional_targets={"image_b": "image"}, save_applied_params=True)


def apply_paired(transform: A.Compose, a: np.ndarray, b: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``transform`` to ``a`` and ``b`` with one draw of random parameters from ``seed``."""
    transform.set_random_seed(seed)
    out = transform(image=a, image_b=b)
    return _hwc(out["image"]), _hwc(out["image_b"])


def _hwc(x: np.ndarray) -> np.ndarray:
    return x[:, :, None] if x.ndim == 2 else x


def apply_single(transform: A.Compose, img: np.ndarray, seed: int) -> np.ndarray:
    """Apply ``transform`` (built by :func:`paired_transform`) to one image with parameters from ``seed``."""
    transform.set_random_seed(seed)
    return _hwc(transform(image=img)["image"])


_PROBES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def draw_geometry(transform: A.Compose, height: int, width: int, seed: int) -> Geometry:
    """The resize, crop, flip and quarter turns ``transform`` (built by :func:`paired_transform`) draws from
    ``seed`` for an image of ``height`` x ``width``, without touching its pixels: the random
    ops are run on a one-channel stand-in of the size they see (their draws depend on the size
    only; a resize draws nothing), so the device path (:mod:`i2i.data.device`) applies exactly
    the loader path's crops and flips. About 60 us per call."""
    if not transform.transforms:
        return Geometry(box=(0, 0, height, width))
    resize = None
    first = transform.transforms[0]
    if isinstance(first, A.Resize):
        resize = (int(first.height), int(first.width))
        height, width = resize
    probe = _PROBES.get(transform)
    if probe is None:
        probe = _PROBES[transform] = A.Compose(transform.transforms[1 if resize else 0 :], save_applied_params=True)
    probe.set_random_seed(seed)
    box, flip, turns = (0, 0, height, width), False, 0
    for name, params in probe(image=np.zeros((height, width, 1), np.uint8))["applied_transforms"]:
        if name == "ScaledResize":
            resize = tuple(int(v) for v in params["out_size"])
        elif name in ("RandomCrop", "CenterCrop"):
            x0, y0, x1, y1 = (int(v) for v in params["crop_coords"])
            box = (y0, x0, y1 - y0, x1 - x0)
        elif name == "HorizontalFlip":
            flip = True
        elif name == "RandomRotate90":
            turns = int(params["factor"])  # np.rot90's sense, as Geometry's
        else:  # a transform this function does not know would be silently dropped
            raise ValueError(f"draw_geometry cannot express albumentations' {name}")
    return Geometry(box=box, resize=resize, flip=flip, quarter_turns=turns)


def draw_color(strength: float, seed: int) -> tuple[float, float, float] | None:
    """Colour jitter factors (brightness, contrast, saturation), each drawn from
    [1 - ``strength``, 1 + ``strength``] by a generator of its own seeded from ``seed`` (the
    geometry's draws are left as they were); None when ``strength`` is 0."""
    if strength <= 0:
        return None
    rng = np.random.default_rng([seed, 0xC0102])
    b, c, s = (float(v) for v in rng.uniform(1 - strength, 1 + strength, 3))
    return b, c, s


def jitter_colors(x: torch.Tensor, factors: torch.Tensor, peak: float) -> torch.Tensor:
    """Colour jitter of float ``(N, C, H, W)`` images holding levels in [0, ``peak``], with
    ``factors`` ``(N, 3)`` (brightness, contrast, saturation), as torchvision's ``ColorJitter``
    defines them and in its order without hue: scale; blend with the image's mean gray; blend with
    each pixel's gray (BT.601; one-channel images have no saturation); each step clipped to
    [0, ``peak``] as torchvision clips, the result rounded to whole levels. The one
    implementation both the loader and ``data.cache: device`` use."""
    f = factors.to(device=x.device, dtype=x.dtype)[:, :, None, None, None]
    x = (x * f[:, 0]).clamp_(0, peak)

    def gray(t: torch.Tensor) -> torch.Tensor:
        if t.shape[1] != 3:
            return t.mean(1, keepdim=True)
        w = torch.tensor(_LUMA, device=t.device, dtype=t.dtype)[None, :, None, None]
        return (t * w).sum(1, keepdim=True)

    mean = gray(x).mean((1, 2, 3), keepdim=True)
    x = ((x - mean) * f[:, 1] + mean).clamp_(0, peak)
    if x.shape[1] == 3:
        g = gray(x)
        x = (x - g) * f[:, 2] + g
    return x.clamp_(0, peak).round_()


def apply_color(img: np.ndarray, factors: tuple[float, float, float] | None) -> np.ndarray:
    """:func:`jitter_colors` on one ``(H, W, C)`` uint8/uint16 image; unchanged when ``factors`` is None."""
    if factors is None:
        return img
    peak = 65535.0 if img.dtype == np.uint16 else 255.0
    x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)).astype(np.float32))[None]
    out = jitter_colors(x, torch.tensor([factors]), peak)[0].numpy().transpose(1, 2, 0)
    return np.ascontiguousarray(out).astype(img.dtype)

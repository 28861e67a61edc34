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

from .plan import Geometry


def paired_transform(
    *, preprocess: str, load_size: int, crop_size: int, flip: bool, train: bool, rotate90: bool = False
) -> A.Compose:
    """Transform applying the same geometry to ``image`` and ``image_b``.

    ``resize_and_crop``: resize to ``load_size`` square, then crop ``crop_size`` (random
    in training, centred otherwise); ``crop``: crop only; ``resize``: resize to
    ``crop_size``; ``none``: as is. Flips only in training; ``rotate90``: then a random number
    of quarter turns (training only; with ``flip`` every rotation and reflection of the square,
    transposes included; needs square outputs, so not with ``none``).
    """
    if rotate90 and preprocess == "none":
        raise ValueError("data.rotate90 needs square training images: use data.preprocess crop, resize or resize_and_crop")
    if preprocess == "resize_and_crop" and load_size < crop_size:
        raise ValueError(f"data.load_size ({load_size}) must be >= data.crop_size ({crop_size}) with preprocess 'resize_and_crop'")
    ops: list = []
    interp = cv2.INTER_CUBIC
    if preprocess == "resize_and_crop":
        ops.append(A.Resize(load_size, load_size, interpolation=interp))
        ops.append(A.RandomCrop(crop_size, crop_size) if train else A.CenterCrop(crop_size, crop_size))
    elif preprocess == "crop":
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
        if name in ("RandomCrop", "CenterCrop"):
            x0, y0, x1, y1 = (int(v) for v in params["crop_coords"])
            box = (y0, x0, y1 - y0, x1 - x0)
        elif name == "HorizontalFlip":
            flip = True
        elif name == "RandomRotate90":
            turns = int(params["factor"])  # np.rot90's sense, as Geometry's
        else:  # a transform this function does not know would be silently dropped
            raise ValueError(f"draw_geometry cannot express albumentations' {name}")
    return Geometry(box=box, resize=resize, flip=flip, quarter_turns=turns)

"""Only a region translated: a mask chooses, per pixel, between the translation and the input.

Mask values 0..255 (or 0..65535) are weights: 0 keeps the input's pixel byte for byte, the
maximum takes the translation's, gray blends. ``feather`` (pixels) ramps the weight from 0 at the
mask's edge to its full value ``feather`` pixels inside it, monotonically, so nothing outside the
mask ever changes. For super-resolution the mask is resized to the output and the kept input is
its bicubic upscale. Alpha is never blended: the output's own (the input's, carried) is kept.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..data.io import IMAGE_EXTENSIONS, list_images, max_value, read_image, to_channels
from .types import TranslateArrays


class MaskError(ValueError):
    """A mask is missing, unreadable or of another size; the message names the files."""


def weights(mask: np.ndarray, feather: int = 0) -> np.ndarray:
    """``(H, W)`` float32 weights in [0, 1] from a mask (``(H, W[, C])`` uint8/uint16; the first
    channel, or luma for colour masks), feathered inward by ``feather`` pixels."""
    m = to_channels(mask if mask.ndim == 3 else mask[:, :, None], 1)[:, :, 0]
    w = m.astype(np.float32) / max_value(m.dtype)
    if feather > 0:
        inside = (w > 0).astype(np.uint8)
        depth = cv2.distanceTransform(inside, cv2.DIST_L2, 5)  # distance to the nearest pixel outside
        w = w * np.clip(depth / feather, 0.0, 1.0).astype(np.float32)
    return w


def composite(src: np.ndarray, out: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``w * out + (1 - w) * src`` per pixel, rounded to ``out``'s dtype: ``src`` ``(H, W[, C])``
    is brought to ``out``'s channels (and, for an upscaled ``out``, its size by bicubic), ``w``
    ``(H, W)`` to ``out``'s size. Where ``w`` is 0 the result is the (channel-matched) input
    exactly; where it is 1, ``out`` exactly; ``out``'s alpha channel is kept as it is."""
    oh, ow = out.shape[:2]
    channels = out.shape[2] if out.ndim == 3 else 1
    bg = to_channels(src if src.ndim == 3 else src[:, :, None], channels).astype(out.dtype)
    if (oh, ow) != bg.shape[:2]:
        bg = cv2.resize(bg, (ow, oh), interpolation=cv2.INTER_CUBIC).reshape(oh, ow, channels)
        w = cv2.resize(w, (ow, oh), interpolation=cv2.INTER_LINEAR)
    o = out.reshape(oh, ow, channels)
    colour = min(channels, 3)
    k = w[:, :, None]
    mixed = k * o[:, :, :colour].astype(np.float32) + (1 - k) * bg[:, :, :colour].astype(np.float32)
    res = o.copy()
    res[:, :, :colour] = np.clip(np.rint(mixed), 0, max_value(out.dtype)).astype(out.dtype)
    return res.reshape(out.shape)


class Masks:
    """The masks of a conversion: ``path`` is one mask for every image (resized to each) or a
    folder of masks matched by file stem (``photos/a.jpg`` takes ``MASKS/a.png``, any image
    format, the image's own size; a video takes one mask for all its frames the same way, or one per
    frame from a folder ``MASKS/<video stem>/``)."""

    def __init__(self, path: str | Path, feather: int = 0) -> None:
        self.path, self.feather = Path(path), feather
        if not self.path.exists():
            raise MaskError(f"mask '{self.path}' (--mask) does not exist: give one mask image or a folder of masks "
                            "named like the inputs")
        self.single = None if self.path.is_dir() else read_image(self.path)

    def _find(self, src: Path) -> Path:
        for ext in IMAGE_EXTENSIONS:
            for name in (src.stem + ext, src.stem + ext.upper()):
                if (self.path / name).is_file():
                    return self.path / name
        raise MaskError(f"'{src}': no mask named '{src.stem}.*' in '{self.path}' (--mask); add one, or give one "
                        "mask file for all")

    def weight_for(self, src: Path, size: tuple[int, int]) -> np.ndarray:
        """``(H, W)`` weights for the input ``src`` of ``size`` ``(H, W)``."""
        if self.single is not None:
            m = self.single
            if m.shape[:2] != size:
                m = cv2.resize(m, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
            return weights(m, self.feather)
        path = self._find(src)
        try:
            m = read_image(path)
        except Exception as e:  # any unreadable mask fails its image, named
            raise MaskError(f"'{src}': its mask '{path}' cannot be read ({e})") from None
        if m.shape[:2] != size:
            raise MaskError(f"'{src}': its mask '{path}' is {m.shape[1]}x{m.shape[0]}, the image {size[1]}x{size[0]}; "
                            "a mask per image must have the image's size (one mask file for all is resized)")
        return weights(m, self.feather)

    def apply(self, src_path: Path, src: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``out`` (the translation of ``src``, read from ``src_path``) with the mask applied."""
        return composite(src, out, self.weight_for(src_path, src.shape[:2]))

    def wrap(self, translate: TranslateArrays, src_path: Path) -> TranslateArrays:
        """``translate`` for the frames of the video ``src_path``, each result masked: by the one
        mask file, by ``MASKS/<video stem>.*`` for every frame, or frame by frame by the images of a
        folder ``MASKS/<video stem>/`` in name order (one per frame)."""
        per_frame = None if self.single is not None else self.path / src_path.stem
        frames_masks = list_images(per_frame) if per_frame is not None and per_frame.is_dir() else None
        cache: dict[tuple[int, int], np.ndarray] = {}
        seen = [0]

        def weight(size: tuple[int, int]) -> np.ndarray:
            if frames_masks is None:
                if size not in cache:
                    cache[size] = self.weight_for(src_path, size)
                return cache[size]
            k = seen[0]
            if k >= len(frames_masks):
                raise MaskError(f"'{src_path}': frame {k} has no mask: '{per_frame}' holds {len(frames_masks)} "
                                "(one per frame, in name order)")
            m = read_image(frames_masks[k])
            if m.shape[:2] != size:
                raise MaskError(f"'{src_path}': the mask of frame {k}, '{frames_masks[k]}', is "
                                f"{m.shape[1]}x{m.shape[0]}, the frame {size[1]}x{size[0]}")
            return weights(m, self.feather)

        def masked(frames: list[np.ndarray]) -> list[np.ndarray]:
            outs = translate(frames)
            for i, (f, o) in enumerate(zip(frames, outs)):
                outs[i] = composite(f, o, weight(f.shape[:2]))
                seen[0] += 1
            return outs

        return masked

"""Classical methods as baselines for paired evaluation (``i2i eval --classical``).

A learned restoration is worth training only where it beats what one library call does, so
``i2i eval`` can put a classical method on the results page beside the trained model. Each
method here has one strength parameter, chosen on the evaluated pairs for the best mean PSNR
(an oracle choice, which flatters the classical method: the trained model gets no such help).

- ``nlm``: OpenCV's non-local-means denoiser (Buades et al. 2005;
  ``cv2.fastNlMeansDenoisingColored`` for colour, ``cv2.fastNlMeansDenoising`` for gray; 7x7
  patches, 21x21 search window, the colour components at the strength of the luma), over
  :data:`NLM_STRENGTHS`. It works on 8-bit images: inputs are quantised to 8 bits first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from .. import metrics
from ..data.io import from_tensor, to_tensor

NLM_STRENGTHS: tuple[float, ...] = (3, 5, 7, 10, 12, 15, 18, 21, 25, 30)
"""The filter strengths ``h`` (8-bit levels) the non-local-means baseline tries."""


def nonlocal_means(x: torch.Tensor, h: float) -> torch.Tensor:
    """OpenCV's non-local means of one ``(1, C, H, W)`` image in [-1, 1] (C = 1 or 3), at filter
    strength ``h`` in 8-bit levels; the same shape in [-1, 1], 8-bit values."""
    if x.dim() != 4 or x.shape[0] != 1 or x.shape[1] not in (1, 3):
        raise ValueError(f"non-local means takes one gray or RGB image (1, 1 or 3, H, W), got {tuple(x.shape)}")
    u8 = np.ascontiguousarray(from_tensor(x[0]))
    if u8.shape[2] == 3:
        out = cv2.fastNlMeansDenoisingColored(u8, None, float(h), float(h), 7, 21)
    else:
        out = cv2.fastNlMeansDenoising(u8[:, :, 0], None, float(h), 7, 21)
    return to_tensor(out)[None]


@dataclass(frozen=True)
class Classical:
    """A classical method: ``run(image, strength)`` on one ``(1, C, H, W)`` image in [-1, 1], the
    ``strengths`` tried, and how the page names it (``label`` % the strength chosen)."""

    run: Callable[[torch.Tensor, float], torch.Tensor]
    strengths: tuple[float, ...]
    label: str
    description: str


METHODS: dict[str, Classical] = {
    "nlm": Classical(nonlocal_means, NLM_STRENGTHS, "non-local means h=%g",
                     "OpenCV's non-local-means denoiser (fastNlMeansDenoisingColored, 7x7 patches, 21x21 search), "
                     "its strength h chosen from %s for the best mean PSNR on these pairs"),
}


def best_classical(method: str, inputs: Sequence[torch.Tensor], targets: Sequence[torch.Tensor]
                   ) -> tuple[float, list[torch.Tensor]]:
    """The strength of ``method`` (a key of :data:`METHODS`) with the best mean PSNR of its outputs
    on ``inputs`` against ``targets`` (lists of ``(1, C, H, W)`` in [-1, 1], any sizes, C = 1 or 3,
    the same channels in and out), and those outputs."""
    if method not in METHODS:
        raise ValueError(f"--classical {method!r} is not a classical method i2i knows; choose from "
                         f"{', '.join(METHODS)}")
    if not inputs:
        raise ValueError("--classical: there are no pairs to evaluate")
    for x, y in zip(inputs, targets):
        if x.shape[1] != y.shape[1] or x.shape[1] not in (1, 3):
            raise ValueError(f"--classical {method} restores an image of the target's kind: it needs inputs and "
                             f"targets with the same channels, 1 or 3 (here {x.shape[1]} -> {y.shape[1]}); leave "
                             "--classical out for this model")
    m = METHODS[method]
    best: tuple[float, float, list[torch.Tensor]] | None = None
    for s in m.strengths:
        outs = [m.run(x, s) for x in inputs]
        score = float(torch.cat([metrics.psnr(o, y) for o, y in zip(outs, targets)]).mean())
        if best is None or score > best[0]:
            best = (score, s, outs)
    assert best is not None
    return best[1], best[2]

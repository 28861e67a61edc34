"""Pretrained weights that i2i uses but does not train (VGG19 for the perceptual loss, Inception
for FID, LPIPS's nets, published generators): reading a bare state-dict file safely, finding a
file in torchvision's cache, and the input convention of the ImageNet-trained nets.

i2i never downloads weights by itself (``i2i download`` does, when asked) and never falls back to
random weights: a missing file is a ``FileNotFoundError`` saying which file to put where.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import torch

from .hints import first_line


class CheckpointError(ValueError):
    """A checkpoint or weights file is missing, corrupt, or does not fit what it is loaded into."""


def load_state_file(path: str | Path, what: str, *, wrappers: tuple[str, ...] = ()) -> dict[str, Any]:
    """A bare state dict file (pretrained weights: VGG, Inception, a reference generator) read
    with ``weights_only=True`` (no code runs). Empty, truncated, foreign or malicious files
    raise :class:`CheckpointError` naming the file and ``what`` it was meant to be.
    ``wrappers``: keys under which the state dict may sit instead (BasicSR's ``params_ema`` /
    ``params``); such a file is returned as it is, its wrapper keys holding dicts of tensors."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"'{path}' is a folder; {what} must be a weights file (.pth)")
    if not path.is_file():
        raise FileNotFoundError(f"{what} '{path}' does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for truncated / corrupt / unsafe files
        raise CheckpointError(f"'{path}' cannot be read as {what} ({type(e).__name__}: {first_line(e)}); "
                              "it may be truncated, another kind of file, or hold objects other than tensors: "
                              "download or export it again") from None
    if isinstance(state, dict) and any(isinstance(state.get(k), dict) for k in wrappers):
        inner = [state[k] for k in wrappers if isinstance(state.get(k), dict)]
        if all(isinstance(v, torch.Tensor) for d in inner for v in d.values()):
            return state
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"'{path}' holds a {type(state).__name__}, not a state dict of tensors; {what} is "
                              "expected")
    return state


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@functools.lru_cache(maxsize=16)
def _imagenet_stats(device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """The ImageNet mean and std as ``(1, 3, 1, 1)`` tensors on ``device``, made once per device
    and dtype (a tensor built from a list on CUDA is a synchronising copy, every call)."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=dtype, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=dtype, device=device).view(1, 3, 1, 1)
    return mean, std


def imagenet_normalize(x: torch.Tensor) -> torch.Tensor:
    """``(N, 3, H, W)`` in [-1, 1] -> ImageNet-normalised input for torchvision's classifiers."""
    mean, std = _imagenet_stats(x.device, x.dtype)
    return ((x + 1) / 2 - mean) / std


def torchvision_cached_weights(file: str, *, needed_for: str, otherwise: str, url: str | None = None) -> str:
    """Path of the cached weights ``file`` (``<torch hub>/checkpoints/file``, torchvision's cache).

    Raises ``FileNotFoundError`` saying where to put which download (``url``, by default
    torchvision's) and what else to do; i2i never downloads weights by itself (``i2i
    download`` does, when asked) and never falls back to random ones.
    """
    path = os.path.join(torch.hub.get_dir(), "checkpoints", file)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{needed_for} needs '{path}', which does not exist. Download "
            f"{url or 'https://download.pytorch.org/models/' + file} "
            f"and save it there (torchvision's cache), {otherwise}. i2i never downloads weights by itself"
        )
    return path

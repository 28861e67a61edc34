"""Declared option types, shared by config sections and net constructors.

A numeric option carries its allowed range in its annotation, ``Annotated[int, Range(1, 12)]``,
whether it is a config dataclass field or a keyword of a net's constructor; the config loader
reads the range from there, so a new option brings its own check (and a test fails for a
numeric option without one). A choice list is one ``Literal`` type; code that needs its values
derives them with :func:`choices`. Nets import this module; it imports nothing of i2i.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal


@dataclass(frozen=True)
class Range:
    """Allowed values of a number: ``low`` .. ``high`` (None: unbounded), each end closed unless
    ``low_open`` / ``high_open``."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        lo, hi = self.low, self.high
        if lo is not None and (value < lo or (self.low_open and value == lo)):
            return False
        return not (hi is not None and (value > hi or (self.high_open and value == hi)))

    def describe(self) -> str:
        """``[0, 1)``, ``>= 1``, ``> 0`` or ``<= 5``."""
        lo, hi = self.low, self.high
        if lo is not None and hi is not None:
            return f"{'(' if self.low_open else '['}{lo:g}, {hi:g}{')' if self.high_open else ']'}"
        if lo is not None:
            return f"{'>' if self.low_open else '>='} {lo:g}"
        if hi is not None:
            return f"{'<' if self.high_open else '<='} {hi:g}"
        return "any number"


def range_of(annotation: Any) -> Range | None:
    """The :class:`Range` an annotation declares (``Annotated[int, Range(...)]``, also inside
    ``Annotated[...] | None``), or None."""
    if typing.get_origin(annotation) is Annotated:
        return next((m for m in annotation.__metadata__ if isinstance(m, Range)), None)
    for arg in typing.get_args(annotation):
        found = range_of(arg)
        if found is not None:
            return found
    return None


def is_numeric(annotation: Any) -> bool:
    """Whether an annotation admits an int or a float (bool excluded), e.g. ``int | None``."""
    if annotation in (int, float):
        return True
    if typing.get_origin(annotation) is Literal:
        return False
    return any(is_numeric(a) for a in typing.get_args(annotation))


def strip_annotated(annotation: Any) -> Any:
    """``Annotated[T, ...]`` -> ``T`` (also inside unions); other annotations unchanged."""
    if typing.get_origin(annotation) is Annotated:
        return strip_annotated(typing.get_args(annotation)[0])
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and args:
        stripped = tuple(strip_annotated(a) for a in args)
        return typing.Union[stripped]  # noqa: UP007 - a union built from a tuple of types
    return annotation


def choices(literal: Any) -> tuple[str, ...]:
    """The values of a ``Literal`` choice type."""
    return typing.get_args(literal)


def check_finite(value: Any) -> bool:
    """False for NaN and infinities, True for every other value."""
    return not (isinstance(value, float) and not math.isfinite(value))


# ----------------------------------------------------------------------------- choice lists
Norm = Literal["batch", "instance", "none"]
"""Normalisation layers (:func:`i2i.nets.blocks.make_norm`)."""
BatchOrNone = Literal["batch", "none"]
Init = Literal["normal", "xavier", "kaiming", "orthogonal", "default"]
"""Weight initialisations (:func:`i2i.nets.blocks.init_weights`)."""
GANMode = Literal["vanilla", "lsgan", "hinge", "wgangp", "ragan"]
"""Adversarial objectives (:class:`i2i.losses.GANLoss`)."""
TestMode = Literal["eval", "paper"]
"""Inference behaviour: running statistics without dropout, or pix2pix's batch statistics with dropout."""
Precision = Literal["fp32", "bf16", "fp16"]
"""Inference autocast precision (``i2i convert --precision``, :class:`i2i.Translator`)."""
Amp = Literal["none", "bf16", "fp16"]
"""Training autocast precision (``train.amp``)."""

# ----------------------------------------------------------------------------- numeric options
ImageChannels = Annotated[int, Range(1, 4)]
"""Channels of an image: 1 (gray) to 4 (RGBA)."""
JudgedChannels = Annotated[int, Range(1, 8)]
"""Channels a discriminator judges: an image, or a conditional pair of images side by side."""
Classes = Annotated[int, Range(0, 100000)]
"""Classes of a class-conditional model (0: unconditional)."""
Width = Annotated[int, Range(1, 1024)]
"""Feature channels of a net's first layer (``base_channels``)."""
AttentionStride = Annotated[int, Range(0, 4096)]
"""Where self-attention sits: at feature maps of 1/stride of the image's side (0: none)."""
GroupSize = Annotated[int, Range(0, 4096)]
"""Minibatch-std group size (0: off)."""
Blocks = Annotated[int, Range(0, 128)]
"""Residual blocks of a generator."""
LossWeight = Annotated[float, Range(0, 1e6)]
"""Weight of a loss term (0: off)."""
ImageSize = Annotated[int, Range(8, 4096)]
"""Side of a square image in pixels."""
Pixels = Annotated[int, Range(1, 16384)]
"""A size in pixels (load and crop sizes)."""

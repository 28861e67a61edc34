"""Declared option types, shared by config sections and net constructors.

A numeric option carries its allowed range in its annotation, ``Annotated[int, Range(1, 12)]``,
whether it is a config dataclass field or a keyword of a net's constructor; the config loader
reads the range from there, so a new option brings its own check (and a test fails for a
numeric option without one). A choice list is one ``Literal`` type; code that needs its values
derives them with :func:`choices`. Nets import this module; it imports nothing of i2i but :mod:`i2i.hints`.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from .hints import did_you_mean


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
Precision = Literal["fp32", "bf16", "fp16", "int8"]
"""Inference precision (``i2i convert --precision``, :class:`i2i.Translator`): autocast with the torch
runtimes, a compile option with OpenVINO; int8 is OpenVINO's calibrated quantization."""
Runtime = Literal["torch", "compile", "onnxruntime", "openvino"]
"""What runs a generator at inference (``--runtime``, :mod:`i2i.runtimes`)."""
Amp = Literal["none", "bf16", "fp16"]
"""Training autocast precision (``train.amp``)."""
AUGMENTATIONS = ("color", "translation", "cutout", "flip", "rot90")
"""What ``loss.augment_policy`` lists, comma-separated (:mod:`i2i.augment`)."""


def parse_policy(text: str) -> tuple[str, ...]:
    """The transform names of a comma-separated ``loss.augment_policy`` ('' -> none); an
    unknown name is a ``ValueError`` listing the choices."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in AUGMENTATIONS]
    if unknown:
        shown = ", ".join(repr(n if len(n) <= 40 else n[:37] + "...") for n in unknown[:5]) + (
            ", ..." if len(unknown) > 5 else ""
        )
        hint = did_you_mean(unknown[0], AUGMENTATIONS) if len(unknown[0]) <= 40 else ""
        raise ValueError(f"unknown augmentation {shown}{hint}; choose from {', '.join(AUGMENTATIONS)} "
                         "(comma-separated, e.g. 'color,translation,cutout')")
    return names

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


# ----------------------------------------------------------------------------- options dataclasses
def option(default: Any = dataclasses.MISSING, *, help: str, default_factory: Any = dataclasses.MISSING,
           parse: Any = None, metavar: str | None = None, group: str | None = None, cli: bool = True) -> Any:
    """A field of an options dataclass (:class:`i2i.convert.ConvertOptions`, :class:`i2i.convert.video.VideoOptions`,
    :class:`i2i.evaluate.EvalOptions`), declared once with what the command line needs: its ``help``,
    a ``parse`` function for the flag's text (default: from the annotation), a ``metavar``, the
    help ``group`` it is listed in, and ``cli=False`` for a field with no flag. The flag is the
    field's name with dashes (``batch_size`` -> ``--batch-size``); its type, range and choices come
    from the annotation, as for config fields."""
    meta = {"help": help, "parse": parse, "metavar": metavar, "group": group, "cli": cli}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=meta)


def flag(name: str) -> str:
    """The command-line flag of option ``name``: ``batch_size`` -> ``--batch-size``."""
    return "--" + name.replace("_", "-")


def check_fields(obj: Any) -> None:
    """Check the numbers and choices of an options dataclass against its annotations (ranges,
    ``Literal`` choices; NaN and infinities refused); a ``ValueError`` names the field and its flag."""
    hints = typing.get_type_hints(type(obj), include_extras=True)
    for f in dataclasses.fields(obj):
        value, hint = getattr(obj, f.name), hints[f.name]
        where = f"{f.name}={value!r} ({flag(f.name)})"
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            allowed = range_of(hint)
            if not check_finite(value) or (allowed is not None and value not in allowed):
                raise ValueError(f"{where} must be a finite number" + (f" in {allowed.describe()}" if allowed else ""))
        literal = next((a for a in (hint, *typing.get_args(strip_annotated(hint))) if typing.get_origin(a) is Literal),
                       None)
        if literal is not None and value is not None and value not in typing.get_args(literal):
            raise ValueError(f"{where} must be one of {', '.join(map(str, typing.get_args(literal)))}")

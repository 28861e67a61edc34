"""The options of a conversion, declared once: ``i2i convert``'s flags are made from these fields
(help, type, range, choices), and the Python API (``Translator.convert_folder(src, dst, options)``,
:func:`i2i.convert.convert`) and torchrun's shards take the same dataclass. What the model does
(direction, tiles, precision, device) belongs to the translator, not here."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Annotated, Literal

from ..data.io import IMAGE_EXTENSIONS
from ..options import Range, check_fields, option
from .video.options import VideoOptions


def image_format(text: str) -> str:
    """An image format written ``png``, ``.png`` or ``PNG`` -> ``png`` (the type of ``--ext`` and
    ``i2i sample --format``); ``argparse.ArgumentTypeError`` for a format i2i does not write."""
    fmt = text.lower().lstrip(".")
    if "." + fmt not in IMAGE_EXTENSIONS:
        raise argparse.ArgumentTypeError(f"{text!r} is not an image format i2i writes; use one of "
                                         f"{', '.join(e[1:] for e in IMAGE_EXTENSIONS)}")
    return fmt


@dataclass(frozen=True)
class ConvertOptions:
    """How a conversion names, writes, batches and resumes its outputs. Checked when made (ranges
    and choices, naming the field and its flag); ``dataclasses.replace(options, batch_size=1)`` makes a variant.

    Images: ``ext`` (output format; None: the input's), ``name`` (a pattern of ``{stem}``, ``{ext}``,
    ``{suffix}``; outputs mirror the input's sub-folders), ``bit_depth`` (``same`` keeps 16 bits where
    the format holds them), ``batch_size`` (images of equal size translated together; a video's
    frames too), ``workers`` (decoding processes; None: the cores torch's threads leave free, at
    most 4), ``skip_existing`` (resume: outputs are written atomically, so one that exists is
    complete), ``metadata`` (what of the input's EXIF, ICC, XMP, IPTC the output keeps:
    :mod:`i2i.data.metadata`), ``mask`` and ``feather`` (only a region translated: :mod:`i2i.convert.masks`),
    ``allow_inside_input``, ``progress`` (bars on stderr). Videos: ``video_ext``,
    ``frames_out`` (PNG frames in a folder per video), ``to_video`` with ``fps`` (the input's
    images made into one video), ``temporal`` (``flow``: outputs stabilised over time,
    :mod:`i2i.convert.video.temporal`), ``video`` (the encoder's :class:`VideoOptions`)."""

    ext: str | None = option(None, parse=image_format, help="output format, e.g. png (None: same as input)")
    name: str = option("{stem}{ext}", help="output file name pattern with fields {stem}, {ext}, {suffix}")
    bit_depth: Literal["same", "8", "16"] = option("same", help="same: 16-bit in -> 16-bit out where the format allows")
    batch_size: Annotated[int, Range(1, 65536)] = option(8,
                                                         help="images of equal size (or video frames) translated "
                                                              "together")
    workers: Annotated[int, Range(0, 256)] | None = option(None,
                                                           help="background decoding processes (0: decode in the main "
                                                                  "process; None: the cores torch's threads leave "
                                                                  "free, at most 4)")
    skip_existing: bool = option(False, help="skip inputs whose output exists (resume an interrupted run)")
    metadata: Literal["keep", "strip", "none"] = option(
        "keep", help="keep: EXIF (orientation reset, sizes updated, thumbnail dropped), ICC, XMP and IPTC carried "
                     "into JPEG / PNG / WebP outputs, ICC, XMP, IPTC and GeoTIFF tags into TIFF (i2i[tiff]), a "
                     "DICOM header into DICOM as a derived image (i2i[dicom]); strip: the ICC profile only (colours "
                     "stay right; no DICOM output); none")
    mask: str | None = option(None, metavar="PATH",
                              help="translate only a region: one mask image for all inputs, or a folder of masks "
                                   "named like them (0 keeps the input byte for byte, 255 takes the translation, "
                                   "gray blends)")
    feather: Annotated[int, Range(0, 4096)] = option(0, metavar="PX",
                                                     help="--mask: ramp the mask up over this many pixels inside "
                                                          "its edge (nothing outside it changes)")
    allow_inside_input: bool = option(False, help="allow an output folder inside the input folder")
    progress: bool = option(False, cli=False,
                            help="progress bars on stderr (the command line shows them unless --quiet)")
    video_ext: str | None = option(None, group="videos", help="output container (.mp4, .m4v, .mov, .mkv, .webm, .avi; "
                                                              "None: the source's, .mp4 for GIF)")
    frames_out: bool = option(False, group="videos",
                              help="write each video's frames as PNGs in a folder OUTPUT/<name>/ instead")
    to_video: str | None = option(None, group="videos", metavar="NAME",
                                  help="make one video OUTPUT/NAME (e.g. out.mp4) of the input images translated in "
                                       "name order "
                                       "(needs --fps)")
    fps: Annotated[float, Range(0.01, 1000)] | None = option(None, group="videos", help="frame rate for --to-video")
    temporal: Literal["off", "flow"] = option(
        "off", group="videos", help="flow: keep videos stable over time (the previous output warped along the "
                                    "input's optical flow and blended where the input agrees; cuts reset it); "
                                    "off: every frame alone")
    video: VideoOptions = option(default_factory=VideoOptions, help="how videos are encoded")

    def __post_init__(self) -> None:
        check_fields(self)

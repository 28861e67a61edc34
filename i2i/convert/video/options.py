"""What videos i2i reads and how it writes them: suffixes, containers, the encoder options
(codec, quality, pixel format, preset) with their defaults, and the statistics of a conversion."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Annotated

import av

from ...options import Range, check_fields, option

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".gif")
"""Input suffixes read as videos (animated GIF included)."""

CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}
"""Output suffixes and FFmpeg's muxer for each (a video is never written as GIF: 256 colours)."""

DEFAULT_CRF = {"libx264": 18, "libx264rgb": 18, "libx265": 20, "libvpx-vp9": 24, "libsvtav1": 26}
"""The default quality per codec: visually transparent (x264's CRF 18 is the usual "visually
lossless" setting; the others are its equivalents in their codecs' scales). Codecs not listed
take no ``crf``."""

LOSSLESS_RGB = ("ffv1", "png", "libx264rgb", "ffvhuff", "utvideo", "qtrle")
"""Codecs that can store RGB without a colour matrix: their default pixel format is RGB."""

_SUBSAMPLED = ("yuv420", "yuv422", "yuv411", "yuv410", "yuv440", "nv12", "nv16", "nv21")


class VideoError(ValueError):
    """A video that cannot be read or written as asked; the message names the file and what to do."""


def is_video_file(path: str | Path) -> bool:
    """Whether ``path`` has a video suffix (:data:`VIDEO_EXTENSIONS`)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def output_suffix(src: str | Path, video_ext: str | None = None) -> str:
    """The output suffix of video ``src``: ``video_ext`` when given, else the source's own
    container, except animated GIF (written as .mp4)."""
    if video_ext is not None:
        ext = video_ext.lower() if video_ext.startswith(".") else "." + video_ext.lower()
        if ext not in CONTAINERS:
            raise ValueError(f"video_ext={video_ext!r} (--video-ext) is not a video container i2i writes; use one of "
                             f"{', '.join(CONTAINERS)}")
        return ext
    suffix = Path(src).suffix.lower()
    return suffix if suffix in CONTAINERS else ".mp4"


@dataclass
class VideoOptions:
    """How videos are encoded. ``codec`` None: libvpx-vp9 for .webm, libx264 otherwise; ``crf``
    None: :data:`DEFAULT_CRF` of the codec; ``pix_fmt`` None: yuv420p (yuv420p10le for sources
    of more than 8 bits where the codec has it; yuv444p for odd frame sizes; RGB for the
    lossless codecs of :data:`LOSSLESS_RGB`); ``preset`` an encoder speed preset (x264 / x265:
    ultrafast .. veryslow; None: the encoder's default)."""

    codec: str | None = option(None, group="videos",
                               help="video encoder, e.g. libx264, libx265, libvpx-vp9, ffv1 (lossless); "
                                    "None: libx264 (libvpx-vp9 for .webm)")
    crf: Annotated[int, Range(0, None)] | None = option(None, group="videos",
                                                        help="constant quality, lower is better (None: "
                                                        + ", ".join(f"{k} {n}" for k, n in DEFAULT_CRF.items()) + ")")
    pix_fmt: str | None = option(None, group="videos",
                                 help="pixel format, e.g. yuv420p, yuv444p, yuv420p10le (None: yuv420p; "
                                        "10-bit for sources of more than 8 bits; RGB for lossless codecs)")
    preset: str | None = option(None, group="videos", help="encoder speed preset, e.g. ultrafast .. veryslow for x264 "
                                                            "(None: its default)")

    def __post_init__(self) -> None:
        check_fields(self)
        for name in ("codec", "pix_fmt", "preset"):
            if getattr(self, name) is not None and not getattr(self, name).strip():
                raise ValueError(f"{name}={getattr(self, name)!r} (--{name.replace('_', '-')}) is empty; "
                                 "leave it out for the default")

    def check_encoder(self, suffix: str) -> None:
        """Open the encoder once, on a small frame, with these options for a ``suffix`` container, so
        that a wrong codec, CRF, preset or pixel format is refused before any work, naming the option,
        instead of failing every video. Raises :class:`VideoError`."""
        codec = self.codec_for(suffix)
        options = self.encoder_options(codec)
        ctx = av.CodecContext.create(codec, "w")
        ctx.width = ctx.height = 64
        ctx.pix_fmt = self.pix_fmt_for(codec, deep=False, width=64, height=64)
        ctx.time_base = Fraction(1, 25)
        ctx.options = options
        try:
            ctx.open()
        except av.FFmpegError as e:
            raise VideoError(f"the {codec} encoder refuses these options for a {suffix} file: {options} "
                             f"({getattr(e, 'strerror', None) or e}); check --preset, --crf and --pix-fmt") from None

    def codec_for(self, suffix: str) -> str:
        """The encoder for a container suffix; raises when FFmpeg lacks it."""
        name = self.codec or ("libvpx-vp9" if suffix == ".webm" else "libx264")
        try:
            codec = av.Codec(name, "w")
        except Exception:
            raise VideoError(f"codec {name!r} (--codec) is not an encoder this FFmpeg has; try libx264, libx265, "
                             "libvpx-vp9, "
                             "ffv1 (lossless) or mpeg4") from None
        if codec.type != "video":
            raise VideoError(f"codec {name!r} (--codec) encodes {codec.type}, not video")
        return name

    def encoder_options(self, codec: str) -> dict[str, str]:
        """FFmpeg options for ``codec``: its CRF and preset."""
        opts: dict[str, str] = {}
        crf = self.crf if self.crf is not None else DEFAULT_CRF.get(codec)
        if crf is not None:
            if codec not in DEFAULT_CRF:
                raise VideoError(f"--crf is not an option of codec {codec!r}; use it with {', '.join(DEFAULT_CRF)}")
            top = 51 if codec.startswith(("libx264", "libx265")) else 63
            if not 0 <= crf <= top:
                raise VideoError(f"--crf {crf} is outside codec {codec!r}'s range 0-{top} (lower is better; default "
                                 f"{DEFAULT_CRF[codec]})")
            opts["crf"] = str(crf)
            if codec == "libvpx-vp9":
                opts["b"] = "0"  # constant quality, no bitrate cap
        if self.preset is not None:
            opts["preset"] = self.preset
        if codec == "libx265":
            opts["x265-params"] = "log-level=error"  # x265 prints ~25 lines per video otherwise
        return opts

    def pix_fmt_for(self, codec: str, *, deep: bool, width: int, height: int) -> str:
        """The pixel format to encode ``width x height`` frames with (``deep``: the source has
        more than 8 bits per sample)."""
        formats = [f.name for f in (av.Codec(codec, "w").video_formats or [])]
        odd = width % 2 or height % 2
        if self.pix_fmt is not None:
            if formats and self.pix_fmt not in formats:
                raise VideoError(f"codec {codec!r} cannot encode pixel format {self.pix_fmt!r} (--pix-fmt); it takes "
                                 f"{', '.join(formats)}")
            if odd and self.pix_fmt.startswith(_SUBSAMPLED):
                raise VideoError(f"pixel format {self.pix_fmt!r} (--pix-fmt) halves the colour resolution, which needs "
                                 "an even "
                                 f"frame size, and the output frames are {width}x{height}; use yuv444p or leave "
                                 "--pix-fmt out")
            return self.pix_fmt
        if codec in LOSSLESS_RGB:
            prefs = ["gbrp10le", "gbrp16le", "rgb48be", "rgb48le"] if deep else []
            prefs += ["gbrp", "bgr0", "rgb24"]
        else:
            prefs = (["yuv444p10le"] if odd else ["yuv420p10le"]) if deep else []
            prefs += ["yuv444p"] if odd else ["yuv420p"]
        for p in prefs:
            if not formats or p in formats:
                return p
        return formats[0]


@dataclass
class VideoStats:
    """One converted video: frames written, seconds in all and per stage (decode: demux, decode
    and conversion to RGB arrays; translate; encode: conversion from RGB, encode and mux; the
    stages overlap in threads, so they add up to more than the total); ``warping``: with
    ``--temporal flow``, the mean warping error (8-bit levels) of the input, the per-frame and the
    stabilised output, and the scene cuts found."""

    frames: int = 0
    seconds: float = 0.0
    decode: float = 0.0
    translate: float = 0.0
    encode: float = 0.0
    copied_streams: list[str] = field(default_factory=list)
    warping: dict[str, float] = field(default_factory=dict)  # --temporal flow: input / per-frame / stabilised, cuts

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Timing:
    """What the output video takes from its source: the frame rate (for players and the encoder),
    the time base of the frames' timestamps, and the colour tags (FFmpeg's integer codes of
    ``colorspace``, ``color_range``, ``color_primaries``, ``color_trc``; 0 or absent: unspecified)."""

    rate: Fraction
    time_base: Fraction
    colour: tuple[tuple[str, int], ...] = ()



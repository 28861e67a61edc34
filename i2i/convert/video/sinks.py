"""Where translated frames go: a :class:`Sink` takes batches of frames (with their timestamps) and
the source's other packets, in order, from one writer thread, and either finishes or abandons.
:class:`VideoSink` encodes a video with the source's other streams copied; :class:`FrameSink`
writes numbered PNGs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Protocol

import av
import numpy as np

from ...data.io import write_image
from .options import CONTAINERS, Timing, VideoError, VideoOptions, VideoStats


class Sink(Protocol):
    """What the writer thread of :mod:`.stream` calls, in this order: :meth:`frames` and
    :meth:`packet` as items arrive, then :meth:`finish` once (an error there fails the video) or,
    when anything failed, :meth:`abandon` (which must not raise)."""

    def frames(self, arrays: list[np.ndarray], stamps: list[tuple[Any, Any]]) -> None:
        """Translated ``(H, W[, C])`` uint8/uint16 frames with their ``(pts, time_base)``."""

    def packet(self, packet: Any) -> None:
        """A packet of a copied stream (audio, subtitles, data), in the source's order."""

    def finish(self) -> None:
        """Flush and close; raises :class:`VideoError` when nothing usable was written."""

    def abandon(self) -> None:
        """Close whatever was opened; the caller removes the temporary output."""


def _rgb(arr: np.ndarray) -> np.ndarray:
    """A translated frame as contiguous 3-channel RGB (gray repeated, alpha dropped)."""
    if arr.ndim == 2 or arr.shape[2] == 1:
        arr = np.repeat(arr.reshape(arr.shape[0], arr.shape[1], 1), 3, axis=2)
    return np.ascontiguousarray(arr[:, :, :3])


class VideoSink:
    """The output container with the source's streams in the source's order: the video stream
    (its size and pixel format set on the first frame, the translated size) and the copied
    ones; packets that come before the first frame are held back until then."""

    def __init__(self, tmp: Path, dst: Path, source: Path | None, timing: Timing, copied: list[Any],
                 options: VideoOptions,
                 stats: VideoStats, video_index: int = 0) -> None:
        suffix = dst.suffix.lower()
        self.codec = options.codec_for(suffix)
        self.container = av.open(str(tmp), "w", format=CONTAINERS[suffix])
        self.source, self.timing, self.options, self.stats, self.dst = source, timing, options, stats, dst
        self.map: dict[int, Any] = {}
        self.stream: Any = None
        for s in sorted(copied, key=lambda s: s.index) + [None]:
            if self.stream is None and (s is None or s.index > video_index):
                self.stream = self.container.add_stream(self.codec, rate=timing.rate,
                                                        options=options.encoder_options(self.codec))
            if s is None:
                break
            try:
                self.map[s.index] = self.container.add_stream_from_template(s)
            except Exception as e:
                self.container.close()
                raise VideoError(f"{s.type} stream {s.index} ({s.codec_context.name}) of '{source}' cannot be "
                                 "copied into "
                                 f"a {suffix} file ({e}); choose a container that holds it, e.g. "
                                 "--video-ext .mkv") from None
            stats.copied_streams.append(f"{s.type}:{s.codec_context.name}")
        self.video: Any = None
        self.held: list[Any] = []

    def _start(self, width: int, height: int, deep: bool) -> None:
        v = self.stream
        v.width, v.height = width, height
        v.pix_fmt = self.options.pix_fmt_for(self.codec, deep=deep, width=width, height=height)
        v.time_base = self.timing.time_base
        v.codec_context.time_base = self.timing.time_base
        self.rgb_out = v.pix_fmt.startswith(("gbr", "bgr", "rgb"))
        colour = dict(self.timing.colour)
        if not self.rgb_out:
            for key, value in colour.items():
                setattr(v.codec_context, key, value)
        self.matrix = {"dst_colorspace": colour.get("colorspace"), "dst_color_range": colour.get("color_range")}
        try:
            v.codec_context.open()
        except av.FFmpegError as e:
            raise VideoError(f"the {self.codec} encoder refused {v.pix_fmt} {width}x{height} with options "
                             f"{self.options.encoder_options(self.codec)} for '{self.dst}' ({e.strerror}); check "
                             "--codec, --crf, "
                             "--preset and --pix-fmt") from None
        self.video = v
        for packet in self.held:
            self.packet(packet)
        self.held = []

    def frames(self, arrays: list[np.ndarray], stamps: list[tuple[Any, Any]]) -> None:
        t = time.perf_counter()
        for arr, (pts, tb) in zip(arrays, stamps):
            arr = _rgb(arr)
            if self.video is None:
                self._start(arr.shape[1], arr.shape[0], arr.dtype == np.uint16)
            elif (arr.shape[1], arr.shape[0]) != (self.video.width, self.video.height):
                raise VideoError(f"'{self.source}' changes its frame size mid-stream (from {self.video.width}x"
                                 f"{self.video.height} to {arr.shape[1]}x{arr.shape[0]} at frame "
                                 f"{self.stats.frames + 1}); a video file holds one size: convert it with "
                                 "--frames-out, or split it where the size changes")
            frame = av.VideoFrame.from_ndarray(arr, format="rgb48le" if arr.dtype == np.uint16 else "rgb24")
            if not self.rgb_out:  # by the source's matrix and range (the encoder would assume its defaults)
                frame = frame.reformat(format=self.video.pix_fmt, **self.matrix)
            frame.pts, frame.time_base = pts, tb
            self.container.mux(self.video.encode(frame))
            self.stats.frames += 1
        self.stats.encode += time.perf_counter() - t

    def packet(self, packet: Any) -> None:
        if self.video is None:
            self.held.append(packet)
        else:
            packet.stream = self.map[packet.stream_index]
            self.container.mux(packet)

    def finish(self) -> None:
        t = time.perf_counter()
        if self.video is None:
            raise VideoError(f"'{self.source}' has no frames that decode")
        self.container.mux(self.video.encode(None))
        self.container.close()
        self.stats.encode += time.perf_counter() - t

    def abandon(self) -> None:
        try:
            self.container.close()
        except Exception:  # an output never started or half written: it is removed anyway
            pass


class FrameSink:
    """Frames as numbered PNGs (``000001.png``, ...) in a folder; 16-bit for 16-bit frames."""

    def __init__(self, folder: Path, stats: VideoStats) -> None:
        self.folder, self.stats = folder, stats

    def frames(self, arrays: list[np.ndarray], stamps: list[tuple[Any, Any]]) -> None:
        t = time.perf_counter()
        for arr in arrays:
            self.stats.frames += 1
            write_image(self.folder / f"{self.stats.frames:06d}.png", arr if arr.ndim == 3 else arr[:, :, None])
        self.stats.encode += time.perf_counter() - t

    def packet(self, packet: Any) -> None:  # other streams have no place among frames
        pass

    def finish(self) -> None:
        if self.stats.frames == 0:
            raise VideoError(f"no frames decoded into '{self.folder}'")

    def abandon(self) -> None:
        pass

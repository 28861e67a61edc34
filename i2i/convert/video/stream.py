"""Videos through a translator: frames decoded with PyAV (FFmpeg) in a background thread,
translated in batches, encoded in another thread; audio, subtitle and other streams copied
packet by packet without re-encoding. No frame touches the disk, and memory is bounded by the
batch and two short queues (``batch_size + 8`` decoded items, two translated batches), not by
the video's length.

The output is written under a temporary name in its folder and renamed when complete, so a
killed run never leaves a truncated video under the final name (:mod:`i2i.convert` removes the
leftovers of earlier runs). 8-bit sources are translated as 8-bit RGB; sources with more bits
per sample (10-bit HEVC, ProRes, ...) as 16-bit RGB, and encoded with 10 bits where the codec
allows. The colour matrix and range of the source are used both ways and tagged on the output.
"""

from __future__ import annotations

import queue
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from ...data.io import read_image, to_channels
from ...files import held_temp, publish, publish_folder
from ..types import TranslateArrays
from .options import CONTAINERS, Timing, VideoError, VideoOptions, VideoStats
from .sinks import FrameSink, Sink, VideoSink
from .temporal import TEMPORAL, Stabilizer

_COLOUR_KEYS = ("colorspace", "color_range", "color_primaries", "color_trc")


def _open_input(src: Path) -> tuple[Any, Any]:
    try:
        container = av.open(str(src), "r")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise VideoError(f"'{src}' could not be opened as a video ({e}); is it complete and in a format FFmpeg "
                         "reads?") from None
    if not container.streams.video:
        container.close()
        raise VideoError(f"'{src}' holds no video stream")
    vstream = container.streams.video[0]
    vstream.thread_type = "AUTO"  # frame and slice threads in the decoder
    return container, vstream


def frame_count(src: str | Path) -> int | None:
    """The number of frames ``src``'s header declares (None when it declares none or does not open):
    for progress bars, not a promise."""
    try:
        with av.open(str(src)) as c:
            return int(c.streams.video[0].frames) or None if c.streams.video else None
    except (av.FFmpegError, OSError, UnicodeDecodeError):
        return None


def _timing(vstream: Any) -> Timing:
    ctx = vstream.codec_context
    colour = tuple((k, int(getattr(ctx, k))) for k in _COLOUR_KEYS
                   if getattr(ctx, k, 0) and not (k == "colorspace" and ctx.colorspace == 2))  # 2: unspecified
    rate = vstream.average_rate or vstream.guessed_rate or Fraction(25)
    return Timing(Fraction(rate), Fraction(vstream.time_base or 1 / rate), colour)


def _is_deep(vstream: Any) -> bool:
    fmt = vstream.codec_context.format
    return fmt is not None and any(c.bits > 8 for c in fmt.components)


def _demux(container: Any, vstream: Any, copied: list[Any], out: queue.Queue, stats: VideoStats,
           stop: threading.Event) -> None:
    """The decode thread: ``("frame", rgb_array, pts, time_base)`` and ``("packet", packet)``
    items in file order, then ``("end",)``, or ``("error", exception)``. Frames are RGB
    ``(H, W, 3)`` uint8, or uint16 for sources of more than 8 bits, by the frame's own matrix,
    turned upright as players show them (a phone's portrait clip is stored sideways with a
    rotation tag): the net sees what the viewer sees, and the output needs no tag (FFmpeg's
    ``-autorotate`` does the same)."""
    fmt = "rgb48le" if _is_deep(vstream) else "rgb24"
    try:
        t = time.perf_counter()
        for packet in container.demux([vstream, *copied]):
            if stop.is_set():
                return
            if packet.stream is vstream:
                for frame in packet.decode():
                    item = ("frame", _upright(frame.to_ndarray(format=fmt), frame.rotation), frame.pts, frame.time_base)
                    stats.decode += time.perf_counter() - t
                    out.put(item)
                    t = time.perf_counter()
            elif packet.dts is not None:
                out.put(("packet", packet))
        stats.decode += time.perf_counter() - t
        out.put(("end",))
    except Exception as e:  # handed to the main thread, which fails this video
        out.put(("error", e))


def _upright(arr: np.ndarray, rotation: float) -> np.ndarray:
    """``arr`` turned by the display rotation (degrees counterclockwise, PyAV's ``frame.rotation``),
    to the nearest quarter turn."""
    k = round(rotation / 90) % 4
    return np.ascontiguousarray(np.rot90(arr, k)) if k else arr


def _write_loop(sink: Sink, items: queue.Queue, errors: list[BaseException]) -> None:
    """The writer thread: ``("frames", arrays, stamps)``, ``("packet", p)``, then ``("end",)``
    (finish) or ``None`` (abandon). After an error it only drains the queue."""
    item: tuple | None = ()
    try:
        while (item := items.get()) is not None:
            if item[0] == "frames":
                sink.frames(item[1], item[2])
            elif item[0] == "packet":
                sink.packet(item[1])
            else:
                sink.finish()
                return
        sink.abandon()
    except BaseException as e:  # read by the main thread
        errors.append(e)
        sink.abandon()
        while item is not None and item[0] != "end":  # the producer's last item not yet taken: drain up to it
            item = items.get()


def _translate_stream(translate: TranslateArrays, items: Iterator[tuple], sink: Sink, *, batch_size: int,
                      stats: VideoStats,
                      progress: Callable[[int], None] | None) -> None:
    """Batches of equal-size frames from ``items`` translated here, written by ``sink`` in a
    thread; packets passed through in order. Raises the first error of either side."""
    to_write: queue.Queue = queue.Queue(maxsize=2)  # translated batches waiting for the encoder
    errors: list[BaseException] = []
    thread = threading.Thread(target=_write_loop, args=(sink, to_write, errors), daemon=True)
    thread.start()
    arrays: list[np.ndarray] = []
    stamps: list[tuple[Any, Any]] = []

    def flush() -> None:
        if arrays:
            t = time.perf_counter()
            outs = list(translate(list(arrays)))  # copies: the lists are reused below
            stats.translate += time.perf_counter() - t
            to_write.put(("frames", outs, list(stamps)))
            if progress is not None:
                progress(len(outs))
            arrays.clear()
            stamps.clear()

    try:
        for item in items:
            if errors:
                break
            if item[0] == "frame":
                if arrays and (item[1].shape != arrays[0].shape or item[1].dtype != arrays[0].dtype):
                    flush()
                arrays.append(item[1])
                stamps.append((item[2], item[3]))
                if len(arrays) >= batch_size:
                    flush()
            else:
                to_write.put(item)
        if not errors:
            flush()
        to_write.put(("end",) if not errors else None)
    except BaseException:
        to_write.put(None)
        raise
    finally:
        thread.join()
    if errors:
        raise errors[0]


def _decoded(q: queue.Queue) -> Iterator[tuple]:
    while (item := q.get())[0] != "end":
        if item[0] == "error":
            raise item[1]
        yield item


def _run_decoded(translate: TranslateArrays, src: Path, make_sink: Callable[[Any, Any, VideoStats], Sink], *,
                 batch_size: int,
                 progress: Callable[[int], None] | None, copy: bool) -> VideoStats:
    stats = VideoStats()
    t0 = time.perf_counter()
    container, vstream = _open_input(src)
    copied = [s for s in container.streams if s is not vstream and s.type in ("audio", "subtitle",
                                                                              "data")] if copy else []
    stop = threading.Event()
    decoded: queue.Queue = queue.Queue(maxsize=batch_size + 8)  # frames and packets: memory bounded by the batch
    reader = threading.Thread(target=_demux, args=(container, vstream, copied, decoded, stats, stop), daemon=True)
    try:
        sink = make_sink(vstream, copied, stats)
        reader.start()
        _translate_stream(translate, _decoded(decoded), sink, batch_size=batch_size, stats=stats, progress=progress)
    except (av.FFmpegError, OSError) as e:
        raise VideoError(f"'{src}': {e}") from None
    finally:
        stop.set()
        while reader.is_alive():  # unblock and end the decode thread before its container closes
            try:
                decoded.get(timeout=0.05)
            except queue.Empty:
                pass
        container.close()
    stats.seconds = time.perf_counter() - t0
    return stats


def _temporal(translate: TranslateArrays, temporal: str) -> tuple[TranslateArrays, Stabilizer | None]:
    """``translate`` stabilised for one video (``temporal="flow"``: :mod:`.temporal`) or as it is (``off``)."""
    if temporal not in TEMPORAL:
        raise VideoError(f"temporal={temporal!r} (--temporal) must be one of {', '.join(TEMPORAL)}")
    if temporal == "off":
        return translate, None
    stab = Stabilizer()
    return stab.wrap(translate), stab


def _checked(dst: Path, options: VideoOptions | None) -> VideoOptions:
    """The options for writing video ``dst``, refused (container, codec) before anything is read."""
    if dst.suffix.lower() not in CONTAINERS:
        raise VideoError(f"'{dst}': i2i writes videos as {', '.join(CONTAINERS)}")
    options = options or VideoOptions()
    options.codec_for(dst.suffix.lower())
    return options


def convert_video(translate: TranslateArrays, src: str | Path, dst: str | Path, *, batch_size: int = 8,
                  options: VideoOptions | None = None, progress: Callable[[int], None] | None = None,
                  temporal: str = "off") -> VideoStats:
    """Translate every frame of video ``src`` into video ``dst`` (its suffix names the
    container, :data:`CONTAINERS`), keeping the source's frame timing (time base, each frame's
    timestamp, frame rate) and colour tags, with its audio, subtitle and data streams copied;
    frames stored sideways with a display rotation (phone clips) are translated and written upright.
    ``translate`` takes a list of same-size RGB ``(H, W, 3)`` uint8 (uint16 for sources of more
    than 8 bits) arrays; ``progress(n)`` is called with the number of frames just translated.
    ``temporal="flow"`` stabilises the outputs along the input's motion (:mod:`.temporal`; the
    warping errors in ``stats.warping``). Raises :class:`VideoError` (naming the file) when the
    source cannot be decoded or the output cannot be encoded; ``dst`` is then not created or left
    as it was."""
    src, dst = Path(src), Path(dst)
    options = _checked(dst, options)
    translate, stab = _temporal(translate, temporal)
    with held_temp(dst) as tmp:  # held while written: another run's cleanup leaves it alone
        try:
            stats = _run_decoded(translate, src, lambda v, copied,
                                 st: VideoSink(tmp, dst, src, _timing(v), copied, options, st, v.index),
                                 batch_size=batch_size, progress=progress, copy=True)
            publish(tmp, dst)
        finally:
            tmp.unlink(missing_ok=True)
    stats.warping = stab.report() if stab else {}
    return stats


def video_to_frames(translate: TranslateArrays, src: str | Path, dst_dir: str | Path, *, batch_size: int = 8,
                    progress: Callable[[int], None] | None = None, temporal: str = "off") -> VideoStats:
    """Translate every frame of video ``src`` into numbered PNGs ``dst_dir/000001.png``, ...
    (16-bit PNGs for sources of more than 8 bits). The folder is filled under a temporary name
    and renamed when complete, so ``dst_dir`` either holds every frame or does not exist.
    ``temporal`` as for :func:`convert_video`."""
    src, dst_dir = Path(src), Path(dst_dir)
    translate, stab = _temporal(translate, temporal)
    with held_temp(dst_dir, folder=True) as tmp:
        try:
            stats = _run_decoded(translate, src, lambda v, copied, st: FrameSink(tmp, st), batch_size=batch_size,
                                 progress=progress, copy=False)
            publish_folder(tmp, dst_dir)  # an earlier run's frame folder is replaced whole
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    stats.warping = stab.report() if stab else {}
    return stats


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name.lower())]


def frames_to_video(translate: TranslateArrays, frames: list[Path], dst: str | Path, *, fps: float, batch_size: int = 8,
                    options: VideoOptions | None = None, progress: Callable[[int], None] | None = None,
                    temporal: str = "off") -> VideoStats:
    """Translate images ``frames`` (sorted by name, numbers as numbers: ``f2`` before ``f10``)
    and encode them as video ``dst`` at ``fps`` frames per second. Every frame must have the
    size of the first; a frame that cannot be read fails the video (a video with a hole would
    be wrong silently). ``dst`` is written under a temporary name and renamed when complete.
    ``temporal`` as for :func:`convert_video`."""
    dst = Path(dst)
    options = _checked(dst, options)
    translate, stab = _temporal(translate, temporal)
    if not fps > 0:
        raise VideoError(f"fps={fps} (--fps) must be > 0")
    if not frames:
        raise VideoError(f"no frames to make '{dst}' from")
    rate = Fraction(fps).limit_denominator(1001)
    ordered = sorted(frames, key=_natural_key)
    stats = VideoStats()
    t0 = time.perf_counter()

    def items() -> Iterator[tuple]:
        first = None
        for n, f in enumerate(ordered):
            t = time.perf_counter()
            img = read_image(f)
            stats.decode += time.perf_counter() - t
            if first is not None and img.shape[:2] != first:
                raise VideoError(f"frame '{f}' is {img.shape[1]}x{img.shape[0]}, the first frame "
                                 f"'{ordered[0]}' {first[1]}x{first[0]}; a video's frames share one size")
            first = img.shape[:2]
            yield ("frame", to_channels(img if img.ndim == 3 else img[:, :, None], 3), n, 1 / rate)

    with held_temp(dst) as tmp:
        try:
            sink = VideoSink(tmp, dst, None, Timing(rate, 1 / rate), [], options, stats)
            _translate_stream(translate, items(), sink, batch_size=batch_size, stats=stats, progress=progress)
            publish(tmp, dst)
        except av.FFmpegError as e:
            raise VideoError(f"'{dst}': {e}") from None
        finally:
            tmp.unlink(missing_ok=True)
    stats.seconds = time.perf_counter() - t0
    stats.warping = stab.report() if stab else {}
    return stats

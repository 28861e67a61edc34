"""Folder conversion at scale: plan the jobs, decode in background workers, batch images of
equal size, translate, and encode/write in background threads, atomically. Videos in the
input are streamed through :mod:`i2i.video` one after another, after the images.

A bad file never stops a run: it is listed in the summary (and ``failed.txt``) with the
reason and the rest are converted. ``skip_existing`` resumes an interrupted run (every
output is written atomically, so an existing output is a complete one).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from .convert_plan import Job, list_inputs, plan_jobs
from .data.io import atomic_write_bytes, read_image, temp_prefix, write_image
from .dist import die_with_parent, kill_workers_at_exit
from .video import (
    CONTAINERS,
    VideoOptions,
    VideoStats,
    convert_video,
    frame_count,
    frames_to_video,
    is_video_file,
    video_to_frames,
)

TranslateArrays = Callable[[list[np.ndarray]], list[np.ndarray]]
"""Same-size ``(H, W[, C])`` uint8/uint16 arrays in, their translations out (e.g.
:meth:`i2i.Translator.translate_arrays`): all this module needs of a model."""

SIXTEEN_BIT_FORMATS = (".png", ".tif", ".tiff")
BIT_DEPTHS = ("same", "8", "16")


@dataclass
class ConvertSummary:
    """Outcome of a conversion: converted outputs, skipped outputs (already there), failed
    inputs with reasons, input entries ignored with reasons (not images, broken links, link
    loops), and the seconds it took."""

    converted: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    ignored: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0
    videos: list[tuple[Path, VideoStats]] = field(default_factory=list)

    @property
    def frames(self) -> int:
        """Video frames translated."""
        return sum(st.frames for _, st in self.videos)

    @property
    def ok(self) -> bool:
        return not self.failed


def write_output(dst: str | Path, img: np.ndarray, *, bit_depth: str = "same") -> Path:
    """Write a translated array: ``bit_depth`` ``same`` keeps uint16 where the format can
    hold it (PNG, TIFF) and uses 8 bits otherwise; ``8`` / ``16`` force the depth."""
    dst = Path(dst)
    if bit_depth not in BIT_DEPTHS:
        raise ValueError(f"bit depth {bit_depth!r} must be one of {', '.join(BIT_DEPTHS)}")
    fmt16 = dst.suffix.lower() in SIXTEEN_BIT_FORMATS
    if bit_depth == "16" and not fmt16:
        raise ValueError(f"cannot write 16-bit '{dst.name}': {dst.suffix} holds 8 bits; use .png or .tif")
    want16 = bit_depth == "16" or (bit_depth == "same" and img.dtype == np.uint16 and fmt16)
    if want16 and img.dtype == np.uint8:
        img = img.astype(np.uint16) * 257
    elif not want16 and img.dtype == np.uint16:
        img = ((img.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if img.ndim == 2:
        img = img[:, :, None]
    return write_image(dst, img)


class _Decode(Dataset):
    def __init__(self, jobs: list[Job]) -> None:
        self.jobs = jobs

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, i: int) -> tuple[int, np.ndarray | None, str | None]:
        try:
            return i, read_image(self.jobs[i].src), None
        except Exception as e:  # reported per file; the run goes on
            return i, None, str(e)


def _identity(x: Any) -> Any:
    return x


def default_workers() -> int:
    """Decode processes that do not compete with the model: the cores torch's threads leave
    free, at most 4 (on a 2-core machine running 2 torch threads, 0: decode in the main process;
    docs/benchmarks.md has the measurement)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(4, cores - torch.get_num_threads()))


def _remove_own_temp_files(jobs: list[Job]) -> None:
    """Temporary files of writes a kill interrupted, of these jobs' outputs only."""
    for d in {j.dst.parent for j in jobs}:
        names = {j.dst.name for j in jobs if j.dst.parent == d}
        if d.is_dir():
            for tmp in d.glob(".*.tmp"):
                if any(tmp.name.startswith(temp_prefix(n)) for n in names):
                    if tmp.is_dir() and not tmp.is_symlink():  # a frame folder being filled
                        shutil.rmtree(tmp, ignore_errors=True)
                    else:
                        tmp.unlink(missing_ok=True)


class _Conversion:
    """One run of :func:`run_jobs`: groups of decoded images translated together, their writes
    pending in a thread pool, the summary and the progress bar."""

    def __init__(self, translate: TranslateArrays, todo: list[Job], summary: ConvertSummary, *, batch_size: int, bit_depth: str,
                 progress: bool) -> None:
        self.translate, self.todo, self.summary = translate, todo, summary
        self.batch_size, self.bit_depth = batch_size, bit_depth
        self.bar = tqdm(total=len(todo), unit="img", dynamic_ncols=True, file=sys.stderr, desc="convert") if progress else None
        self.pending: list[tuple[Job, Future]] = []
        self.group: list[tuple[int, np.ndarray]] = []

    def _tick(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def fail(self, job: Job, why: str) -> None:
        self.summary.failed.append((job.src, why))
        self._tick()

    def add(self, i: int, img: np.ndarray, pool: ThreadPoolExecutor) -> None:
        """Queue decoded image ``i``: consecutive images of one size and type are translated together."""
        if self.group and (img.shape != self.group[0][1].shape or img.dtype != self.group[0][1].dtype):
            self.flush(pool)
        self.group.append((i, img))
        if len(self.group) >= self.batch_size:
            self.flush(pool)
        self.collect(block=False)

    def flush(self, pool: ThreadPoolExecutor) -> None:
        """Translate the queued group and hand its outputs to the writer threads."""
        group, self.group = self.group, []
        if not group:
            return
        try:
            outs = self.translate([a for _, a in group])
        except (TypeError, ValueError) as e:
            for i, _ in group:
                self.fail(self.todo[i], f"'{self.todo[i].src}': {e}")
            return
        except (MemoryError, RuntimeError) as e:
            if not _out_of_memory(e):
                raise
            h, w = group[0][1].shape[:2]
            for i, _ in group:
                self.fail(self.todo[i], f"'{self.todo[i].src}': not enough memory to translate {w}x{h} pixels in one piece "
                                        f"(batch of {len(group)}); {_MEMORY_HINT}")
            return
        for (i, _), out in zip(group, outs):
            job = self.todo[i]
            self.pending.append((job, pool.submit(write_output, job.dst, out, bit_depth=self.bit_depth)))

    def collect(self, block: bool) -> None:
        """Record finished writes (all of them when ``block``)."""
        keep = []
        for job, fut in self.pending:
            if block or fut.done():
                try:
                    fut.result()
                    self.summary.converted.append(job.dst)
                except Exception as e:
                    self.summary.failed.append((job.src, f"writing '{job.dst}' failed: {e}"))
                self._tick()
            else:
                keep.append((job, fut))
        self.pending = keep

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


_MEMORY_HINT = "use --tile 512 (memory bounded by the tile) or --batch-size 1"


def _out_of_memory(e: BaseException) -> bool:
    """Whether ``e`` says the translation ran out of host or device memory (torch raises a
    RuntimeError naming it; Python a MemoryError)."""
    return isinstance(e, MemoryError) or "memory" in str(e) or "allocate" in str(e)


def _run_images(translate: TranslateArrays, todo: list[Job], summary: ConvertSummary, *, batch_size: int, bit_depth: str,
                progress: bool, workers: int) -> None:
    """Image jobs: decoded in ``workers`` processes, translated in same-size groups, written in threads."""
    run = _Conversion(translate, todo, summary, batch_size=batch_size, bit_depth=bit_depth, progress=progress)
    if workers > 0:
        kill_workers_at_exit()
    loader = DataLoader(_Decode(todo), batch_size=None, num_workers=workers, collate_fn=_identity,
                        prefetch_factor=max(2, batch_size) if workers > 0 else None,
                        worker_init_fn=die_with_parent if workers > 0 else None)
    with ThreadPoolExecutor(max_workers=2) as pool:
        for i, img, err in loader:
            if err is not None:
                run.fail(todo[i], err)
            else:
                run.add(i, img, pool)
        run.flush(pool)
        run.collect(block=True)
    run.close()


def _run_videos(translate: TranslateArrays, jobs: list[Job], summary: ConvertSummary, *, batch_size: int,
                video: VideoOptions | None, progress: bool) -> None:
    """Video jobs one after another, each streamed by :mod:`i2i.video` (frames batched, other
    streams copied); a video that fails is listed with the reason and the next one goes on."""
    for job in jobs:
        bar = tqdm(total=frame_count(job.src), unit="frame", dynamic_ncols=True, file=sys.stderr, desc=job.src.name) if progress else None
        try:
            if job.kind == "frames":
                stats = video_to_frames(translate, job.src, job.dst, batch_size=batch_size, progress=bar.update if bar else None)
            else:
                stats = convert_video(translate, job.src, job.dst, batch_size=batch_size, options=video,
                                      progress=bar.update if bar else None)
            summary.converted.append(job.dst)
            summary.videos.append((job.dst, stats))
        except (ValueError, TypeError, OSError) as e:  # VideoError is a ValueError; the message names the file
            summary.failed.append((job.src, str(e) if str(job.src) in str(e) else f"'{job.src}': {e}"))
        except (MemoryError, RuntimeError) as e:
            if not _out_of_memory(e):
                raise
            summary.failed.append((job.src, f"'{job.src}': not enough memory to translate its frames ({str(e) or type(e).__name__}); "
                                            f"{_MEMORY_HINT}"))
        finally:
            if bar is not None:
                bar.close()


def run_jobs(
    translate: TranslateArrays,
    jobs: list[Job],
    *,
    batch_size: int = 8,
    workers: int | None = None,
    skip_existing: bool = False,
    bit_depth: str = "same",
    progress: bool = False,
    failures_path: str | Path | None = None,
    ignored: list[tuple[Path, str]] | None = None,
    video: VideoOptions | None = None,
) -> ConvertSummary:
    """Convert ``jobs``. Decoding runs in ``workers`` processes (None: :func:`default_workers`),
    consecutive images of equal size and type are translated together (up to ``batch_size``),
    and encoding + writing run in background threads. Videos follow, one at a time, their
    frames in batches of ``batch_size``, encoded as ``video`` says. Returns converted / skipped /
    failed lists and the time taken; failures (with reasons) also go to ``failures_path`` when given."""
    if batch_size < 1:
        raise ValueError(f"batch size {batch_size} must be >= 1")
    workers = default_workers() if workers is None else workers
    summary = ConvertSummary(ignored=list(ignored or []))
    t0 = time.perf_counter()
    _remove_own_temp_files(jobs)
    todo: list[Job] = []
    videos: list[Job] = []
    for j in jobs:
        if skip_existing and j.dst.exists():
            summary.skipped.append(j.dst)
        else:
            (todo if j.kind == "image" else videos).append(j)
    if todo:
        _run_images(translate, todo, summary, batch_size=batch_size, bit_depth=bit_depth, progress=progress, workers=workers)
    _run_videos(translate, videos, summary, batch_size=batch_size, video=video, progress=progress)
    summary.seconds = time.perf_counter() - t0
    if failures_path is not None:  # (an earlier run's list no longer describes this output: replaced or removed)
        write_failures(summary, failures_path)
    return summary


def convert_path(
    translate: TranslateArrays,
    input_path: str | Path,
    output_dir: str | Path,
    *,
    ext: str | None = None,
    name: str = "{stem}{ext}",
    allow_inside_input: bool = False,
    skip_existing: bool = False,
    batch_size: int = 8,
    workers: int | None = None,
    bit_depth: str = "same",
    progress: bool = False,
    shard: tuple[int, int] = (0, 1),
    video_ext: str | None = None,
    frames_out: bool = False,
    video: VideoOptions | None = None,
    to_video: str | None = None,
    fps: float | None = None,
) -> ConvertSummary:
    """:func:`plan_jobs` then :func:`run_jobs`, with failures and ignored input entries (reason
    prefixed ``skipped:``) listed in ``output_dir/failed.txt``. Videos are written as videos
    (``video_ext``, ``video`` options) or, with ``frames_out``, as folders of PNG frames.
    ``to_video`` (a file name such as ``out.mp4``): the input's images, translated in name order,
    become one video ``output_dir/to_video`` at ``fps`` frames per second instead.

    ``shard=(rank, world)``: this process converts every ``world``-th job starting at
    ``rank`` of the (sorted, identical on every process) plan, so ``world`` processes cover
    every file exactly once; ``failed.txt`` is then left to the caller, who merges the
    shards' summaries (:func:`merge_summaries`, :func:`write_failures`)."""
    rank, world = shard
    if not 0 <= rank < world:
        raise ValueError(f"shard {shard}: rank must be in [0, world)")
    ignored: list[tuple[Path, str]] = []
    if to_video is not None:
        return _assemble(translate, input_path, output_dir, to_video, fps, allow_inside_input=allow_inside_input, ignored=ignored,
                         skip_existing=skip_existing, batch_size=batch_size, video=video, progress=progress, rank=rank, world=world)
    jobs = plan_jobs(input_path, output_dir, ext=ext, name=name, allow_inside_input=allow_inside_input, skipped=ignored,
                     video_ext=video_ext, frames_out=frames_out)
    return run_jobs(translate, jobs[rank::world], batch_size=batch_size, workers=workers, skip_existing=skip_existing,
                    bit_depth=bit_depth, progress=progress, failures_path=Path(output_dir) / "failed.txt" if world == 1 else None,
                    ignored=ignored if rank == 0 else [], video=video)


def _assemble(translate: TranslateArrays, input_path: str | Path, output_dir: str | Path, to_video: str, fps: float | None, *,
              allow_inside_input: bool, ignored: list[tuple[Path, str]], skip_existing: bool, batch_size: int,
              video: VideoOptions | None, progress: bool, rank: int, world: int) -> ConvertSummary:
    """``--to-video``: one video of the input's translated frames, made by rank 0."""
    out = Path(output_dir)
    if fps is None:
        raise ValueError("to_video (--to-video) needs the frame rate: fps=N (--fps N)")
    if Path(to_video).name != to_video or Path(to_video).suffix.lower() not in CONTAINERS:
        raise ValueError(f"to_video={to_video!r} (--to-video) must be a plain file name ending in one of {', '.join(CONTAINERS)}, "
                         "written inside the output folder")
    files, _ = list_inputs(Path(input_path), out, allow_inside_input=allow_inside_input, skipped=ignored)
    videos = [f for f in files if is_video_file(f)]
    if videos:
        raise ValueError(f"--to-video makes a video of image frames; the input holds videos too ('{videos[0]}')")
    summary = ConvertSummary(ignored=list(ignored) if rank == 0 else [])
    dst = out / to_video
    if rank == 0 and skip_existing and dst.exists():
        summary.skipped.append(dst)
    elif rank == 0:
        bar = tqdm(total=len(files), unit="frame", dynamic_ncols=True, file=sys.stderr, desc=to_video) if progress else None
        try:
            summary.videos.append((dst, frames_to_video(translate, files, dst, fps=fps, batch_size=batch_size, options=video,
                                                        progress=bar.update if bar else None)))
            summary.converted.append(dst)
        except (ValueError, TypeError, OSError) as e:
            summary.failed.append((Path(input_path), str(e)))
        finally:
            if bar is not None:
                bar.close()
        summary.seconds = summary.videos[0][1].seconds if summary.videos else 0.0
    if world == 1:
        write_failures(summary, out / "failed.txt")
    return summary


def merge_summaries(parts: list[ConvertSummary]) -> ConvertSummary:
    """One summary for the shards of a conversion (lists joined and sorted; the slowest time)."""
    out = ConvertSummary()
    for part in parts:
        out.converted += part.converted
        out.skipped += part.skipped
        out.failed += part.failed
        out.ignored += part.ignored
    out.converted.sort()
    out.skipped.sort()
    out.failed.sort()
    out.ignored.sort()
    out.seconds = max((part.seconds for part in parts), default=0.0)
    out.videos = sorted((v for part in parts for v in part.videos), key=lambda v: v[0])
    return out


def _escape(text: object) -> str:
    r"""One TSV field: backslash, tab, newline and carriage return escaped (``\\``, ``\t``, ``\n``, ``\r``)."""
    return str(text).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def write_failures(summary: ConvertSummary, path: str | Path) -> None:
    """The failure list at ``path`` (``OUTPUT/failed.txt``) for ``summary``: one line per input,
    path TAB reason (both escaped as :func:`_escape` says, so a name with a newline stays one
    line): failures, then ignored inputs as ``skipped:``; no such file when there is nothing to list."""
    path = Path(path)
    if summary.failed or summary.ignored:
        lines = [f"{_escape(p)}\t{_escape(why)}\n" for p, why in summary.failed]
        lines += [f"{_escape(p)}\tskipped: {_escape(why)}\n" for p, why in summary.ignored]
        atomic_write_bytes(path, "".join(lines).encode())
    else:
        path.unlink(missing_ok=True)

"""Conversion at scale: plan the jobs (:mod:`.plan`), run the images (:mod:`.images`), then each
video through :mod:`.video`, one after another; a summary and ``failed.txt`` (:mod:`.summary`).
Under torchrun, :func:`convert` gives each process its share of the files and merges the summaries.

A bad file never stops a run: it is listed in the summary (and ``failed.txt``) with the reason and
the rest are converted. ``skip_existing`` resumes an interrupted run (every output is written
atomically, so an existing output is a complete one).
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from .. import dist
from ..files import remove_leftover, temp_prefix
from .images import MEMORY_HINT, default_workers, out_of_memory, run_images
from .masks import Masks
from .options import ConvertOptions
from .plan import Job, list_inputs, plan_jobs
from .summary import ConvertSummary, gather, write_failures
from .types import TranslateArrays
from .video import (
    CONTAINERS,
    Stabilizer,
    VideoOptions,
    convert_video,
    frame_count,
    frames_to_video,
    is_video_file,
    video_to_frames,
)


def _remove_own_temp_files(jobs: list[Job]) -> None:
    """Temporary files of writes a kill interrupted, of these jobs' outputs only, and only those no
    live process holds: another conversion writing into the same folder keeps its work in progress."""
    for d in {j.dst.parent for j in jobs}:
        names = {j.dst.name for j in jobs if j.dst.parent == d}
        if d.is_dir():
            for tmp in d.glob(".*.tmp"):
                if any(tmp.name.startswith(temp_prefix(n)) for n in names):
                    remove_leftover(tmp)


def _bar(total: int | None, unit: str, desc: str, progress: bool) -> tqdm | None:
    return tqdm(total=total, unit=unit, dynamic_ncols=True, file=sys.stderr, desc=desc) if progress else None


def _run_videos(translate: TranslateArrays, jobs: list[Job], summary: ConvertSummary, options: ConvertOptions,
                masks: Masks | None = None) -> None:
    """Video jobs one after another, each streamed by :mod:`.video` (frames batched, other
    streams copied; ``masks`` applied to every frame); a video that fails is listed with the reason
    and the next one goes on."""
    plain = translate
    for job in jobs:
        stab = Stabilizer() if options.temporal == "flow" else None  # before the mask: outside it stays the input
        translate = plain if stab is None else stab.wrap(plain)
        translate = translate if masks is None else masks.wrap(translate, job.src)
        bar = _bar(frame_count(job.src), "frame", job.src.name, options.progress)
        step = bar.update if bar else None
        try:
            if job.kind == "frames":
                stats = video_to_frames(translate, job.src, job.dst, batch_size=options.batch_size, progress=step)
            else:
                stats = convert_video(translate, job.src, job.dst, batch_size=options.batch_size, options=options.video,
                                      progress=step)
            stats.warping = stab.report() if stab else {}
            summary.converted.append(job.dst)
            summary.videos.append((job.dst, stats))
        except (ValueError, TypeError, OSError) as e:  # VideoError is a ValueError; the message names the file
            summary.failed.append((job.src, str(e) if str(job.src) in str(e) else f"'{job.src}': {e}"))
        except (MemoryError, RuntimeError) as e:
            if not out_of_memory(e):
                raise
            summary.failed.append((job.src,
                                   f"'{job.src}': not enough memory to translate its frames "
                                   f"({str(e) or type(e).__name__}); "
                                   f"{MEMORY_HINT}"))
        finally:
            if bar is not None:
                bar.close()


def run_jobs(translate: TranslateArrays, jobs: list[Job], options: ConvertOptions | None = None, *,
             failures_path: str | Path | None = None, ignored: list[tuple[Path, str]] | None = None) -> ConvertSummary:
    """Convert ``jobs`` (:func:`plan_jobs`) as ``options`` say: images first (decoded in
    ``options.workers`` processes, translated in groups of equal size and type of up to
    ``options.batch_size``, written in background threads), then each video. Returns converted /
    skipped / failed lists and the time taken; failures (with reasons) and ``ignored`` input
    entries also go to ``failures_path`` when given."""
    options = options or ConvertOptions()
    masks = Masks(options.mask, options.feather) if options.mask else None  # a missing mask fails before any write
    summary = ConvertSummary(ignored=list(ignored or []), planned=[j.src for j in jobs])
    t0 = time.perf_counter()
    _remove_own_temp_files(jobs)
    todo: list[Job] = []
    videos: list[Job] = []
    for j in jobs:
        if options.skip_existing and j.dst.exists():
            summary.skipped.append(j.dst)
        else:
            (todo if j.kind == "image" else videos).append(j)
    if todo:
        workers = default_workers() if options.workers is None else options.workers
        run_images(translate, todo, summary, batch_size=options.batch_size, bit_depth=options.bit_depth,
                   progress=options.progress, workers=workers, masks=masks, metadata=options.metadata)
    _run_videos(translate, videos, summary, options, masks)
    summary.seconds = time.perf_counter() - t0
    if failures_path is not None:  # (an earlier run's list no longer describes this output: replaced or removed)
        write_failures(summary, failures_path)
    return summary


def convert_path(translate: TranslateArrays, input_path: str | Path, output_dir: str | Path,
                 options: ConvertOptions | None = None,
                 *, shard: tuple[int, int] = (0, 1)) -> ConvertSummary:
    """:func:`plan_jobs` then :func:`run_jobs` for one process, with failures and ignored input
    entries (reason prefixed ``skipped:``) listed in ``output_dir/failed.txt``. Videos are
    written as videos (``options.video_ext``, ``options.video``) or, with ``options.frames_out``,
    as folders of PNG frames; with ``options.to_video`` (a file name such as ``out.mp4``) the
    input's images, translated in name order, become one video at ``options.fps`` instead.

    ``shard=(rank, world)``: this process converts every ``world``-th job starting at ``rank``
    of the (sorted, identical on every process) plan, so ``world`` processes cover every file
    exactly once; ``failed.txt`` is then left to :func:`~.summary.gather`, which merges the
    shards' summaries (:func:`convert` does all of it under torchrun)."""
    options = options or ConvertOptions()
    rank, world = shard
    if not 0 <= rank < world:
        raise ValueError(f"shard {shard}: rank must be in [0, world)")
    ignored: list[tuple[Path, str]] = []
    if options.to_video is not None:
        return _assemble(translate, Path(input_path), Path(output_dir), options, ignored=ignored, rank=rank,
                         world=world)
    jobs = plan_jobs(input_path, output_dir, ext=options.ext, name=options.name,
                     allow_inside_input=options.allow_inside_input, skipped=ignored, video_ext=options.video_ext,
                     frames_out=options.frames_out)
    _check_encoder(options, {j.dst.suffix.lower() for j in jobs if j.kind == "video"})
    return run_jobs(translate, jobs[rank::world], options,
                    failures_path=Path(output_dir) / "failed.txt" if world == 1 else None,
                    ignored=ignored if rank == 0 else [])


def convert(translate: TranslateArrays, input_path: str | Path, output_dir: str | Path,
            options: ConvertOptions | None = None, *,
            device_type: str = "cpu") -> ConvertSummary:
    """Convert an image or video, a folder tree or a ``.txt`` list into ``output_dir`` (see
    :func:`convert_path`). Launched by torchrun (``WORLD_SIZE`` > 1), every process joins the
    process group (NCCL for ``device_type`` cuda, else gloo), converts its share of the files,
    and gets the merged summary of all of them; rank 0 writes the one ``failed.txt``. Progress
    bars are shown by rank 0 only."""
    options = options or ConvertOptions()
    rank, _, world = dist.init_from_env(device_type)
    if world == 1:
        return convert_path(translate, input_path, output_dir, options)
    own = convert_path(translate, input_path, output_dir, replace(options, progress=options.progress and rank == 0),
                       shard=(rank, world))
    return gather(own, output_dir)


def _check_encoder(options: ConvertOptions, suffixes: set[str]) -> None:
    """The encoder's options, refused once and up front (naming the option) when they do not open it:
    for every container the videos go to, and for the default one when the options were given but
    the input holds no video (wrong options are wrong either way)."""
    if suffixes or options.video != VideoOptions():
        for suffix in sorted(suffixes or {".mp4"}):
            options.video.check_encoder(suffix)


def _assemble(translate: TranslateArrays, src: Path, out: Path, options: ConvertOptions, *,
              ignored: list[tuple[Path, str]],
              rank: int, world: int) -> ConvertSummary:
    """``to_video``: one video of the input's translated frames, made by rank 0."""
    to_video, fps = options.to_video, options.fps
    if fps is None:
        raise ValueError("to_video (--to-video) needs the frame rate: fps=N (--fps N)")
    if Path(to_video).name != to_video or Path(to_video).suffix.lower() not in CONTAINERS:
        raise ValueError(f"to_video={to_video!r} (--to-video) must be a plain file name ending in one of "
                         f"{', '.join(CONTAINERS)}, "
                         "written inside the output folder")
    files, _ = list_inputs(src, out, allow_inside_input=options.allow_inside_input, skipped=ignored)
    videos = [f for f in files if is_video_file(f)]
    if videos:
        raise ValueError(f"--to-video makes a video of image frames; the input holds videos too ('{videos[0]}')")
    _check_encoder(options, {Path(to_video).suffix.lower()})
    summary = ConvertSummary(ignored=list(ignored) if rank == 0 else [], planned=[src])
    dst = out / to_video
    if rank == 0 and options.skip_existing and dst.exists():
        summary.skipped.append(dst)
    elif rank == 0:
        bar = _bar(len(files), "frame", to_video, options.progress)
        try:
            summary.videos.append((dst, frames_to_video(translate, files, dst, fps=fps, batch_size=options.batch_size,
                                                        options=options.video, progress=bar.update if bar else None,
                                                        temporal=options.temporal)))
            summary.converted.append(dst)
        except (ValueError, TypeError, OSError) as e:
            summary.failed.append((src, str(e)))
        finally:
            if bar is not None:
                bar.close()
        summary.seconds = summary.videos[0][1].seconds if summary.videos else 0.0
    if world == 1:
        write_failures(summary, out / "failed.txt")
    return summary

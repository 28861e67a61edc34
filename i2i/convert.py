"""Folder conversion at scale: plan the jobs, decode in background workers, batch images of
equal size, translate, and encode/write in background threads, atomically.

A bad file never stops a run: it is listed in the summary (and ``failed.txt``) with the
reason and the rest are converted. ``skip_existing`` resumes an interrupted run (every
output is written atomically, so an existing output is a complete one).
"""

from __future__ import annotations

import os
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

from .data.io import IMAGE_EXTENSIONS, atomic_write_bytes, is_image_file, read_image, scan_images, temp_prefix, write_image
from .dist import die_with_parent, kill_workers_at_exit

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

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass(frozen=True)
class Job:
    """One image to convert: read ``src``, write ``dst``."""

    src: Path
    dst: Path


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def _list_inputs(src: Path, out: Path, *, allow_inside_input: bool, skipped: list[tuple[Path, str]] | None) -> tuple[list[Path], Path]:
    """The input images of an image file, a ``.txt`` list or a folder tree, and the folder their
    outputs mirror; refusals (missing, empty, output inside the input) before any write."""
    if src.is_file() and src.suffix.lower() == ".txt":
        files = []
        for n, line in enumerate(src.read_text().splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            p = Path(line) if Path(line).is_absolute() else src.parent / line
            if not is_image_file(p):
                raise ValueError(f"{src}:{n}: '{line}' is not an image path ({', '.join(IMAGE_EXTENSIONS)})")
            files.append(p)  # missing files are reported per file at conversion time
        if not files:
            raise FileNotFoundError(f"list '{src}' names no images")
        base = src.parent
    elif src.is_file():
        if not is_image_file(src):
            raise ValueError(f"'{src}' is not an image file ({', '.join(IMAGE_EXTENSIONS)}) or a .txt list")
        files, base = [src], src.parent
    else:
        files, left_out = scan_images(src)
        base = src
        if skipped is not None:
            skipped.extend(left_out)
        if not files:
            raise FileNotFoundError(f"folder '{src}' holds no images ({', '.join(IMAGE_EXTENSIONS)})")
        if not allow_inside_input and _inside(out, src):
            raise ValueError(f"output '{out}' is inside the input folder '{src}'; choose another output "
                             "or pass allow_inside_input=True (--allow-inside-input)")
    if not src.is_dir() and not allow_inside_input and out.resolve() in {f.resolve().parent for f in files}:
        # A file or a list: refuse writing among the inputs themselves (next to an input image).
        raise ValueError(f"output '{out}' is the folder of the input images; choose another output "
                         "or pass allow_inside_input=True (--allow-inside-input)")
    return files, base


def _output_name(f: Path, name: str, ext: str | None) -> str:
    """The output file name of input ``f`` by the ``name`` pattern; a plain image file name."""
    try:
        fname = name.format(stem=f.stem, ext=ext or f.suffix, suffix=f.suffix)
    except (KeyError, IndexError, ValueError) as e:
        raise ValueError(f"name={name!r} (--name) is not a valid pattern ({e}); use fields {{stem}}, {{ext}}, {{suffix}}") from None
    if Path(fname).name != fname or fname in (".", ".."):
        raise ValueError(f"name={name!r} (--name) gives '{fname}', which is not a plain file name: outputs stay in the "
                         "output folder, mirroring the input's sub-folders; use a pattern without '/' or '..'")
    if not is_image_file(fname):
        raise ValueError(f"name={name!r} (--name) gives '{fname}', which has no image suffix; include {{ext}}")
    return fname


def _check_outputs(jobs: list[Job], files: list[Path], out: Path) -> None:
    """Every output inside ``out``, none overwriting an input or another output."""
    inputs = {f.resolve() for f in files}
    seen: dict[Path, Path] = {}
    for j in jobs:
        d = j.dst.resolve()
        if not _inside(j.dst, out):  # a symbolic link inside the output folder pointing elsewhere
            raise ValueError(f"output '{j.dst}' would be written outside the output folder '{out}' (through a symbolic link); "
                             "remove the link or choose another output (nothing was written)")
        if d in inputs:
            raise ValueError(f"output '{j.dst}' would overwrite an input image; choose an output folder outside the input")
        if d in seen:
            raise ValueError(f"'{seen[d]}' and '{j.src}' would both be written to '{j.dst}'; "
                             "use name= or ext= (--name, --ext) to tell them apart")
        seen[d] = j.src


def plan_jobs(
    input_path: str | Path,
    output_dir: str | Path,
    *,
    ext: str | None = None,
    name: str = "{stem}{ext}",
    allow_inside_input: bool = False,
    skipped: list[tuple[Path, str]] | None = None,
) -> list[Job]:
    """The conversion jobs for an image file, a folder tree, or a ``.txt`` list of image paths
    (one per line, relative to the list's folder or absolute; ``#`` comments allowed).

    Outputs mirror the input's sub-folders; ``name`` formats the file name from ``{stem}``,
    ``{ext}`` (the output suffix, from ``ext`` or the input) and ``{suffix}`` (the input's).
    Raises before anything is written when the input is missing or empty, when an output
    would overwrite an input or another output, or when ``output_dir`` lies inside the input
    folder (unless ``allow_inside_input``). Entries of a folder tree that are left out (not
    images, broken links, link loops) are appended to ``skipped`` with the reason.
    """
    src, out = Path(input_path), Path(output_dir)
    if not src.exists():
        raise FileNotFoundError(f"input '{src}' does not exist; pass an image file, a folder of images or a .txt list")
    if ext is not None:
        ext = ext if ext.startswith(".") else "." + ext
        if ext.lower() not in IMAGE_EXTENSIONS:
            raise ValueError(f"ext={ext!r} (--ext) is not a supported image format; use one of {', '.join(IMAGE_EXTENSIONS)}")
    files, base = _list_inputs(src, out, allow_inside_input=allow_inside_input, skipped=skipped)
    jobs = []
    for f in files:
        rel = f.relative_to(base).parent if _inside(f, base) and ".." not in f.relative_to(base).parts else Path()
        jobs.append(Job(f, out / rel / _output_name(f, name, ext)))
    _check_outputs(jobs, files, out)
    return jobs


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
            if not isinstance(e, MemoryError) and "memory" not in str(e) and "allocate" not in str(e):
                raise
            h, w = group[0][1].shape[:2]
            for i, _ in group:
                self.fail(self.todo[i], f"'{self.todo[i].src}': not enough memory to translate {w}x{h} pixels in one piece "
                                        "(batch of " + str(len(group)) + "); use --tile 512 (memory bounded by the tile) or --batch-size 1")
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
) -> ConvertSummary:
    """Convert ``jobs``. Decoding runs in ``workers`` processes (None: :func:`default_workers`),
    consecutive images of equal size and type are translated together (up to ``batch_size``),
    and encoding + writing run in background threads. Returns converted / skipped / failed
    lists and the time taken; failures (with reasons) also go to ``failures_path`` when given."""
    if batch_size < 1:
        raise ValueError(f"batch size {batch_size} must be >= 1")
    workers = default_workers() if workers is None else workers
    summary = ConvertSummary(ignored=list(ignored or []))
    t0 = time.perf_counter()
    _remove_own_temp_files(jobs)
    todo: list[Job] = []
    for j in jobs:
        if skip_existing and j.dst.exists():
            summary.skipped.append(j.dst)
        else:
            todo.append(j)
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
) -> ConvertSummary:
    """:func:`plan_jobs` then :func:`run_jobs`, with failures and ignored input entries (reason
    prefixed ``skipped:``) listed in ``output_dir/failed.txt``.

    ``shard=(rank, world)``: this process converts every ``world``-th job starting at
    ``rank`` of the (sorted, identical on every process) plan, so ``world`` processes cover
    every file exactly once; ``failed.txt`` is then left to the caller, who merges the
    shards' summaries (:func:`merge_summaries`, :func:`write_failures`)."""
    rank, world = shard
    if not 0 <= rank < world:
        raise ValueError(f"shard {shard}: rank must be in [0, world)")
    ignored: list[tuple[Path, str]] = []
    jobs = plan_jobs(input_path, output_dir, ext=ext, name=name, allow_inside_input=allow_inside_input, skipped=ignored)
    return run_jobs(translate, jobs[rank::world], batch_size=batch_size, workers=workers, skip_existing=skip_existing,
                    bit_depth=bit_depth, progress=progress, failures_path=Path(output_dir) / "failed.txt" if world == 1 else None,
                    ignored=ignored if rank == 0 else [])


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

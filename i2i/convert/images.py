"""Image jobs: decoded in background processes, translated in groups of equal size and type,
encoded and written atomically in background threads. A file that fails is listed with the
reason and the rest go on."""

from __future__ import annotations

import os
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..data.io import read_image, write_image
from ..data.metadata import Metadata, for_format, read_metadata
from ..dist import die_with_parent, kill_workers_at_exit
from .masks import MaskError, Masks
from .plan import Job
from .summary import ConvertSummary
from .types import TranslateArrays

SIXTEEN_BIT_FORMATS = (".png", ".tif", ".tiff", ".dcm")
BIT_DEPTHS = ("same", "8", "16")


def write_output(dst: str | Path, img: np.ndarray, *, bit_depth: str = "same",
                 metadata: Metadata | None = None) -> Path:
    """Write a translated array: ``bit_depth`` ``same`` keeps uint16 where the format can
    hold it (PNG, TIFF) and uses 8 bits otherwise; ``8`` / ``16`` force the depth. ``metadata``
    is written in as it is."""
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
    return write_image(dst, img, metadata=metadata)


class _Decode(Dataset):
    def __init__(self, jobs: list[Job], metadata: bool = True) -> None:
        self.jobs, self.metadata = jobs, metadata

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, i: int) -> tuple[int, np.ndarray | None, str | None, Metadata | None]:
        try:
            img = read_image(self.jobs[i].src)
        except Exception as e:  # reported per file; the run goes on
            return i, None, str(e), None
        if not self.metadata:
            return i, img, None, None
        try:
            meta = read_metadata(Path(self.jobs[i].src).read_bytes())
        except Exception:  # metadata that cannot be parsed is not carried; the pixels still are (noqa: BLE001)
            meta = None
        return i, img, None, meta


def _identity(x: Any) -> Any:
    return x


def default_workers() -> int:
    """Decode processes that do not compete with the model: the cores torch's threads leave
    free, at most 4 (on a 2-core machine running 2 torch threads, 0: decode in the main process;
    docs/benchmarks.md has the measurement)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(4, cores - torch.get_num_threads()))


class _Conversion:
    """One run of :func:`run_jobs`: groups of decoded images translated together, their writes
    pending in a thread pool, the summary and the progress bar."""

    def __init__(self, translate: TranslateArrays, todo: list[Job], summary: ConvertSummary, *, batch_size: int,
                 bit_depth: str, progress: bool, masks: Masks | None = None, metadata: str = "keep") -> None:
        self.translate, self.todo, self.summary, self.masks = translate, todo, summary, masks
        self.metadata, self.metas = metadata, {}
        self.batch_size, self.bit_depth = batch_size, bit_depth
        self.bar = tqdm(total=len(todo), unit="img", dynamic_ncols=True, file=sys.stderr,
                        desc="convert") if progress else None
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
            if not out_of_memory(e):
                raise
            h, w = group[0][1].shape[:2]
            for i, _ in group:
                self.fail(self.todo[i],
                          f"'{self.todo[i].src}': not enough memory to translate {w}x{h} pixels in one piece "
                          f"(batch of {len(group)}); {MEMORY_HINT}")
            return
        for (i, src), out in zip(group, outs):
            job = self.todo[i]
            if self.masks is not None:
                try:
                    out = self.masks.apply(job.src, src, out)
                except MaskError as e:
                    self.fail(job, str(e))
                    continue
            meta = self._metadata(job, self.metas.pop(i, None), out, src.shape[1])
            self.pending.append((job, pool.submit(write_output, job.dst, out, bit_depth=self.bit_depth,
                                                  metadata=meta)))

    def _metadata(self, job: Job, meta: Metadata | None, out: np.ndarray, src_width: int) -> Metadata | None:
        """What of the input's metadata goes into ``job``'s output (counted in the summary)."""
        if meta is None or self.metadata == "none" or not meta.kinds():
            return None
        meta = (meta.stripped() if self.metadata == "strip" else meta).for_output(
            out.shape[1], out.shape[0], out.shape[1] / src_width, dst=str(job.dst))
        meta, kept, dropped = for_format(meta, job.dst.suffix)
        for k in kept:
            self.summary.metadata[f"{k} kept"] = self.summary.metadata.get(f"{k} kept", 0) + 1
        for k in dropped:
            key = f"{k} dropped ({job.dst.suffix.lower()} cannot hold it)"
            self.summary.metadata[key] = self.summary.metadata.get(key, 0) + 1
        return meta

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


MEMORY_HINT = "use --tile 512 (memory bounded by the tile) or --batch-size 1"


def out_of_memory(e: BaseException) -> bool:
    """Whether ``e`` says the translation ran out of host or device memory (torch raises a
    RuntimeError naming it; Python a MemoryError)."""
    return isinstance(e, MemoryError) or "memory" in str(e) or "allocate" in str(e)


def run_images(translate: TranslateArrays, todo: list[Job], summary: ConvertSummary, *, batch_size: int, bit_depth: str,
               progress: bool, workers: int, masks: Masks | None = None, metadata: str = "keep") -> None:
    """Image jobs: decoded in ``workers`` processes, translated in same-size groups (``masks``
    applied), written in threads."""
    run = _Conversion(translate, todo, summary, batch_size=batch_size, bit_depth=bit_depth, progress=progress,
                      masks=masks, metadata=metadata)
    if workers > 0:
        kill_workers_at_exit()
    loader = DataLoader(_Decode(todo, metadata != "none"), batch_size=None, num_workers=workers, collate_fn=_identity,
                        prefetch_factor=max(2, batch_size) if workers > 0 else None,
                        worker_init_fn=die_with_parent if workers > 0 else None)
    with ThreadPoolExecutor(max_workers=2) as pool:
        for i, img, err, meta in loader:
            if err is not None:
                run.fail(todo[i], err)
            else:
                run.metas[i] = meta
                run.add(i, img, pool)
        run.flush(pool)
        run.collect(block=True)
    run.close()

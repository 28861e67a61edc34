"""Conversion on a Ray cluster (the ``ray`` extra; public as ``i2i.ray``): ``i2i convert ...
--engine ray [--address ADDR]``.

The driver plans the jobs exactly as ``i2i convert`` does (:func:`i2i.convert.plan_jobs`: the same
output names, sub-folders and refusals; ``--skip-existing`` leaves what exists), and Ray Data runs
them with ``map_batches`` over a pool of actors, each holding the model once (a GPU each where the
cluster has them). Every actor converts its batch with i2i's own decoding, translation and atomic
writing (:func:`i2i.convert.run_jobs`: 16-bit, alpha, metadata, masks, videos as whole files), so
the outputs are byte-identical to a local conversion and a killed actor leaves no partial file:
Ray restarts it and runs its batch again. The driver merges the actors' summaries and writes the
one ``failed.txt``. The input and output folders must be visible to every node under the same
paths (a shared file system); the model file too.
"""

from __future__ import annotations

import pickle
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .convert import ConvertOptions, ConvertSummary, Job, merge_summaries, plan_jobs, run_jobs, write_failures
from .translator import Translator

EXTRA = "conversion on Ray needs its extra: pip install 'i2i[ray]'"


def _ray() -> Any:
    try:
        import ray  # the optional extra
    except ImportError as e:
        raise ImportError(f"{EXTRA} ({e})") from None
    return ray


class _Converter:
    """A Ray Data actor: one translator, loaded once; converts batches of planned jobs."""

    def __init__(self, model: str, jobs: list[Job], options: ConvertOptions, translator: dict[str, Any]) -> None:
        self.tr = Translator.from_file(model, **translator)
        self.jobs, self.options = jobs, options

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[bytes]]:
        summary = run_jobs(self.tr.translate_arrays, [self.jobs[int(i)] for i in batch["job"]], self.options)
        return {"summary": [pickle.dumps(summary)]}


def convert(src: str | Path, dst: str | Path, model: str | Path, options: ConvertOptions | None = None, *,
            address: str | None = None, actors: int | None = None, gpus_per_actor: float | None = None,
            batch_size: int = 16, **translator: Any) -> ConvertSummary:
    """Convert ``src`` (a file, folder tree or ``.txt`` list) into ``dst`` with ``model`` on Ray,
    as ``i2i convert`` would locally. ``address``: the cluster (None: the one ``ray.init`` already
    joined, else a new local instance); ``actors``: how many hold the model (None: one per GPU, or
    per 2 CPUs); ``gpus_per_actor`` (None: 1 where the cluster has GPUs); ``batch_size``: files per
    task (a killed actor redoes at most one batch). ``translator``: ``direction``, ``tile``,
    ``precision``, ``runtime``, ``seamless``, ... of :meth:`i2i.Translator.from_file`."""
    ray = _ray()
    options = replace(options or ConvertOptions(), progress=False, workers=0)
    if options.to_video is not None:
        raise ValueError("--to-video makes one video on one machine; convert without --engine ray")
    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=False, include_dashboard=False)
    t0 = time.perf_counter()
    ignored: list[tuple[Path, str]] = []
    jobs = plan_jobs(src, dst, ext=options.ext, name=options.name, allow_inside_input=options.allow_inside_input,
                     skipped=ignored, video_ext=options.video_ext, frames_out=options.frames_out)
    skipped = [j.dst for j in jobs if options.skip_existing and j.dst.exists()]
    todo = [k for k, j in enumerate(jobs) if not (options.skip_existing and j.dst.exists())]
    parts = [ConvertSummary(skipped=skipped, ignored=ignored)]
    if todo:
        gpus = ray.cluster_resources().get("GPU", 0)
        per = (1.0 if gpus else 0.0) if gpus_per_actor is None else gpus_per_actor
        n = actors or max(1, int(gpus // per) if per else int(ray.cluster_resources().get("CPU", 2) // 2))
        translator.setdefault("device", "cuda" if per else "cpu")
        ds = ray.data.from_items([{"job": k} for k in todo], override_num_blocks=max(1, len(todo) // batch_size))
        out = ds.map_batches(_Converter, fn_constructor_kwargs={"model": str(model), "jobs": jobs, "options": options,
                                                                "translator": translator},
                             batch_size=batch_size, concurrency=min(n, len(todo)), num_gpus=per or None,
                             num_cpus=None if per else 1)
        parts += [pickle.loads(row["summary"]) for row in out.take_all()]
    summary = merge_summaries(parts)
    summary.planned = [j.src for j in jobs]
    summary.seconds = time.perf_counter() - t0
    write_failures(summary, Path(dst) / "failed.txt")
    return summary

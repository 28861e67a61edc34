"""Conversion jobs of the web app: each in its own folder under the server's temporary root
(``in/`` the uploads, ``out/`` what ``i2i convert`` writes), run one at a time by one worker thread
from a bounded queue, so no job sees another's files and memory is bounded by one conversion.
A finished job's folder stays until its results are fetched and ``keep_s`` has passed, or the
server stops; stopping lets the running job finish and cancels the queued ones."""

from __future__ import annotations

import concurrent.futures
import os
import queue
import shutil
import tempfile
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..convert import ConvertOptions
from .models import ModelStore


class QueueFull(RuntimeError):
    """More jobs are waiting than the server queues; the message says to retry."""


@dataclass
class Job:
    """One request's conversion: ``settings`` (model, direction, tile, runtime, seamless) and
    ``options`` (:class:`~i2i.convert.ConvertOptions`), its folder, state (``queued``,
    ``running``, ``done``, ``failed``, ``cancelled``) and outcome."""

    id: str
    folder: Path
    settings: dict[str, Any]
    options: ConvertOptions
    total: int = 0
    state: str = "queued"
    error: str = ""
    failed: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    finished: float = 0.0
    discard: bool = False  # removed while running: its folder goes when it ends
    future: concurrent.futures.Future = field(default_factory=concurrent.futures.Future, repr=False)

    @property
    def inputs(self) -> Path:
        return self.folder / "in"

    @property
    def out(self) -> Path:
        return self.folder / "out"

    def done_count(self) -> int:
        """Outputs written so far (temporary files, named with a leading dot, not counted)."""
        if self.state in ("done", "failed"):
            return len(self.outputs)
        return sum(1 for _, _, files in os.walk(self.out) for f in files if not f.startswith(".")) \
            if self.out.is_dir() else 0

    def status(self) -> dict[str, Any]:
        """What ``GET /jobs/{id}`` answers."""
        return {"id": self.id, "state": self.state, "total": self.total, "done": self.done_count(),
                "outputs": self.outputs, "failed": self.failed, "error": self.error}

    def result(self) -> Path:
        """The one output, or a zip of them all (made once)."""
        if len(self.outputs) == 1:
            return self.out / self.outputs[0]
        archive = self.folder / "results.zip"
        if not archive.exists():
            tmp = self.folder / ".results.zip"
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as z:
                for name in self.outputs:
                    z.write(self.out / name, name)
            tmp.rename(archive)
        return archive


class JobQueue:
    """The jobs of one server over ``store``'s models, in folders under a new temporary root
    (inside ``workdir`` when given); at most ``max_queued`` waiting."""

    def __init__(self, store: ModelStore, *, max_queued: int = 64, keep_s: float = 3600.0,
                 workdir: str | Path | None = None) -> None:
        self.store, self.keep_s = store, keep_s
        self.root = Path(tempfile.mkdtemp(prefix="i2i-serve-", dir=workdir))
        self.jobs: dict[str, Job] = {}
        self.waiting: queue.Queue[Job | None] = queue.Queue(maxsize=max_queued)
        self.stopping = False
        self.worker = threading.Thread(target=self._work, name="i2i-serve-worker", daemon=True)
        self.worker.start()

    def new(self, settings: dict[str, Any], options: ConvertOptions) -> Job:
        """A job with an empty ``in/`` folder for the caller to fill, not queued yet."""
        self.sweep()
        job = Job(uuid.uuid4().hex, self.root / uuid.uuid4().hex, settings, options)
        job.inputs.mkdir(parents=True)
        self.jobs[job.id] = job
        return job

    def submit(self, job: Job) -> None:
        """Queue ``job``; :class:`QueueFull` (its folder removed) when too many wait."""
        if self.stopping:
            self.remove(job.id)
            raise QueueFull("the server is stopping; retry when it is back")
        try:
            self.waiting.put_nowait(job)
        except queue.Full:
            self.remove(job.id)
            raise QueueFull(f"the server is busy ({self.waiting.maxsize} jobs waiting); retry in a moment") from None

    def get(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    def remove(self, job_id: str) -> None:
        """Forget a job and delete its folder (a queued one is skipped when its turn comes)."""
        job = self.jobs.pop(job_id, None)
        if job is None:
            return
        if job.state == "running":
            job.discard = True
            return
        if job.state == "queued":
            job.state = "cancelled"
            job.future.cancel()
        shutil.rmtree(job.folder, ignore_errors=True)

    def sweep(self) -> None:
        """Remove the folders of jobs finished more than ``keep_s`` ago."""
        now = time.time()
        for job in list(self.jobs.values()):
            if job.finished and now - job.finished > self.keep_s:
                self.remove(job.id)

    def _work(self) -> None:
        while (job := self.waiting.get()) is not None:
            if job.state == "cancelled" or self.stopping:
                job.state = "cancelled"
                job.future.cancel()
                continue
            job.state = "running"
            try:
                s = job.settings
                tr = self.store.translator(s.get("model"), s.get("direction"), s.get("tile"), s.get("runtime", "torch"),
                                           s.get("seamless"))
                summary = tr.convert_folder(job.inputs, job.out, job.options)
                job.outputs = sorted(str(p.relative_to(job.out)) for p in summary.converted)
                job.failed = [why for _, why in summary.failed]
                job.state = "done" if job.outputs else "failed"
                job.error = "" if job.outputs else "; ".join(job.failed) or "nothing was converted"
                job.future.set_result(job)
            except Exception as e:  # any failure is the job's, reported to its caller (noqa: BLE001)
                job.state, job.error = "failed", str(e).splitlines()[0] if str(e) else type(e).__name__
                job.future.set_exception(e)
            finally:
                job.finished = time.time()
                if job.discard:
                    shutil.rmtree(job.folder, ignore_errors=True)

    def stop(self, timeout: float = 600.0) -> None:
        """Cancel the queued jobs, let the running one finish (up to ``timeout`` s), delete every folder."""
        self.stopping = True
        while True:
            try:
                job = self.waiting.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job.state = "cancelled"
                job.future.cancel()
        self.waiting.put(None)
        self.worker.join(timeout)
        shutil.rmtree(self.root, ignore_errors=True)

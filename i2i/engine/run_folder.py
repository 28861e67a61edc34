"""A run's folder, ``output_dir/name``: where its checkpoints, samples, records and logs go,
which checkpoint a run continues from, and the cleanup of writes a kill interrupted."""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import stat
from pathlib import Path
from typing import Any

from ..checkpoint import CheckpointError, save_checkpoint
from ..config import ConfigError
from ..files import remove_leftover
from .runlog import MetricsFile


class RunInUse(ConfigError):
    """Another process is training this run; the message names it."""


class RunFolder:
    """``root`` (``output_dir/name``) with ``checkpoints/`` (``last.pt``, ``best.pt``,
    ``step_N.pt``), ``samples/``, ``metrics.jsonl`` (:attr:`metrics`), ``train.log`` and
    ``config.yaml``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.checkpoints = root / "checkpoints"
        self.last = self.checkpoints / "last.pt"
        self.best = self.checkpoints / "best.pt"
        self.samples = root / "samples"
        self.log = root / "train.log"
        self.config = root / "config.yaml"
        self.metrics = MetricsFile(root / "metrics.jsonl")

    def resume_path(self, resume: str | None) -> Path | None:
        """The checkpoint to continue from: None (a fresh run, refused when the folder already
        holds one), ``"auto"`` (``last.pt`` when present) or a path."""
        if resume is None:
            if self.last.exists():
                raise ConfigError(
                    f"run folder '{self.root}' already holds a checkpoint; continue it with resume='auto' (--resume "
                    "auto), "
                    "or choose another 'name' / 'output_dir' (nothing was overwritten)")
            return None
        if resume == "auto":
            return self.last if self.last.exists() else None
        path = Path(resume)
        if not path.is_file():
            raise CheckpointError(f"resume={resume!r} (--resume): no such checkpoint file; use 'auto' or a path to a "
                                  ".pt file")
        return path

    def remove_stale_temp_files(self) -> None:
        """Atomic writes go through ``.NAME.*.tmp`` files; a process killed mid-write leaves one
        behind (a checkpoint's is as large as the checkpoint). Nothing else writes here now."""
        for folder in (self.root, self.checkpoints, self.samples):
            if folder.is_dir():
                for tmp in folder.glob(".*.tmp"):
                    remove_leftover(tmp)

    def save(self, state: dict[str, Any], step: int, *, keep: int = 0) -> Path:
        """Write ``state`` as ``last.pt`` and, with ``keep`` > 0, as ``step_N.pt`` too, keeping
        the newest ``keep`` of those. Returns ``last.pt``."""
        path = save_checkpoint(self.last, state)
        if keep > 0:
            save_checkpoint(self.checkpoints / f"step_{step:08d}.pt", state)
            for old in sorted(self.checkpoints.glob("step_*.pt"))[:-keep]:
                old.unlink()
        return path

    def lock(self) -> None:
        """Hold ``RUN/.lock`` for this process's lifetime: a second training process on the same
        run (a second ``i2i train``, ``--resume auto`` while it trains) is refused with the
        holder's PID. The kernel releases the lock when its holder exits, however it exits, so a
        killed run never leaves it stuck."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / ".lock"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o666)
        except OSError as e:
            raise RunInUse(f"'{path}' (the run's lock) cannot be opened ({e.strerror}): "
                           + ("it is a symbolic link, which i2i never writes through; remove it"
                              if e.errno == errno.ELOOP else "remove it or choose another output_dir")) from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise RunInUse(f"'{path}' (the run's lock) is not a regular file (a pipe, device or folder); remove it, "
                           "then run again (nothing was changed)")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if not isinstance(e, BlockingIOError):
                os.close(fd)
                raise RunInUse(f"'{path}' (the run's lock) cannot be locked ({e.strerror}: its file system may not "
                               "support locks, as some network file systems do not); put output_dir on a local disk "
                               "(nothing was changed)") from None
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunInUse(f"run folder '{self.root}' is being trained by another process ({holder}); wait for it to "
                           "finish "
                           "or stop it (kill PID: it saves and exits), then continue with --resume auto (nothing was "
                           "changed)") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"PID {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self._lock_fd = fd

    def unlock(self) -> None:
        fd = getattr(self, "_lock_fd", None)
        if fd is not None:
            os.close(fd)  # closing releases the lock
            self._lock_fd = None

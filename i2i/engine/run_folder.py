"""A run's folder, ``output_dir/name``: where its checkpoints, samples, records and logs go,
which checkpoint a run continues from, and the cleanup of writes a kill interrupted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..checkpoint import CheckpointError, save_checkpoint
from ..config import ConfigError
from .runlog import MetricsFile


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
                    f"run folder '{self.root}' already holds a checkpoint; continue it with resume='auto' (--resume auto), "
                    "or choose another 'name' / 'output_dir' (nothing was overwritten)")
            return None
        if resume == "auto":
            return self.last if self.last.exists() else None
        path = Path(resume)
        if not path.is_file():
            raise CheckpointError(f"resume={resume!r} (--resume): no such checkpoint file; use 'auto' or a path to a .pt file")
        return path

    def remove_stale_temp_files(self) -> None:
        """Atomic writes go through ``.NAME.*.tmp`` files; a process killed mid-write leaves one
        behind (a checkpoint's is as large as the checkpoint). Nothing else writes here now."""
        for folder in (self.root, self.checkpoints, self.samples):
            if folder.is_dir():
                for tmp in folder.glob(".*.tmp"):
                    tmp.unlink(missing_ok=True)

    def save(self, state: dict[str, Any], step: int, *, keep: int = 0) -> Path:
        """Write ``state`` as ``last.pt`` and, with ``keep`` > 0, as ``step_N.pt`` too, keeping
        the newest ``keep`` of those. Returns ``last.pt``."""
        path = save_checkpoint(self.last, state)
        if keep > 0:
            save_checkpoint(self.checkpoints / f"step_{step:08d}.pt", state)
            for old in sorted(self.checkpoints.glob("step_*.pt"))[:-keep]:
                old.unlink()
        return path

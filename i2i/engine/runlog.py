"""What a training run tells the person watching it, and what it leaves in ``RUN/train.log``.

On a terminal the progress is a live bar (tqdm) with the latest losses; anywhere else
(a file, a pipe, a scheduler's log) it is one plain line per logged step, never carriage
return frames. ``train.log`` in the run folder gets the start-up banner, every logged step
and the end summary, appended across resumes. Only rank 0 writes.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import torch
from tqdm import tqdm

from .._version import __version__
from ..files import atomic_write_bytes
from ..nets.blocks import count_parameters


@contextlib.contextmanager
def naming_the_file(path: str | Path) -> Iterator[None]:
    """Re-raise an ``OSError`` of a write with ``path`` in it (a full disk names no file)."""
    try:
        yield
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(path)) from None


def format_duration(seconds: float) -> str:
    """``75`` -> ``'1m15s'``; ``3725`` -> ``'1h02m'``."""
    s = int(round(max(seconds, 0.0)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def format_record(record: dict[str, Any], total: int, eta_s: float | None) -> str:
    """One log line: ``step 40/1000 (epoch 1) D_real 0.352 G_L1 0.342 | 7.61 it/s, lr_G 2e-04, ETA 2m06s``."""
    losses = " ".join(f"{k} {v:.4g}" for k,
                      v in record.items() if k not in ("step", "epoch", "it_per_s") and not k.startswith("lr_"))
    lrs = ", ".join(f"{k} {v:.3g}" for k, v in record.items() if k.startswith("lr_"))
    tail = f"{record.get('it_per_s', 0.0):.2f} it/s" + (f", {lrs}" if lrs else "")
    if eta_s is not None:
        tail += f", ETA {format_duration(eta_s)}"
    return f"step {record['step']}/{total} (epoch {record.get('epoch', 0)}) {losses} | {tail}"


class RunLog:
    """Progress display plus ``train.log``. ``enabled`` False (ranks other than 0) makes every
    call a no-op. ``live`` asks for a live bar, which is used only when ``stream`` is a terminal."""

    def __init__(self, log_path: Path | None, *, total: int, initial: int, name: str, live: bool, enabled: bool = True,
                 stream: IO[str] | None = None) -> None:
        self.enabled = enabled
        self.total, self.stream = total, stream if stream is not None else sys.stderr
        self.file = open(log_path, "a", encoding="utf-8") if enabled and log_path is not None else None  # noqa: SIM115
        self.bar = None
        self.start_step, self.t_start = initial, time.perf_counter()
        if enabled and live and getattr(self.stream, "isatty", lambda: False)():
            self.bar = tqdm(total=total, initial=initial, desc=name, dynamic_ncols=True, file=self.stream)

    def _emit(self, line: str, *, to_stream: bool = True) -> None:
        if not self.enabled:
            return
        if self.file is not None:
            with naming_the_file(self.file.name):
                self.file.write(line + "\n")
                self.file.flush()
        if to_stream:
            if self.bar is not None:
                self.bar.write(line, file=self.stream)
            else:
                print(line, file=self.stream, flush=True)

    def lines(self, lines: list[str]) -> None:
        """Print and log some lines (the banner, notices)."""
        for line in lines:
            self._emit(line)

    def advance(self, n: int = 1) -> None:
        """One or more training steps done (moves the live bar)."""
        if self.enabled and self.bar is not None:
            self.bar.update(n)

    def record(self, record: dict[str, Any]) -> None:
        """A logged step: a plain line (file, and the stream unless a live bar shows it)."""
        if not self.enabled:
            return
        done = record["step"] - self.start_step
        elapsed = time.perf_counter() - self.t_start
        eta = elapsed / done * (self.total - record["step"]) if done > 0 else None
        line = format_record(record, self.total, eta)
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.3g}" for k, v in record.items() if k not in ("step", "epoch", "it_per_s")
                                  and not k.startswith("lr_")})
            self._emit(line, to_stream=False)
        else:
            self._emit(line)

    def close(self, summary: str | None = None) -> None:
        """End of training (or of this process): the summary line, then release the file."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if summary:
            self._emit(summary)
        if self.file is not None:
            self.file.close()
            self.file = None


class MetricsFile:
    """``RUN/metrics.jsonl``: one JSON record per line (logged steps and validations), appended
    by rank 0. A run that continues from a checkpoint trims the records written after it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, record: dict[str, Any]) -> None:
        with naming_the_file(self.path), open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")

    def reset(self) -> None:
        """A fresh start: records of a run killed before its first checkpoint go too."""
        self.path.unlink(missing_ok=True)

    def trim(self, step: int) -> int:
        """Keep the records up to ``step`` (those written after the checkpoint a run continues
        from are written again), dropping lines that do not parse (cut off by a kill or a full
        disk). Returns how many lines were dropped as unreadable."""
        if not self.path.exists():
            return 0
        kept, broken = [], 0
        for ln in self.path.read_text(errors="replace").splitlines():
            if not ln.strip():
                continue
            try:
                record = json.loads(ln)
            except json.JSONDecodeError:
                broken += 1
                continue
            if isinstance(record, dict) and record.get("step", 0) <= step:
                kept.append(ln)
        atomic_write_bytes(self.path, ("\n".join(kept) + "\n" if kept else "").encode())
        return broken


def training_banner(trainer: Any) -> list[str]:
    """The start-up lines of a :class:`~i2i.engine.trainer.Trainer`: what runs where, on what
    data, with which nets, from where."""
    cfg, t = trainer.cfg, trainer.cfg.train
    threads = f" ({torch.get_num_threads()} threads)" if trainer.device.type == "cpu" else ""
    nets = ", ".join(f"{n} {count_parameters(m):,} ({type(m).__name__})" for n, m in trainer.pipeline.nets.items())
    feed = trainer.feed
    cache = {"none": "cache: none, the loader reads the files",
             "memory": f"cache: memory, {len(trainer.feed.dataset.cache or ())} images decoded once, "
                       f"{(trainer.feed.dataset.cache.nbytes if trainer.feed.dataset.cache else 0) / 2**20:.1f} MiB",
             "device": f"cache: device, {len(feed.on_device or ())} images on {trainer.device}, "
                       f"{(feed.on_device.nbytes if feed.on_device else 0) / 2**20:.1f} MiB, augmented there in "
                       "batches"}[feed.cache]
    length = (
        f"{t.epochs} epochs = {trainer.total_steps} steps" if t.epochs is not None else f"{trainer.total_steps} steps"
    )
    lines = [
        f"i2i {__version__}: {cfg.pipeline} run '{cfg.name}' in {trainer.folder.root}",
        f"device {trainer.device}{threads}, precision {t.amp if t.amp != 'none' else 'fp32'}, "
        f"Adam {'fused' if cfg.optim.fused else 'multi-tensor'}, world size {trainer.world}, "
        f"compile {'on' if t.compile else 'off'}, channels_last {'on' if t.channels_last else 'off'}",
        f"data: {len(trainer.feed.dataset)} training items"
        + (f" (data.max_items; the folder has {trainer.feed.dataset.limited_from})"
           if getattr(trainer.feed.dataset, "limited_from", None) else "")
        + f" in {cfg.data.root}; preview from {cfg.data.val_root or cfg.data.root}; "
        f"batch {cfg.data.batch_size} x {trainer.world} process(es), {trainer.feed.steps_per_epoch} steps/epoch; "
        f"{length}"
        + f"; {cache}" + (f" ({feed.cache_reason})" if feed.cache_reason else ""),
        f"nets: {nets}",
    ]
    if trainer.pipeline.augment is not None:
        lines.append(f"discriminator augmentation: {trainer.pipeline.augment.extra_repr()} (loss.augment_policy)")
    if trainer.device.type == "cuda":
        tf32 = torch.backends.cudnn.allow_tf32 and torch.cuda.get_device_capability(trainer.device)[0] >= 8
        lines.append(f"cuDNN benchmark {'on' if torch.backends.cudnn.benchmark else 'off'}, "
                     f"TF32 {'on' if tf32 else 'off'} for fp32 convolutions and matrix products")
    extras = [f"EMA of {', '.join(trainer.ema.copies)} (decay up to {t.ema_decay}, "
              "ramped)"] if trainer.ema is not None else []
    batched = [n for n, on in trainer.pipeline.batched.items() if on]
    if batched:
        extras.append(f"horizontal batching: {', '.join(batched)} run once per step on their inputs together")
    if trainer.recalibration.enabled:
        extras.append(f"batch-norm statistics re-estimated over {t.bn_recalibration_batches} batches at each save")
    if extras:
        lines.append("; ".join(extras))
    if trainer.validation.validator is not None:
        lines.append(trainer.validation.describe(t.val_every))
    lines.append(f"resumed from {trainer.resume_path} at step {trainer.step} (epoch "
                 f"{trainer.epoch})" if trainer.resume_path is not None
                 else "fresh start")
    if trainer.lr_changes:
        lines.append(f"learning rates from the config, not the checkpoint: {', '.join(trainer.lr_changes)}")
    return lines

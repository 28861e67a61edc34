"""What a training run tells the person watching it, and what it leaves in ``RUN/train.log``.

On a terminal the progress is a live bar (tqdm) with the latest losses; anywhere else
(a file, a pipe, a scheduler's log) it is one plain line per logged step, never carriage
return frames. ``train.log`` in the run folder gets the start-up banner, every logged step
and the end summary, appended across resumes. Only rank 0 writes.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import IO, Any


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
    losses = " ".join(f"{k} {v:.4g}" for k, v in record.items() if k not in ("step", "epoch", "it_per_s") and not k.startswith("lr_"))
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
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=name, dynamic_ncols=True, file=self.stream)

    def _emit(self, line: str, *, to_stream: bool = True) -> None:
        if not self.enabled:
            return
        if self.file is not None:
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

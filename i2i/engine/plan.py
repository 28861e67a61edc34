"""``i2i train CONFIG --plan``: what a run will cost, measured before it starts.

A trainer on the real data and device, writing into a temporary folder (nothing goes to the run
folder), runs a few warm-up steps, then times real steps (data loading included), one validation,
one sample grid and one checkpoint; the estimate is the configured steps at that rate plus as many
validations, samples and checkpoints as the config asks for. Peak memory is CUDA's allocator
peak, or the process's peak resident size on a CPU. The largest batch that fits is searched on
CUDA (doubling, then bisecting; an out-of-memory error is caught, the cache emptied, and the
search goes on); a CPU has no recoverable out-of-memory (the kernel kills the process), so there
it is estimated from the memory one sample takes against what is free.
"""

from __future__ import annotations

import math
import resource
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch

from .. import dist
from ..config import Config
from .trainer import Trainer


def out_of_memory(e: BaseException) -> bool:
    """Whether ``e`` is an out-of-memory error (torch's, or Python's MemoryError)."""
    return isinstance(e, (MemoryError, torch.OutOfMemoryError)) or "out of memory" in str(e)


def grown(batch: dict[str, Any], n: int) -> dict[str, Any]:
    """``batch`` repeated to ``n`` samples (its tensors and lists along the first axis)."""
    def grow(v: Any) -> Any:
        if isinstance(v, torch.Tensor) and v.dim() > 0:
            return v.repeat(math.ceil(n / v.shape[0]), *([1] * (v.dim() - 1)))[:n]
        if isinstance(v, list) and v:
            return (v * math.ceil(n / len(v)))[:n]
        return v
    return {k: grow(v) for k, v in batch.items()}


def largest_batch(fits: Callable[[int], bool], start: int, limit: int) -> int:
    """The largest ``n`` in ``[start, limit]`` with ``fits(n)``, assuming fitting is monotone:
    doubling from ``start`` until one does not fit, then bisecting (0 when ``start`` does not fit)."""
    if not fits(start):
        return 0
    ok, n = start, start * 2
    while n <= limit and fits(n):
        ok, n = n, n * 2
    bad = min(n, limit + 1)
    while bad - ok > 1:
        mid = (ok + bad) // 2
        ok, bad = (mid, bad) if fits(mid) else (ok, mid)
    return ok


def _timed(fn: Callable[[], Any], device: torch.device) -> float:
    t = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t


def _probe(trainer: Trainer, batch: dict[str, Any]) -> Callable[[int], bool]:
    def fits(n: int) -> bool:
        try:
            trainer.train_step(grown(batch, n))
            trainer.check_losses(reset=True)
            return True
        except (RuntimeError, MemoryError) as e:
            if not out_of_memory(e):
                raise
            if trainer.device.type == "cuda":
                torch.cuda.empty_cache()
            return False
    return fits


def plan(cfg: Config, *, warmup: int = 3, measure: int = 10, max_batch: int = 1024,
         fits: Callable[[int], bool] | None = None) -> dict[str, Any]:
    """Measure a run of ``cfg`` without writing into its run folder. Returns ``steps_per_s``,
    ``total_steps``, ``estimate_s`` (the whole run: start-up, the first steps' extra time, steps,
    validations, samples, checkpoints),
    ``peak_bytes``, ``largest_batch`` (None under several processes), ``batch_note`` and
    ``rank``. ``fits``: the batch-size probe (default: a real training step that catches
    out-of-memory), for tests."""
    with tempfile.TemporaryDirectory(prefix="i2i-plan-") as tmp:
        t0 = time.perf_counter()
        trainer = Trainer(replace(cfg, output_dir=tmp))
        startup_s = time.perf_counter() - t0  # building the nets, the data, the validator: paid once
        dev, t = trainer.device, cfg.train
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        batches = trainer.batches()
        first = next(batches)
        warm_s = _timed(lambda: [trainer.train_step(first) for _ in range(warmup)]
                        + [trainer.check_losses(reset=True)], dev)
        step_s = _timed(lambda: [trainer.train_step(next(batches)) for _ in range(measure)]
                        + [trainer.check_losses(reset=True)], dev) / measure
        val_s = _timed(trainer.validate, dev) if trainer.validation.enabled else 0.0
        sample_s = _timed(trainer.write_samples, dev) if trainer.is_main else 0.0
        save_s = _timed(trainer.save, dev)
        total = trainer.total_steps
        def times(every: int) -> int:  # how often an interval falls in the run (0: never), the end included
            return 0 if every <= 0 else total // every + (total % every != 0)
        estimate = (startup_s + max(0.0, warm_s - warmup * step_s) + total * step_s
                    + times(t.val_every) * val_s * trainer.validation.enabled
                    + times(t.sample_every) * sample_s + times(t.checkpoint_every) * save_s)
        peak = torch.cuda.max_memory_allocated(dev) if dev.type == "cuda" else _rss_peak()
        largest, note = _batch_search(trainer, first, cfg, fits, max_batch, peak)
    return {"rank": trainer.rank, "world": trainer.world, "device": str(dev), "steps_per_s": 1 / step_s,
            "total_steps": total, "estimate_s": estimate, "validation_s": val_s, "checkpoint_s": save_s,
            "peak_bytes": peak, "largest_batch": largest, "batch_note": note}


def _batch_search(trainer: Trainer, first: dict[str, Any], cfg: Config, fits: Callable[[int], bool] | None,
                  max_batch: int, peak: int) -> tuple[int | None, str]:
    b = cfg.data.batch_size
    if trainer.world > 1:
        return None, "not searched under several processes (a rank out of memory would stall the others)"
    if fits is not None or trainer.device.type == "cuda":
        n = largest_batch(fits or _probe(trainer, first), b, max_batch)
        return n, f"searched up to {max_batch} with real steps, out-of-memory caught"
    trainer.train_step(grown(first, 2 * b))  # the peak's growth from b to 2b samples: the memory one sample takes
    trainer.check_losses(reset=True)
    per_sample = max((_rss_peak() - peak) / b, 1.0)
    free = dist.available_bytes(trainer.device) or 0
    return b + int(0.8 * free // per_sample), "estimated on the CPU from the memory one more sample takes"


def _rss_peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def describe(p: dict[str, Any]) -> str:
    """The lines ``i2i train --plan`` prints for one process."""
    who = f"rank {p['rank']} of {p['world']}, " if p["world"] > 1 else ""
    est = p["estimate_s"]
    batch = "" if p["largest_batch"] is None else f"; largest batch that fits: {p['largest_batch']}"
    return (f"plan ({who}{p['device']}): {p['steps_per_s']:.2f} steps/s; {p['total_steps']} steps take about "
            f"{est / 60:.1f} min ({est / 3600:.2f} h) with validation, samples and checkpoints; peak memory "
            f"{p['peak_bytes'] / 2**20:.0f} MiB{batch} ({p['batch_note']})")

"""The logged losses between two log points, kept on the training device.

A training step never reads a value back to the host: :meth:`LossMeter.add` sums the step's
losses and notes the first step at which any of them was non-finite, all with device
operations, and :meth:`LossMeter.read` copies the sums and those steps to the host in one
transfer, at log points and before anything is written (samples, validation, checkpoints).
So a CUDA step runs ahead of the host between log points, and a NaN is still reported with
the step it appeared at.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class MeterReading:
    """What :meth:`LossMeter.read` returns: mean of each loss over the steps added since the
    last reset, the step count, and ``{name: first step it was non-finite}`` (empty: all finite)."""

    means: dict[str, float]
    count: int
    non_finite: dict[str, int]


class LossMeter:
    """Device-side sums of named scalar losses, with the first non-finite step of each.

    ``add(values, step)`` takes 0-dim tensors (any dtype, one device); the names may change
    from step to step (a pipeline whose D skips a step logs fewer terms): a new set of names
    folds the running sums into host-side totals first (one transfer), which is rare.
    """

    def __init__(self) -> None:
        self._names: tuple[str, ...] = ()
        self._sums: torch.Tensor | None = None  # (len(names),) float64 on the device
        self._first_bad: torch.Tensor | None = None  # (len(names),) int64, -1: finite so far
        self._counts: dict[str, int] = {}
        self._host_sums: dict[str, float] = {}
        self._host_bad: dict[str, int] = {}
        self._since_fold = 0
        self.count = 0

    def add(self, values: dict[str, torch.Tensor], step: int) -> None:
        """Add one step's losses (``step``: the 1-based number reported if one is non-finite)."""
        names = tuple(values)
        if names != self._names:
            self._fold()
            self._names = names
        vec = torch.stack([v.detach().reshape(()).to(torch.float64) for v in values.values()])
        bad = ~torch.isfinite(vec)
        if self._sums is None or self._first_bad is None:
            self._sums = torch.zeros_like(vec)
            self._first_bad = torch.full(vec.shape, -1, dtype=torch.int64, device=vec.device)
        self._sums += vec
        self._first_bad = torch.where(bad & (self._first_bad < 0), step, self._first_bad)
        self._since_fold += 1
        self.count += 1

    def _fold(self) -> None:
        """Move the device sums of the current names to the host totals (one transfer)."""
        if self._sums is None or self._first_bad is None:
            return
        sums, bad = torch.stack([self._sums, self._first_bad.to(torch.float64)]).cpu().tolist()
        for name, s, b in zip(self._names, sums, bad):
            self._host_sums[name] = self._host_sums.get(name, 0.0) + s
            self._counts[name] = self._counts.get(name, 0) + self._since_fold
            if b >= 0 and name not in self._host_bad:
                self._host_bad[name] = int(b)
        self._sums = self._first_bad = None
        self._since_fold = 0

    def read(self, *, reset: bool = False) -> MeterReading:
        """The means since the last reset and the non-finite steps (one device-to-host copy);
        ``reset`` starts a new interval (the non-finite record is kept until a reset too)."""
        self._fold()
        reading = MeterReading({k: v / self._counts[k] for k, v in self._host_sums.items()}, self.count,
                               dict(self._host_bad))
        if reset:
            self._host_sums, self._counts, self._host_bad, self.count = {}, {}, {}, 0
        return reading

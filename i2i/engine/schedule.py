"""The learning rate as a pure function of the step.

The trainer writes ``base_lr * lr_factor(step)`` into every optimizer's parameter groups
before each step: no scheduler object, no scheduler state in checkpoints (a resumed run
computes the same rate from its step), and a rate changed on resume simply applies from the
current step on.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ..config import Config


def lr_factor(cfg: Config, steps_per_epoch: int, total_steps: int) -> Callable[[int], float]:
    """The multiplicative learning-rate factor of step ``t`` (0-based: the rate step ``t``
    trains with), per ``cfg.schedule``; ``decay_start`` and ``step_size`` count epochs when
    training by epochs."""
    s = cfg.schedule
    unit = steps_per_epoch if cfg.train.epochs is not None else 1
    if s.policy == "constant":
        return lambda t: 1.0
    if s.policy == "linear":
        start = min(s.decay_start * unit, total_steps)
        span = max(total_steps - start, 1)
        return lambda t: 1.0 - max(0, t - start) / span
    if s.policy == "step":
        size = max(s.step_size * unit, 1)
        return lambda t: s.gamma ** (t // size)
    return lambda t: 0.5 * (1.0 + math.cos(math.pi * min(t, total_steps) / max(total_steps, 1)))

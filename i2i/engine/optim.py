"""The optimizers a pipeline declares (one Adam per group) with their learning rates: the rate
of a step is ``base * factor(step)`` (:mod:`.schedule`), written into the groups before the step,
so no scheduler state exists and a rate changed on resume applies from the current step."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import CheckpointError
from ..config import OptimConfig


class Optimizers:
    """``groups``: name -> ``{"params", "lr", "interval"}`` (``Pipeline.param_groups``);
    ``factor``: the schedule's factor of a step. :attr:`by_name` holds the ``torch.optim.Adam``
    objects, :attr:`intervals` their update intervals."""

    def __init__(self, groups: dict[str, dict[str, Any]], o: OptimConfig, factor: Callable[[int], float], *,
                 capturable: bool = False) -> None:
        # capturable (train.cuda_graphs): the step count lives on the device and the rate in a
        # device tensor (set_lr fills it in place), so a captured optimizer step reads both.
        self.by_name = {name: torch.optim.Adam(g["params"], lr=g["lr"], betas=(o.beta1, o.beta2),
                                               weight_decay=o.weight_decay,
                                               fused=o.fused, capturable=capturable) for name, g in groups.items()}
        self.capturable = capturable
        self.base_lrs = {name: float(g["lr"]) for name, g in groups.items()}
        self.rates = dict(self.base_lrs)
        self.intervals = {name: int(g.get("interval", 1)) for name, g in groups.items()}
        self.factor = factor

    def set_lr(self, step: int) -> None:
        """Write the rate of ``step`` into every group; ``initial_lr`` keeps the base rate in the
        optimizer's state (where older checkpoints' schedulers also kept it). Capturable
        optimizers hold the rate in a device tensor, filled in place (no host wait)."""
        factor = self.factor(step)
        for name, opt in self.by_name.items():
            self.rates[name] = rate = self.base_lrs[name] * factor
            for g in opt.param_groups:
                g["initial_lr"] = self.base_lrs[name]
                if not self.capturable:
                    g["lr"] = rate
                elif isinstance(g["lr"], torch.Tensor):
                    g["lr"].fill_(rate)
                else:  # first call, or after loading a checkpoint's float: a tensor on the parameters' device
                    g["lr"] = torch.tensor(rate, dtype=torch.float32, device=g["params"][0].device)

    def current_lrs(self) -> dict[str, float]:
        """Optimizer name -> the rate the next step trains with."""
        return dict(self.rates)

    def state_dict(self) -> dict[str, Any]:
        """The optimizers' states, rates as floats whether or not they are held in tensors (one
        checkpoint format for eager and captured runs)."""
        states = {n: o.state_dict() for n, o in self.by_name.items()}
        for state in states.values():
            for g in state["param_groups"]:
                if isinstance(g.get("lr"), torch.Tensor):
                    g["lr"] = float(g["lr"])
        return states

    def load_state_dict(self, states: dict[str, Any], source: str | Path) -> list[str]:
        """Load saved optimizer states; returns the base rates the config changed since
        (``"G 0.0002 -> 1e-05"``), which apply from the next step on."""
        changes = []
        for name, opt in self.by_name.items():
            try:
                opt.load_state_dict(states[name])
            except ValueError as e:  # the weights fitted (perhaps after an upgrade), the optimizer's slots do not
                raise CheckpointError(
                    f"the {name} optimizer state in '{source}' does not fit this run's parameters ({e}): the "
                    "checkpoint "
                    f"is of an earlier layout of these nets, so it cannot resume exactly; start a new run from its "
                    f"weights with --set model.generator.init_from={source}") from None
            for g in opt.param_groups:  # a checkpoint of a captured run may hold tensors here
                if isinstance(g.get("lr"), torch.Tensor) and not self.capturable:
                    g["lr"] = float(g["lr"])
            old = float(opt.param_groups[0].get("initial_lr", self.base_lrs[name]))
            if not math.isclose(old, self.base_lrs[name], rel_tol=1e-12):
                changes.append(f"{name} {old:g} -> {self.base_lrs[name]:g}")
        return changes

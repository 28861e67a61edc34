"""The :class:`~i2i.pipelines.base.StepContext` the trainer hands to a pipeline's ``train_step``:
the only way a pipeline reaches wrapped modules, autocast, optimizers and the gradient scaler."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


class TrainingContext:
    """``nets``: the pipeline's own modules; ``train_modules`` / ``frozen_modules``: what to call
    while training / while frozen (DDP- and compile-wrapped, or not); ``optimizers`` with their
    update ``intervals`` (an optimizer steps on iterations where ``(step + 1) % interval == 0``:
    the generator side's interval is ``optim.n_critic``); ``amp_dtype``: autocast's dtype or None."""

    def __init__(self, *, nets: dict[str, nn.Module], train_modules: dict[str, nn.Module],
                 frozen_modules: dict[str, nn.Module],
                 optimizers: dict[str, torch.optim.Optimizer], intervals: dict[str, int], scaler: torch.amp.GradScaler,
                 device_type: str, amp_dtype: torch.dtype | None) -> None:
        self.nets, self.train_modules, self.frozen_modules = nets, train_modules, frozen_modules
        self.optimizers, self.intervals, self.scaler = optimizers, intervals, scaler
        self.device_type, self.amp_dtype = device_type, amp_dtype
        self.step = 0
        self.backward_losses: dict[str, torch.Tensor] = {}
        self._params: dict[str, list[torch.Tensor]] = {}

    def begin(self, step: int) -> None:
        """Start iteration ``step`` (0-based)."""
        self.step = step
        self.backward_losses = {}

    def module(self, name: str) -> nn.Module:
        return self.train_modules[name]

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.amp_dtype)

    def updates(self, opt_name: str) -> bool:
        """Whether optimizer ``opt_name`` steps in this iteration (its declared interval)."""
        return (self.step + 1) % self.intervals.get(opt_name, 1) == 0

    def backward_step(self, opt_name: str, loss: torch.Tensor) -> None:
        """Backpropagate ``loss`` into the parameters of optimizer ``opt_name`` only (autograd's
        ``inputs``: no other net's gradients are computed or touched, which is how a frozen
        discriminator stays out of the G step) and step that optimizer."""
        opt = self.optimizers[opt_name]
        # Kept so the trainer checks the totals it trained on, not only the logged parts.
        self.backward_losses[f"{opt_name}_total"] = loss.detach()
        if not self.updates(opt_name):
            return
        opt.zero_grad(set_to_none=True)
        params = self._params.get(opt_name)
        if params is None:
            params = self._params[opt_name] = [p for g in opt.param_groups for p in g["params"] if p.requires_grad]
        self.scaler.scale(loss).backward(inputs=params)
        self.scaler.step(opt)

    @contextlib.contextmanager
    def frozen(self, *names: str) -> Iterator[tuple[nn.Module, ...]]:
        """Modules to call for nets ``names`` while another net trains: without DDP (nothing of
        theirs is synchronised). Their parameters keep ``requires_grad``: toggling it between
        calls of a compiled module can silently drop gradients (pytorch#139476); they get no
        gradient because :meth:`backward_step` backpropagates into the stepped optimizer's
        parameters only."""
        yield tuple(self.frozen_modules[n] for n in names)

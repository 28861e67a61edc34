"""An exponential moving average of networks' weights (Karras et al.'s generator smoothing),
in the shape of timm's ``ModelEmaV3`` / diffusers' ``EMAModel``: copies that are never
trained, only averaged after each step, with a decay ramp, and a state dict for checkpoints."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from ..checkpoint import load_state_strict, state_of


class ModelEMA:
    """Averaged copies of ``nets`` (name -> module). ``max_decay``: the decay at most; the
    average's half-life is ``rampup`` (5 %) of the steps so far until then (without the ramp a
    constant 0.999 would still be 74 % random initialisation after 300 steps). Buffers (batch-norm
    statistics) are copied, not averaged."""

    def __init__(self, nets: dict[str, nn.Module], max_decay: float, *, rampup: float = 0.05) -> None:
        self.max_decay, self.rampup = max_decay, rampup
        self.copies: dict[str, nn.Module] = {n: copy.deepcopy(m).eval().requires_grad_(False) for n, m in nets.items()}

    def decay_at(self, step: int) -> float:
        """The decay used after ``step`` updates."""
        return min(self.max_decay, 0.5 ** (1.0 / max(self.rampup * step, 1e-8)))

    @torch.no_grad()
    def update(self, nets: dict[str, nn.Module], step: int) -> None:
        """Move every copy toward its net's current weights (after ``step`` updates)."""
        d = self.decay_at(step)
        for name, ema in self.copies.items():
            net = nets[name]
            # One multi-tensor kernel each on CUDA (not one per tensor); the same values as lerp_ / copy_.
            torch._foreach_lerp_(list(ema.parameters()), [p.detach() for p in net.parameters()], 1.0 - d)
            ema_buffers, buffers = list(ema.buffers()), list(net.buffers())
            if ema_buffers:
                torch._foreach_copy_(ema_buffers, buffers)

    def state_dict(self) -> dict[str, dict[str, torch.Tensor]]:
        """Name -> the copy's CPU state dict (what checkpoints store under ``ema``)."""
        return {n: state_of(m) for n, m in self.copies.items()}

    def load_state_dict(self, state: dict[str, dict[str, torch.Tensor]], nets: dict[str, nn.Module],
                        source: str | Path) -> None:
        """Load saved copies; a net without one (EMA switched on for a run that had none) starts
        from that net's current weights."""
        for name, ema in self.copies.items():
            if name in state:
                load_state_strict(ema, state[name], what=f"{name} (EMA)", source=source)
            else:
                ema.load_state_dict(nets[name].state_dict())

    def to(self, device: torch.device) -> ModelEMA:
        for m in self.copies.values():
            m.to(device)
        return self

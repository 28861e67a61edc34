"""``train.cuda_graphs``: the whole training step (the pipeline's D and G steps, backward
passes and optimizer updates) captured once into a CUDA graph and replayed, so a step costs
one launch instead of thousands (what bounds small batches on a fast GPU).

What makes a step capturable, and where i2i provides it: no host synchronisation and no
branch on device values (issue 24's item 2: losses stay on the device, checks are read at
log points); the step's random decisions drawn on the host beforehand and sent with the batch
(:meth:`~i2i.pipelines.base.Pipeline.host_draws`); optimizers built ``capturable`` with the
learning rate held in a device tensor that the schedule fills in place
(:class:`~i2i.engine.optim.Optimizers`); no ``requires_grad`` toggling (the frozen net is kept
out of a step's gradients through autograd's ``inputs``). What cannot be captured is refused
by name before training (:func:`blockers`). The weight average, the loss meter and the
schedule run eagerly between replays; so do validation, previews and checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..config import Config

#: Eager steps before the capture: optimizer state allocated, cuDNN algorithms chosen, pools filled.
WARMUP_STEPS = 3


def blockers(cfg: Config, pipe: type, *, device: torch.device, world: int) -> list[str]:
    """Why ``cfg`` cannot train with ``train.cuda_graphs`` here (empty: it can), each naming its key."""
    out = []
    if device.type != "cuda":
        out.append(f"train.cuda_graphs needs a CUDA device (training runs on {device}); set train.cuda_graphs: false")
        return out
    if cfg.train.amp == "fp16":
        out.append("train.amp: fp16 (its gradient scaler decides on the host whether to step); use bf16 with "
                   "train.cuda_graphs")
    if cfg.optim.n_critic > 1:
        out.append(f"optim.n_critic: {cfg.optim.n_critic} (the generator steps on some iterations only, a branch a "
                   "graph cannot "
                   "hold); use 1 with train.cuda_graphs, or a higher optim.lr_d")
    if world > 1:
        out.append("torchrun with train.cuda_graphs (DDP's gradient all-reduce is not captured here); train on one GPU "
                   "or set "
                   "train.cuda_graphs: false")
    out += pipe.capture_blockers(cfg)
    return out


class CapturedStep:
    """Runs ``step(batch) -> {name: 0-dim tensor}`` eagerly for :data:`WARMUP_STEPS` calls (the
    last on a side stream, as CUDA graph capture wants), then captures it once into a
    :class:`torch.cuda.CUDAGraph` on static copies of the batch's tensors and from then on
    copies each batch into them and replays. Returns fresh copies of the outputs (a replay
    overwrites the static ones). A batch of other shapes than the captured one (an epoch's last,
    smaller batch) runs eagerly: the same parameters, optimizer state and pools, one step."""

    def __init__(self, step: Callable[[dict[str, Any]], dict[str, torch.Tensor]], device: torch.device,
                 warmup: int = WARMUP_STEPS) -> None:
        self.step, self.device, self.warmup = step, device, warmup
        self.calls = 0
        self.eager_calls = 0  # after the capture: batches of another shape
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static_in: dict[str, Any] = {}
        self.static_out: dict[str, torch.Tensor] = {}

    @property
    def captured(self) -> bool:
        return self.graph is not None

    def __call__(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        self.calls += 1
        if self.graph is None and self.calls < self.warmup:
            return self.step(batch)
        if self.graph is None and self.calls == self.warmup:
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                out = self.step(batch)
            torch.cuda.current_stream(self.device).wait_stream(side)
            return out
        if self.graph is None:
            self._capture(batch)
        elif not self._fits(batch):  # e.g. an epoch's last, smaller batch: run it eagerly
            self.eager_calls += 1
            return self.step(batch)
        else:
            for k, v in batch.items():
                if isinstance(v, torch.Tensor):
                    self.static_in[k].copy_(v, non_blocking=True)
        assert self.graph is not None
        self.graph.replay()
        return {k: v.clone() for k, v in self.static_out.items()}

    def _fits(self, batch: dict[str, Any]) -> bool:
        return all(not isinstance(v, torch.Tensor) or (k in self.static_in and self.static_in[k].shape == v.shape
                                                       and self.static_in[k].dtype == v.dtype) for k,
                                                       v in batch.items())

    def _capture(self, batch: dict[str, Any]) -> None:
        self.static_in = {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.static_out = self.step(self.static_in)
        self.graph = graph

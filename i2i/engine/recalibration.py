"""Batch-norm statistics for inference, re-estimated before every save ("precise BN", Wu &
Johnson 2021): the running averages kept during training lag the weights, and EMA weights never
produce statistics of their own; both made eval-mode inference lose to the same weights with
batch statistics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..config import Config
from ..data.base import DataError
from ..data.io import ImageReadError
from ..nets.blocks import has_batch_norm, recalibrate_batch_norm

EPOCH = 2**31 - 1  # an epoch number training never reaches: its own augmentation draws


class Recalibration:
    """Re-estimates the statistics of the inference generators (and their EMA copies) over a
    fixed set of ``train.bn_recalibration_batches`` training batches (the same at every save, so
    decoded once and kept on the CPU), built from ``(seed, epoch, index)`` keys: no loader and no
    global RNG, so exact resume holds. ``pipeline.generator_inputs`` says what a generator is fed."""

    def __init__(self, pipeline: Any, dataset: Any, cfg: Config,
                 to_device: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self.pipeline, self.dataset, self.cfg, self.to_device = pipeline, dataset, cfg, to_device
        self._cache: list[dict[str, Any]] | None = None
        self._done_at: int | None = None

    def generators(self) -> list[str]:
        """The inference generators (their EMA copies follow them)."""
        pipe = type(self.pipeline)
        names = sorted(set(pipe.directions.values()) or {pipe.sampled_net})
        return [n for n in names if n in self.pipeline.nets]

    @property
    def enabled(self) -> bool:
        """Whether saves re-estimate anything: batches are asked for and a generator has batch norm."""
        return self.cfg.train.bn_recalibration_batches > 0 and any(
            has_batch_norm(self.pipeline.nets[n]) for n in self.generators()
        )

    def batches(self) -> list[dict[str, Any]]:
        """The fixed recalibration batches, on the training device."""
        if self._cache is None:
            k, bs, seed = self.cfg.train.bn_recalibration_batches, self.cfg.data.batch_size, self.cfg.seed
            order = torch.randperm(len(self.dataset),
                                   generator=torch.Generator().manual_seed(seed * 1_000_003 + 4243)).tolist()
            bad: set[int] = set()
            items: list[dict[str, Any]] = []
            i = 0
            while len(items) < k * bs and len(bad) < len(order):
                index = order[i % len(order)]
                i += 1
                if index in bad:
                    continue
                try:
                    items.append(self.dataset[(EPOCH, index)])
                except (ImageReadError, DataError):  # a broken file is named when training meets it; skip it here
                    bad.add(index)
            collate = torch.utils.data.default_collate
            self._cache = [collate(items[j : j + bs]) for j in range(0, len(items), bs)]
        return [self.to_device(b) for b in self._cache]

    def __call__(self, step: int, averaged: dict[str, nn.Module]) -> list[str]:
        """Recalibrate for the weights of ``step`` (once per step: the same batches and weights
        give the same statistics), as inference runs the nets (dropout off). Running statistics
        never influence a training step, so this changes nothing but inference. Returns the
        names of the nets recalibrated."""
        if not self.enabled or self._done_at == step:
            return []
        self._done_at = step
        targets = [(n, n, self.pipeline.nets[n]) for n in self.generators()]
        targets += [(n, f"{n} (EMA)", m) for n, m in averaged.items()]
        targets = [t for t in targets if has_batch_norm(t[2])]
        if not targets:
            return []
        batches = self.batches()
        for name, _, net in targets:
            gen = torch.Generator().manual_seed(self.cfg.seed + 7919)  # the same latents for a net and its EMA
            recalibrate_batch_norm(net, (self.pipeline.generator_inputs(name, b, gen) for b in batches))
        return [label for _, label, _ in targets]

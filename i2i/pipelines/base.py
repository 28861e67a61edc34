"""The Pipeline protocol the trainer drives, and the helpers pipelines share.

A pipeline owns its networks (``nets``), its losses, and the order of its
discriminator / generator steps. It never touches files, devices, optimizers or
process groups: the trainer hands it a :class:`StepContext` for that.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any, ClassVar, Protocol

import torch
from torch import nn

from ..config import Config, DiscriminatorConfig, GeneratorConfig
from ..registry import DISCRIMINATOR_PRESETS, build_discriminator, build_generator


class StepContext(Protocol):
    """What the trainer gives a pipeline's ``train_step``."""

    step: int

    def module(self, name: str) -> nn.Module:
        """The training-time callable for net ``name`` (DDP- and/or compile-wrapped)."""

    def autocast(self) -> AbstractContextManager:
        """Mixed-precision region as configured (a no-op without AMP)."""

    def backward_step(self, opt_name: str, loss: torch.Tensor) -> None:
        """Zero the grads of optimizer ``opt_name``, backpropagate ``loss`` (scaled under
        fp16) and step that optimizer."""

    def frozen(self, *names: str) -> AbstractContextManager[tuple[nn.Module, ...]]:
        """Freeze the named nets' parameters for the block and yield modules to call that
        do not take part in gradient synchronisation (e.g. D during the G step)."""


GENERATOR_KEYS = ("norm", "dropout", "num_downs", "n_blocks", "scale", "global_skip", "latent_dim", "num_classes")


def generator_from_config(g: GeneratorConfig, extra: dict[str, Any] | None = None, exclude: tuple[str, ...] = ()) -> nn.Module:
    """Build the generator a :class:`GeneratorConfig` describes. Null keys take the
    architecture's default; ``extra`` adds keywords the pipeline decides (e.g. DCGAN's image
    size); ``exclude`` drops ones the architecture has no use for (DCGAN has no input image)."""
    kwargs: dict[str, Any] = dict(in_channels=g.in_channels, out_channels=g.out_channels, base_channels=g.base_channels)
    for key in GENERATOR_KEYS:
        if getattr(g, key) is not None:
            kwargs[key] = getattr(g, key)
    kwargs.update(extra or {})
    for key in exclude:
        kwargs.pop(key, None)
    return build_generator(g.name, init=g.init, init_gain=g.init_gain, **kwargs)


def discriminator_from_config(d: DiscriminatorConfig, in_channels: int, extra: dict[str, Any] | None = None) -> nn.Module:
    """Build the discriminator ``d`` describes; ``in_channels`` applies when ``d.in_channels``
    is null; ``extra``: further keywords the pipeline decides (e.g. the SRGAN input size)."""
    kwargs: dict[str, Any] = dict(
        in_channels=d.in_channels or in_channels, base_channels=d.base_channels, norm=d.norm, spectral_norm=d.spectral_norm
    )
    arch = DISCRIMINATOR_PRESETS.get(d.name, (d.name, {}))[0]
    if arch == "patch" and d.name != "basic":
        kwargs["n_layers"] = d.n_layers
    kwargs.update(extra or {})
    return build_discriminator(d.name, init=d.init, init_gain=d.init_gain, **kwargs)


class Pipeline:
    """Base class: subclasses set ``net_names`` / ``directions`` and implement the hooks.

    ``directions`` maps a direction name (``a_to_b``...) to the generator that performs
    it; the translator and exporter use it to pick a net without knowing the method.
    """

    net_names: ClassVar[tuple[str, ...]] = ()
    directions: ClassVar[dict[str, str]] = {}

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.nets: dict[str, nn.Module] = {name: self.build_net(cfg, name) for name in self.net_names}

    # --- construction (class-level, so inference can build one net without the rest) ---
    @classmethod
    def build_net(cls, cfg: Config, name: str) -> nn.Module:
        raise NotImplementedError

    @classmethod
    def make_dataset(cls, cfg: Config, *, train: bool, root: str | None = None) -> torch.utils.data.Dataset:
        raise NotImplementedError

    @classmethod
    def default_direction(cls, cfg: Config) -> str:
        return next(iter(cls.directions))

    # --- training hooks ---
    def param_groups(self) -> dict[str, dict[str, Any]]:
        """Optimizer name -> ``{"params": [...], "lr": float}``."""
        raise NotImplementedError

    def train_step(self, batch: dict[str, Any], ctx: StepContext) -> dict[str, torch.Tensor]:
        """One iteration; returns detached scalar losses by name."""
        raise NotImplementedError

    def sample(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Images for a sample grid, name -> ``(N, C, H, W)`` in [-1, 1] (columns in order)."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Pipeline state beyond the nets (e.g. image pools) for exact resume."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        del state

    def parameters(self) -> Iterator[nn.Parameter]:
        for net in self.nets.values():
            yield from net.parameters()

"""The Pipeline base class the trainer drives, and the StepContext it hands to pipelines.

A pipeline *declares* what it is, so that every command can work with any registered
pipeline without naming it:

- ``kind``: ``"translation"`` (images in, images out: ``convert``, ``Translator``) or
  ``"generation"`` (noise in: ``sample``, ``Generator``);
- ``directions``: direction -> the net that performs it (translation), or ``sampled_net``
  (generation); :meth:`generator_name` answers for both;
- ``evaluation``: the name of its evaluation in :data:`i2i.evaluate.EVALUATIONS`;
- ``DataConfig`` / ``LossConfig``: the dataclasses of its ``data`` and ``loss`` sections;
- ``default_nets`` and ``derived_options``: the network names used when the config names
  none, and the constructor options the pipeline sets itself (refused in the config);
  ``renamed_options``: section -> {old key: new key}, for a clear error on old YAML files;
- ``example``: the smallest config that exercises every net (the registry tests train it).

A pipeline owns its networks (``nets``), its losses, and the order of its discriminator /
generator steps. It never touches files, devices, optimizers or process groups: the
trainer hands it a :class:`StepContext` for that.
"""

from __future__ import annotations

import inspect
from contextlib import AbstractContextManager
from typing import Any, ClassVar, Literal, Protocol

import torch
from torch import nn

from ..augment import DiscriminatorAugment
from ..config import Config, ConfigError, DataConfig, LossConfig, NetConfig
from ..hints import first_line
from ..losses import GANLoss, shift_consistency
from ..nets.blocks import size_multiple
from ..nets.registry import build_discriminator, build_generator, resolve_net


class StepContext(Protocol):
    """What the trainer gives a pipeline's ``train_step``."""

    step: int

    def module(self, name: str) -> nn.Module:
        """The training-time callable for net ``name`` (DDP- and/or compile-wrapped)."""

    def autocast(self) -> AbstractContextManager:
        """Mixed-precision region as configured (a no-op without AMP)."""

    def backward_step(self, opt_name: str, loss: torch.Tensor) -> None:
        """Zero the grads of optimizer ``opt_name``, backpropagate ``loss`` (scaled under
        fp16) and step that optimizer; nothing when it does not update this iteration
        (:meth:`updates`)."""

    def updates(self, opt_name: str) -> bool:
        """Whether optimizer ``opt_name`` steps this iteration: on every ``interval``-th one, as
        its group declares (the generator side's interval is ``optim.n_critic``)."""

    def frozen(self, *names: str) -> AbstractContextManager[tuple[nn.Module, ...]]:
        """Freeze the named nets' parameters for the block and yield modules to call that
        do not take part in gradient synchronisation (e.g. D during the G step)."""


def to_device_async(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A CPU tensor made inside a step (e.g. latents from the CPU generator, which keeps runs
    reproducible across devices) sent to ``device`` without waiting for it: on CUDA through
    pinned memory with a non-blocking copy (a plain copy from pageable memory synchronises)."""
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def net_from_spec(spec: NetConfig, **decided: Any) -> nn.Module:
    """Build the network a config's ``spec`` describes, with initialised weights. ``decided`` are
    keyword arguments the pipeline sets (its ``derived_options``, which the config loader refuses
    from users, or e.g. CycleGAN's swapped channels for ``G_ba``); they win over the options.
    Those the architecture does not accept are dropped, so one call serves several architectures."""
    cls, _ = resolve_net(spec.role, spec.name)
    params = inspect.signature(cls).parameters
    kwargs = {**spec.options, **{k: v for k, v in decided.items() if k in params}}
    build = build_generator if spec.role == "generator" else build_discriminator
    return build(spec.name, init=spec.init, init_gain=spec.init_gain, **kwargs)


class Pipeline:
    """Base class: subclasses set the declarations (see the module docstring) and implement the hooks."""

    name: ClassVar[str]
    kind: ClassVar[Literal["translation", "generation"]] = "translation"
    net_names: ClassVar[tuple[str, ...]] = ()
    directions: ClassVar[dict[str, str]] = {}
    sampled_net: ClassVar[str | None] = None
    evaluation: ClassVar[str] = "paired"
    DataConfig: ClassVar[type[DataConfig]] = DataConfig
    LossConfig: ClassVar[type[LossConfig]] = LossConfig
    default_nets: ClassVar[dict[str, str]] = {}
    derived_options: ClassVar[dict[str, tuple[str, ...]]] = {}
    renamed_options: ClassVar[dict[str, dict[str, str]]] = {}
    example: ClassVar[dict[str, Any]] = {}

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.nets: dict[str, nn.Module] = {name: self.build_net(cfg, name) for name in self.nets_for(cfg)}
        # Frozen helper networks of the losses (e.g. VGG): moved to the device by the
        # trainer with the nets, never trained or saved.
        self.loss_modules: dict[str, nn.Module] = {}
        # Nets the step runs once on several inputs concatenated (``train.horizontal_batching``);
        # a pipeline that batches says which, for the banner.
        self.batched: dict[str, bool] = {}
        # The discriminator augmentation of :meth:`adversarial_loss` (``loss.augment_policy``).
        self.augment: DiscriminatorAugment | None = None

    # --- declarations as questions ---
    @classmethod
    def nets_for(cls, cfg: Config) -> tuple[str, ...]:
        """The nets this config trains (all of ``net_names`` unless a pipeline drops some)."""
        return cls.net_names

    @classmethod
    def default_direction(cls, cfg: Config) -> str | None:
        """The direction inference uses when none is asked for (None for generation)."""
        return next(iter(cls.directions), None)

    @classmethod
    def generator_names(cls) -> set[str]:
        """The nets inference runs (every other net is a discriminator)."""
        return set(cls.directions.values()) | ({cls.sampled_net} if cls.sampled_net else set())

    @classmethod
    def generator_name(cls, cfg: Config, direction: str | None = None) -> str:
        """The net that inference runs: the generator of ``direction`` (default: the trained
        one) for translation, ``sampled_net`` for generation. A :class:`ConfigError`-style
        ``ValueError`` names the directions on offer otherwise."""
        if cls.kind == "generation":
            if direction is not None:
                raise ValueError(f"{cls.name} generates images from noise: it has no direction (got {direction!r})")
            return cls.sampled_net or cls.net_names[0]
        direction = direction or cls.default_direction(cfg)
        if direction not in cls.directions:
            raise ValueError(f"{cls.name} has no direction {direction!r}; it offers {', '.join(cls.directions)}")
        return cls.directions[direction]

    @classmethod
    def validate_config(cls, cfg: Config) -> None:
        """Checks of this method across sections, after each section's own ``problems()`` (raise
        :class:`ConfigError` naming the keys)."""
        if cls.default_nets.get("discriminator") and cfg.model.discriminator is None:
            raise ConfigError(f"the {cls.name} pipeline needs model.discriminator")
        for key in ("in_channels", "out_channels"):
            if key in cfg.model.generator.options and cfg.model.generator.options[key] == 2:
                raise ConfigError(f"config key 'model.generator.{key}' is 2; images have 1 (gray), 3 (RGB) or 4 "
                                  "(RGBA) channels")

    @classmethod
    def check_buildable(cls, cfg: Config) -> None:
        """After :meth:`validate_config`: every net this config trains can be built (on the meta
        device: shapes only, no memory), so a constructor's objection (e.g. DCGAN's image size)
        is a config error before anything runs; and training crops fit the generators."""
        for name in cls.nets_for(cfg):
            try:
                with torch.device("meta"):
                    cls.build_net(cfg, name)
            except (ValueError, TypeError, RuntimeError, KeyError) as e:
                role = "generator" if name in cls.generator_names() else "discriminator"
                raise ConfigError(f"model.{role} (net {name}) cannot be built from this config: "
                                  f"{first_line(e)}") from None
        cls._check_crop_size(cfg)

    @classmethod
    def _check_crop_size(cls, cfg: Config) -> None:
        """Training crops must be a multiple of what each generator's downsampling needs (a
        U-Net with 7 levels: 128), said before training instead of a shape error deep inside."""
        d = cfg.data
        if cls.kind != "translation" or not hasattr(d, "crop_size") or getattr(d, "preprocess", "none") == "none":
            return
        for name in sorted(set(cls.directions.values()) & set(cls.nets_for(cfg))):
            with torch.device("meta"):  # shapes only: no memory, no initialisation cost
                m = size_multiple(cls.build_net(cfg, name))
            if d.crop_size % m:
                lower, upper = d.crop_size // m * m, (d.crop_size // m + 1) * m
                sizes = f"{lower} or {upper}" if lower else f"{upper}"
                raise ConfigError(
                    f"data.crop_size={d.crop_size} does not fit generator {name} ({cfg.model.generator.name}), which "
                    "needs sizes "
                    f"that are multiples of {m}; use {sizes} (or a generator with fewer downsamplings)")

    @classmethod
    def working_bytes(cls, cfg: Config, height: int, width: int) -> tuple[int, str]:
        """Bytes per sample a step needs beyond the nets' activations for a training item of ``height``
        x ``width`` (SRGAN: the degradation's images), and what they are for, in words (the engine's
        memory estimate names it). None by default."""
        del cfg, height, width
        return 0, ""

    @classmethod
    def generator_input_size(cls, cfg: Config, height: int, width: int) -> tuple[int, int]:
        """The size generators get from a training item of ``height`` x ``width`` (the item's, unless the
        step resizes it first: SRGAN's on-device degradation). The engine's memory estimate reads it."""
        del cfg
        return height, width

    # --- construction (class-level, so inference can build one net without the rest) ---
    @classmethod
    def build_net(cls, cfg: Config, name: str) -> nn.Module:
        raise NotImplementedError

    @classmethod
    def make_dataset(cls, cfg: Config, *, train: bool, root: str | None = None) -> torch.utils.data.Dataset:
        raise NotImplementedError

    @classmethod
    def capture_blockers(cls, cfg: Config) -> list[str]:
        """What in ``cfg`` a CUDA graph of this pipeline's step cannot hold (``train.cuda_graphs``),
        each naming its key and what to set (none by default)."""
        del cfg
        return []

    # --- training hooks ---
    def param_groups(self) -> dict[str, dict[str, Any]]:
        """Optimizer name -> ``{"params": [...], "lr": float, "interval": int}`` (the optimizer
        steps on every ``interval``-th iteration; 1 when left out). Build them with
        :meth:`generator_group` and :meth:`discriminator_group`."""
        raise NotImplementedError

    def generator_group(self, *names: str) -> dict[str, Any]:
        """An optimizer group for the generator side's nets ``names``: ``optim.lr_g``, stepping on
        every ``optim.n_critic``-th iteration when this pipeline trains a discriminator."""
        adversarial = any(n not in self.generator_names() for n in self.nets)
        return {"params": [p for n in names for p in self.nets[n].parameters()], "lr": self.cfg.optim.lr_g,
                "interval": self.cfg.optim.n_critic if adversarial else 1}

    def discriminator_group(self, *names: str) -> dict[str, Any]:
        """An optimizer group for discriminators ``names``: ``optim.lr_d``, stepping every iteration."""
        return {"params": [p for n in names for p in self.nets[n].parameters()], "lr": self.cfg.optim.lr_d,
                "interval": 1}

    def adversarial_loss(self, loss: LossConfig) -> GANLoss:
        """The :class:`~i2i.losses.GANLoss` of a ``loss`` section, its augmentation (if any) kept
        as :attr:`augment`: placed on the device with the nets, saved in :meth:`state_dict`,
        its probability logged as ``aug_p`` (:meth:`step_logs`)."""
        gan = GANLoss.from_config(loss)
        if gan.augment is not None:
            self.augment = self.loss_modules["augment"] = gan.augment
        return gan

    def step_logs(self) -> dict[str, torch.Tensor]:
        """Values logged with every step's losses beside them (0-dim device tensors): ``aug_p``."""
        return {"aug_p": self.augment.p.detach().clone()} if self.augment is not None else {}

    def host_draws(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The step's random decisions made on the host before it runs (CPU tensors, e.g.
        DCGAN's latents, the image pools' choices), added to the ``batch`` that :meth:`train_step`
        gets (on the device, sent with the images). Drawing them here keeps the step a fixed
        sequence of device work: it never waits for the device, and a CUDA graph can replay it
        (``train.cuda_graphs``). ``batch`` is the loader's (CPU or already on the device)."""
        return {}

    def train_step(self, batch: dict[str, Any], ctx: StepContext) -> dict[str, torch.Tensor]:
        """One iteration; returns detached scalar losses by name."""
        raise NotImplementedError

    def sample(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Images for a sample grid, name -> ``(N, C, H, W)`` in [-1, 1] (columns in order)."""
        raise NotImplementedError

    def motion_loss(self, ctx: StepContext,
                    *pairs: tuple[nn.Module, torch.Tensor, torch.Tensor]) -> torch.Tensor | None:
        """``loss.temporal_reg``'s term (its weight not applied): the sum over ``(G, x, G(x))``
        pairs of :func:`~i2i.losses.shift_consistency`; None where the weight is 0 or the loss
        section has none."""
        if getattr(self.cfg.loss, "temporal_reg", 0.0) <= 0:
            return None
        with ctx.autocast():
            return sum(shift_consistency(G, x, y) for G, x, y in pairs)  # type: ignore[return-value]

    def generator_inputs(self, name: str, batch: dict[str, Any], rng: torch.Generator) -> tuple[Any, ...]:
        """The positional inputs generator ``name`` gets from a training ``batch`` (on the
        nets' device) in :meth:`train_step`; any randomness comes from ``rng`` (on the CPU),
        never from the global generators. The trainer uses it to re-estimate the batch-norm
        statistics the saved generators are evaluated with."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Pipeline state beyond the nets (the augmentation's probability; a subclass adds its
        own, e.g. image pools) for exact resume."""
        return {"augment": self.augment.state_dict()} if self.augment is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (a file from before the augmentation was switched on
        leaves it at its start)."""
        if self.augment is not None and "augment" in state:
            self.augment.load_state_dict(state["augment"])

"""Name -> class tables for networks, pipelines and evaluations, and the public builders.

This is the only place that maps names to code. ``build_generator("unet_256")`` and
``build_generator("resnet_9blocks", norm="instance")`` resolve a preset (architecture +
fixed keyword arguments), apply the caller's overrides and initialise the weights.
Pipelines and evaluations are imported lazily so that building a network never imports
the training or evaluation code.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from torch import nn

from .hints import did_you_mean
from .nets import PatchDiscriminator, PixelDiscriminator, ResnetGenerator, UnetGenerator, init_weights
from .nets.dcgan import DCGANDiscriminator, DCGANGenerator
from .nets.rrdbnet import RRDBNet
from .nets.srresnet import SRGANDiscriminator, SRResNet
from .nets.srvgg import SRVGGNet
from .nets.unet_discriminator import UNetDiscriminator

GENERATORS: dict[str, type[nn.Module]] = {"unet": UnetGenerator, "resnet": ResnetGenerator, "srresnet": SRResNet, "dcgan": DCGANGenerator,
                                          "rrdbnet": RRDBNet, "srvgg": SRVGGNet}
DISCRIMINATORS: dict[str, type[nn.Module]] = {"patch": PatchDiscriminator, "pixel": PixelDiscriminator, "srgan": SRGANDiscriminator,
                                                  "dcgan": DCGANDiscriminator, "unet_sn": UNetDiscriminator}

# preset name -> (architecture, keyword arguments the preset fixes)
GENERATOR_PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "unet_128": ("unet", {"num_downs": 7}),
    "unet_256": ("unet", {"num_downs": 8}),
    "resnet_6blocks": ("resnet", {"n_blocks": 6}),
    "resnet_9blocks": ("resnet", {"n_blocks": 9}),
    "rrdbnet_x4": ("rrdbnet", {"scale": 4}),  # ESRGAN, RealESRGAN_x4plus
    "rrdbnet_x2": ("rrdbnet", {"scale": 2}),  # RealESRGAN_x2plus
    "rrdbnet_anime_6b": ("rrdbnet", {"scale": 4, "n_blocks": 6}),  # RealESRGAN_x4plus_anime_6B
    "srvgg_general_x4": ("srvgg", {"scale": 4, "n_convs": 32}),  # realesr-general-x4v3
    "srvgg_animevideo_x4": ("srvgg", {"scale": 4, "n_convs": 16}),  # realesr-animevideov3
}
DISCRIMINATOR_PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "basic": ("patch", {"n_layers": 3}),
    "n_layers": ("patch", {}),
}

# pipeline name -> "module:Class"
PIPELINES: dict[str, str] = {
    "pix2pix": "i2i.pipelines.pix2pix:Pix2Pix",
    "cyclegan": "i2i.pipelines.cyclegan:CycleGAN",
    "srgan": "i2i.pipelines.srgan:SRGAN",
    "dcgan": "i2i.pipelines.dcgan:DCGAN",
}

# evaluation a pipeline declares (Pipeline.evaluation) -> "module:Evaluation"
EVALUATIONS: dict[str, str] = {
    "paired": "i2i.evaluate.paired:PAIRED",
    "super_resolution": "i2i.evaluate.super_resolution:SUPER_RESOLUTION",
    "generation": "i2i.evaluate.generation:GENERATION",
}

_TABLES = {"generator": (GENERATORS, GENERATOR_PRESETS), "discriminator": (DISCRIMINATORS, DISCRIMINATOR_PRESETS)}


def net_names(role: str) -> list[str]:
    """Every registered ``role`` ("generator" / "discriminator") name: architectures and presets."""
    table, presets = _TABLES[role]
    return sorted([*table, *presets])


def resolve_net(role: str, name: str) -> tuple[type[nn.Module], dict[str, Any]]:
    """``(class, keyword arguments the preset fixes)`` for a registered ``role`` name."""
    table, presets = _TABLES[role]
    if name in presets:
        arch, fixed = presets[name]
        return table[arch], dict(fixed)
    if name in table:
        return table[name], {}
    names = net_names(role)
    raise ValueError(f"unknown {role} {name!r}{did_you_mean(name, names)}; known: {', '.join(names)}")


def _build(role: str, name: str, init: str, init_gain: float, overrides: dict[str, Any]) -> nn.Module:
    cls, fixed = resolve_net(role, name)
    clash = {k for k in fixed if k in overrides and overrides[k] != fixed[k]}
    if clash:
        arch = resolve_arch_name(role, name)
        raise ValueError(f"{role} preset {name!r} fixes {sorted(clash)}; use the architecture {arch!r} to set them")
    try:
        net = cls(**{**fixed, **overrides})
    except TypeError as e:  # unknown keyword: say which architecture and what it accepts
        accepted = list(inspect.signature(cls).parameters)
        raise ValueError(f"{role} {cls.__name__}: {e}; accepted keywords: {', '.join(accepted)}") from None
    return init_weights(net, init, init_gain)


def resolve_arch_name(role: str, name: str) -> str:
    """The architecture behind a preset name (the name itself for an architecture)."""
    return _TABLES[role][1].get(name, (name, {}))[0]


def build_generator(name: str, *, init: str = "normal", init_gain: float = 0.02, **overrides: Any) -> nn.Module:
    """Build a generator from a preset (``unet_256``, ``resnet_9blocks``, ...) or an
    architecture (``unet``, ``resnet``, ``srresnet``, ``dcgan``, ``rrdbnet``, ``srvgg``) plus keyword
    overrides, with initialised weights."""
    return _build("generator", name, init, init_gain, overrides)


def build_discriminator(name: str, *, init: str = "normal", init_gain: float = 0.02, **overrides: Any) -> nn.Module:
    """Build a discriminator (``patch``, ``pixel``, ``srgan``, ``dcgan``, ``unet_sn`` (Real-ESRGAN's), or
    preset ``basic`` = 3-layer PatchGAN)."""
    return _build("discriminator", name, init, init_gain, overrides)


def _load(spec: str) -> Any:
    module, attr = spec.split(":")
    return getattr(importlib.import_module(module), attr)


def pipeline_class(name: str) -> type:
    """The pipeline class registered under ``name`` (imported on first use)."""
    if name not in PIPELINES:
        raise ValueError(f"unknown pipeline {name!r}{did_you_mean(name, list(PIPELINES))}; known: {', '.join(PIPELINES)}")
    return _load(PIPELINES[name])


def evaluation(name: str) -> Any:
    """The :class:`~i2i.evaluate.Evaluation` a pipeline declares by name."""
    return _load(EVALUATIONS[name])

"""Name -> class tables for networks and pipelines, and the public builders.

``build_generator("unet_256")`` and ``build_generator("resnet_9blocks", norm="instance")``
resolve a preset (architecture + fixed keyword arguments), apply the caller's overrides
and initialise the weights. Pipelines are imported lazily so that building a network
never imports the training code.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

from torch import nn

from .nets import PatchDiscriminator, PixelDiscriminator, ResnetGenerator, UnetGenerator, init_weights
from .nets.dcgan import DCGANDiscriminator, DCGANGenerator
from .nets.srresnet import SRGANDiscriminator, SRResNet

GENERATORS: dict[str, type[nn.Module]] = {"unet": UnetGenerator, "resnet": ResnetGenerator, "srresnet": SRResNet, "dcgan": DCGANGenerator}
DISCRIMINATORS: dict[str, type[nn.Module]] = {"patch": PatchDiscriminator, "pixel": PixelDiscriminator, "srgan": SRGANDiscriminator,
                                                  "dcgan": DCGANDiscriminator}

# preset name -> (architecture, keyword arguments the preset fixes)
GENERATOR_PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "unet_128": ("unet", {"num_downs": 7}),
    "unet_256": ("unet", {"num_downs": 8}),
    "resnet_6blocks": ("resnet", {"n_blocks": 6}),
    "resnet_9blocks": ("resnet", {"n_blocks": 9}),
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


def did_you_mean(value: str, choices: list[str] | tuple[str, ...]) -> str:
    """' (did you mean 'x'?)' when ``value`` is close to one of ``choices``, else ''."""
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _resolve(kind: str, name: str, table: dict, presets: dict, overrides: dict[str, Any]) -> tuple[type[nn.Module], dict]:
    if name in presets:
        arch, fixed = presets[name]
        clash = {k for k in fixed if k in overrides and overrides[k] != fixed[k]}
        if clash:
            raise ValueError(f"{kind} preset {name!r} fixes {sorted(clash)}; use the architecture {arch!r} to set them")
        return table[arch], {**fixed, **overrides}
    if name in table:
        return table[name], dict(overrides)
    names = sorted([*table, *presets])
    raise ValueError(f"unknown {kind} {name!r}{did_you_mean(name, names)}; known: {', '.join(names)}")


def _build(kind: str, cls: type[nn.Module], kwargs: dict[str, Any], init: str, init_gain: float) -> nn.Module:
    try:
        net = cls(**kwargs)
    except TypeError as e:  # unknown keyword: say which architecture and what it accepts
        import inspect

        accepted = [p for p in inspect.signature(cls).parameters]
        raise ValueError(f"{kind} {cls.__name__}: {e}; accepted keywords: {', '.join(accepted)}") from None
    return init_weights(net, init, init_gain)


def build_generator(name: str, *, init: str = "normal", init_gain: float = 0.02, **overrides: Any) -> nn.Module:
    """Build a generator from a preset (``unet_256``, ``resnet_9blocks``, ...) or an
    architecture (``unet``, ``resnet``) plus keyword overrides, with initialised weights."""
    cls, kwargs = _resolve("generator", name, GENERATORS, GENERATOR_PRESETS, overrides)
    return _build("generator", cls, kwargs, init, init_gain)


def build_discriminator(name: str, *, init: str = "normal", init_gain: float = 0.02, **overrides: Any) -> nn.Module:
    """Build a discriminator (``patch``, ``pixel``, or preset ``basic`` = 3-layer PatchGAN)."""
    cls, kwargs = _resolve("discriminator", name, DISCRIMINATORS, DISCRIMINATOR_PRESETS, overrides)
    return _build("discriminator", cls, kwargs, init, init_gain)


def pipeline_class(name: str) -> type:
    """The pipeline class registered under ``name`` (imported on first use)."""
    if name not in PIPELINES:
        raise ValueError(f"unknown pipeline {name!r}{did_you_mean(name, list(PIPELINES))}; known: {', '.join(PIPELINES)}")
    module, cls = PIPELINES[name].split(":")
    return getattr(importlib.import_module(module), cls)

"""Name -> net tables and the public builders: the only place that maps network names to classes.

``build_generator("unet_256")`` and ``build_generator("resnet_9blocks", norm="instance")``
resolve a preset (an architecture plus the keyword arguments it fixes; each net module declares
its own in ``PRESETS``, as timm's model files declare their configs), apply the caller's
overrides and initialise the weights. Importing this loads the nets and nothing else of i2i's
(no data, training or video code).
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from ..hints import did_you_mean
from . import patchgan, resnet, rrdbnet, srvgg, unet
from .blocks import init_weights
from .dcgan import DCGANDiscriminator, DCGANGenerator
from .patchgan import PatchDiscriminator, PixelDiscriminator
from .resnet import ResnetGenerator
from .rrdbnet import RRDBNet
from .srresnet import SRGANDiscriminator, SRResNet
from .srvgg import SRVGGNet
from .unet import UnetGenerator
from .unet_discriminator import UNetDiscriminator

GENERATORS: dict[str, type[nn.Module]] = {"unet": UnetGenerator, "resnet": ResnetGenerator, "srresnet": SRResNet,
                                          "dcgan": DCGANGenerator, "rrdbnet": RRDBNet, "srvgg": SRVGGNet}
DISCRIMINATORS: dict[str, type[nn.Module]] = {"patch": PatchDiscriminator, "pixel": PixelDiscriminator,
                                              "srgan": SRGANDiscriminator, "dcgan": DCGANDiscriminator,
                                              "unet_sn": UNetDiscriminator}

# preset name -> (architecture, keyword arguments the preset fixes), gathered from the net modules
GENERATOR_PRESETS: dict[str, tuple[str, dict[str, Any]]] = {**unet.PRESETS, **resnet.PRESETS, **rrdbnet.PRESETS,
                                                            **srvgg.PRESETS}
DISCRIMINATOR_PRESETS: dict[str, tuple[str, dict[str, Any]]] = dict(patchgan.PRESETS)

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

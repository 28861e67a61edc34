"""The restoration community's model files in i2i, and i2i's SR nets out to that community.

In: any single-image model `Spandrel <https://github.com/chaiNNer-org/spandrel>`_ recognises
from its state-dict keys (ESRGAN, Real-ESRGAN Compact, SwinIR, HAT, DAT, SPAN, NAFNet, SCUNet,
... the loader of chaiNNer and ComfyUI) becomes a :class:`ForeignModel`: an ``nn.Module`` on
i2i's [-1, 1] values around the descriptor's own forward, with the scale, channels, size needs
and tiling advice Spandrel reads from the file. The file is read by i2i, never by Spandrel's
file loader (which would run a TorchScript ``.pt`` file's code): ``torch.load(weights_only=True)``
or safetensors. The four published ESRGAN / Real-ESRGAN layouts i2i imports by hand
(:mod:`i2i.compat.esrgan`) stay i2i's own nets (no extra needed, trainable).

Out: :func:`spandrel_state` turns i2i's RRDBNet and SRVGG (nearest base) into the state dicts
Spandrel loads as ESRGAN and RealESRGAN Compact; other nets are refused with the reason.
Spandrel is the ``spandrel`` extra.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from ..hints import first_line
from ..weights import CheckpointError
from .esrgan import import_sr_generator, published_layout

TILING = ("supported", "discouraged", "internal")
"""Spandrel's tiling advice: tiles are fine; they work but the model uses global information (tile
only when memory needs it); the model tiles internally (i2i does not tile it)."""


def spandrel() -> Any:
    """The ``spandrel`` package, or an ImportError naming the extra that installs it."""
    try:
        import spandrel as sp  # an optional extra: imported when a foreign model file is loaded
    except ImportError:
        raise ImportError("models of other projects are loaded by Spandrel: pip install 'i2i[spandrel]'") from None
    return sp


def supported_families() -> list[str]:
    """The architectures Spandrel recognises (its main registry), sorted; [] without the extra."""
    try:
        return sorted(a.architecture.name for a in spandrel().MAIN_REGISTRY)
    except ImportError:
        return []


class SpandrelNet(nn.Module):
    """A Spandrel image model on i2i's values: ``(N, in_channels, H, W)`` in [-1, 1] ->
    ``(N, out_channels, scale H, scale W)`` in [-1, 1]. Inside, the descriptor's own call on
    [0, 1] and its clamp to [0, 1]. H and W must meet :attr:`size_multiple`, :attr:`min_size` and
    :attr:`square` (the Translator pads to them, reflecting, as Spandrel's call does)."""

    def __init__(self, descriptor: Any) -> None:
        super().__init__()
        self.model = descriptor.model  # a submodule: .to(), parameters() and deepcopy follow it
        self._descriptor = descriptor
        req = descriptor.size_requirements
        self.in_channels, self.out_channels = int(descriptor.input_channels), int(descriptor.output_channels)
        self.scale = int(descriptor.scale)
        self.size_multiple, self.min_size, self.square = int(req.multiple_of), int(req.minimum), bool(req.square)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the call the descriptor's __call__ makes, without its inference_mode and padding, so that
        # torch.compile and the ONNX exporter trace it (tests compare it with the descriptor's __call__)
        call = getattr(self._descriptor, "_call_fn", None)
        y = call(self.model, (x + 1) / 2) if call is not None else self._descriptor((x + 1) / 2)
        return y.clamp(0, 1) * 2 - 1


@dataclass
class ForeignModel:
    """A model file of another project, ready for the Translator.

    ``net``: [-1, 1] in and out; ``loader``: ``spandrel`` or ``i2i`` (a published ESRGAN layout
    imported into i2i's own net); ``purpose``: ``SR``, ``FaceSR`` or ``Restoration`` (scale 1);
    ``tiling``: one of :data:`TILING`."""

    net: nn.Module
    path: Path
    architecture: str
    loader: str
    purpose: str
    scale: int
    in_channels: int
    out_channels: int
    tags: tuple[str, ...] = ()
    tiling: str = "supported"
    half: bool = True
    bf16: bool = True

    @property
    def parameters(self) -> int:
        """Number of parameters."""
        return sum(p.numel() for p in self.net.parameters())

    @property
    def title(self) -> str:
        """E.g. ``SwinIR x4 (Spandrel)``."""
        tags = f" {', '.join(self.tags)}" if self.tags else ""
        return f"{self.architecture}{tags} x{self.scale} ({'Spandrel' if self.loader == 'spandrel' else 'i2i'})"


def read_state_file(path: str | Path) -> dict[str, Any]:
    """The state dict in a ``.pth`` / ``.pt`` / ``.ckpt`` (``torch.load(weights_only=True)``: no code
    runs) or ``.safetensors`` file; :class:`CheckpointError` naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file '{path}' does not exist")
    try:
        if path.suffix.lower() == ".safetensors":
            state: Any = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except (SafetensorError, Exception) as e:  # torch raises many types for truncated / foreign / unsafe files
        raise CheckpointError(f"'{path}' cannot be read as a model file ({type(e).__name__}: {first_line(e)}); it "
                              "may be truncated, not a weights file, or hold objects other than tensors (a pickled "
                              "model, whose code i2i does not run): save its state_dict instead") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"'{path}' holds a {type(state).__name__}, not a state dict; save the model's "
                              "state_dict()")
    return state


def load_foreign(path: str | Path, state: dict[str, Any] | None = None) -> ForeignModel:
    """The model in a weights file of another project (``state``: its contents, already read).
    Published ESRGAN / Real-ESRGAN layouts become i2i's own nets; anything else goes to Spandrel.
    :class:`CheckpointError` names the file, what was found and what is supported."""
    path = Path(path)
    state = read_state_file(path) if state is None else state
    if published_layout(state) is not None:
        try:
            net, info = import_sr_generator(state)
        except CheckpointError as e:  # a variant i2i's nets do not have (the first ESRGAN layout at x1, x2, x8)
            try:
                spandrel()
            except ImportError as missing:
                raise CheckpointError(f"'{path}': {e}. Spandrel reads more variants: {missing}") from None
        else:
            arch = "ESRGAN" if info.arch == "rrdbnet" else "RealESRGAN Compact"
            return ForeignModel(net.eval(), path, arch, "i2i", "SR" if info.kwargs["scale"] > 1 else "Restoration",
                                info.kwargs["scale"], info.kwargs["in_channels"], info.kwargs["out_channels"],
                                tags=(f"{info.layout} layout",))
    return _spandrel_model(path, state)


def _spandrel_model(path: Path, state: dict[str, Any]) -> ForeignModel:
    sp = spandrel()
    try:
        sd = sp.canonicalize_state_dict({k: v for k, v in state.items() if isinstance(v, (torch.Tensor, dict))})
        descriptor = sp.MAIN_REGISTRY.load(sd)
    except sp.UnsupportedModelError:
        tensors = [k for k, v in state.items() if isinstance(v, torch.Tensor)]
        found = f"{len(tensors)} tensors, first keys: {', '.join(tensors[:6])}" if tensors else "no tensors"
        raise CheckpointError(f"'{path}': Spandrel recognised no architecture in it ({found}). Supported "
                              f"families: {', '.join(supported_families())}") from None
    except Exception as e:  # an architecture matched the keys but its loader failed on the shapes
        raise CheckpointError(f"'{path}': Spandrel matched an architecture but could not load the weights "
                              f"({type(e).__name__}: {first_line(e)}); the file may be damaged or a variant Spandrel "
                              "does not know") from None
    if not isinstance(descriptor, sp.ImageModelDescriptor):
        raise CheckpointError(f"'{path}' is a {descriptor.architecture.name} model ({descriptor.purpose}: it takes an "
                              "image and a mask); i2i converts single images")
    return ForeignModel(SpandrelNet(descriptor).eval(), path, descriptor.architecture.name, "spandrel",
                        descriptor.purpose, int(descriptor.scale), int(descriptor.input_channels),
                        int(descriptor.output_channels), tags=tuple(descriptor.tags),
                        tiling=descriptor.tiling.name.lower(), half=bool(descriptor.supports_half),
                        bf16=bool(descriptor.supports_bfloat16))


def spandrel_state(net: nn.Module) -> tuple[str, dict[str, torch.Tensor]]:
    """``(architecture, state dict)`` Spandrel loads as the same function: i2i's RRDBNet (BasicSR's
    names, which Spandrel reads as ESRGAN) and SRVGG with the nearest base and PReLU (RealESRGAN
    Compact). Raises ValueError saying why for any other net."""
    kind = type(net).__name__
    if kind == "RRDBNet":
        state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
        growth = state["body.0.rdb1.conv1.weight"].shape[0]
        if growth != 32:
            raise ValueError(f"this RRDBNet's dense blocks grow by {growth} channels; Spandrel's ESRGAN reads 32 "
                             "only (every published ESRGAN), so it would load it wrongly. Train with growth: 32 to "
                             "export it")
        return "ESRGAN", state
    if kind == "SRVGGNet":
        if getattr(net, "base", "nearest") != "nearest":
            raise ValueError("this SRVGG adds a bicubic upsampling of its input; Spandrel's Compact adds a nearest "
                             "one, so it would run a different function. Train with base: nearest to export it")
        if not isinstance(net.body[1], nn.PReLU):
            raise ValueError("this SRVGG uses another activation than PReLU; Spandrel's Compact reads PReLU only")
        return "RealESRGAN Compact", {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()
                                      if k.startswith("body.")}
    raise ValueError(f"a {kind} has no architecture in Spandrel that computes the same function (it knows "
                     "restoration and upscaling nets); export it as ONNX or an i2i file instead")

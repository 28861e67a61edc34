"""Published super-resolution weights -> i2i: ESRGAN, Real-ESRGAN and their compact nets.

Recognised by their keys (after unwrapping BasicSR's ``{"params_ema": ...}`` /
``{"params": ...}``, ``params_ema`` preferred as Real-ESRGAN's inference does, and dropping
``module.`` prefixes):

* ``basicsr``: BasicSR / Real-ESRGAN RRDBNet (``conv_first``, ``body.N.rdbK.convJ``,
  ``conv_body``, ``conv_up1``, ...): RealESRGAN_x4plus, RealESRNet_x4plus, RealESRGAN_x2plus,
  RealESRGAN_x4plus_anime_6B, BasicSR's ESRGAN models. i2i's RRDBNet uses these names.
* ``esrgan``: the xinntao/ESRGAN repository's names (``RRDB_trunk.N.RDBK.convJ``,
  ``trunk_conv``, ``upconv1``, ``upconv2``, ``HRconv``).
* ``esrgan_old``: the first ESRGAN release (RRDB_ESRGAN_x4.pth, RRDB_PSNR_x4.pth):
  ``model.0``, ``model.1.sub.N.RDBK.convJ.0``, ``model.1.sub.{blocks}``, ``model.3``,
  ``model.6``, ``model.8``, ``model.10``.
* ``srvgg``: Real-ESRGAN's SRVGGNetCompact (``body.0`` ... ``body.{2 n + 2}``):
  realesr-general-x4v3, realesr-animevideov3.

The architecture (scale, blocks, widths, activation) is read from the shapes. The published
networks work on RGB in [0, 1]; i2i's modules convert at their ends, so an imported file gives
the published outputs through ``i2i convert`` and :class:`~i2i.Translator`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import torch

from ..checkpoint import CheckpointError, check_fits_memory, check_weights, describe_mismatch
from ..nets.registry import build_generator

LAYOUTS = ("basicsr", "esrgan", "esrgan_old", "srvgg")
_ESRGAN_NAMES = {"trunk_conv": "conv_body", "upconv1": "conv_up1", "upconv2": "conv_up2", "HRconv": "conv_hr"}


@dataclass
class SRImport:
    """What was recognised in a published SR state dict: its ``layout`` (one of
    :data:`LAYOUTS`), the i2i architecture and its constructor arguments."""

    layout: str
    arch: str
    kwargs: dict[str, Any]


def unwrap(state: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The bare state dict inside a BasicSR file (``params_ema`` before ``params``), without
    ``module.`` prefixes; a bare state dict is returned as it is."""
    for key in ("params_ema", "params", "state_dict"):
        if isinstance(state.get(key), dict):
            state = state[key]
            break
    return {(k[len("module."):] if k.startswith("module.") else k): v for k,
            v in state.items() if isinstance(v, torch.Tensor)}


def is_sr_state(state: dict[str, Any]) -> bool:
    """True when the keys look like one of :data:`LAYOUTS` (or a BasicSR ``params`` wrapper)."""
    if any(isinstance(state.get(k), dict) for k in ("params_ema", "params")):
        return True
    sd = unwrap(state)
    return _layout(sd) is not None


def published_layout(state: dict[str, Any]) -> str | None:
    """The published layout (one of :data:`LAYOUTS`) of a weights file's contents, or None."""
    return _layout(unwrap(state))


def _layout(sd: dict[str, torch.Tensor]) -> str | None:
    if "conv_first.weight" in sd and any(k.startswith("body.") and ".rdb1." in k for k in sd):
        return "basicsr"
    if "conv_first.weight" in sd and any(k.startswith("RRDB_trunk.") for k in sd):
        return "esrgan"
    if "model.0.weight" in sd and any(k.startswith("model.1.sub.") and ".RDB1." in k for k in sd):
        return "esrgan_old"
    if "body.0.weight" in sd and all(re.fullmatch(r"body\.\d+\.(weight|bias)", k) for k in sd):
        return "srvgg"
    return None


def _old_to_basicsr(k: str, n_blocks: int) -> str:
    if m := re.fullmatch(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)", k):
        return f"body.{m[1]}.rdb{m[2]}.conv{m[3]}.{m[4]}"
    if m := re.fullmatch(r"model\.1\.sub\.(\d+)\.(weight|bias)", k):
        return f"conv_body.{m[2]}" if int(m[1]) == n_blocks else k
    table = {"0": "conv_first", "3": "conv_up1", "6": "conv_up2", "8": "conv_hr", "10": "conv_last"}
    if (m := re.fullmatch(r"model\.(\d+)\.(weight|bias)", k)) and m[1] in table:
        return f"{table[m[1]]}.{m[2]}"
    return k


def _esrgan_to_basicsr(k: str) -> str:
    if m := re.fullmatch(r"RRDB_trunk\.(\d+)\.RDB(\d)\.conv(\d)\.(weight|bias)", k):
        return f"body.{m[1]}.rdb{m[2]}.conv{m[3]}.{m[4]}"
    head, _, tail = k.partition(".")
    return f"{_ESRGAN_NAMES[head]}.{tail}" if head in _ESRGAN_NAMES else k


def to_i2i_keys(sd: dict[str, torch.Tensor]) -> tuple[str, dict[str, torch.Tensor]]:
    """``(layout, state dict under i2i's names)`` of a published SR state dict; raises
    :class:`CheckpointError` when the keys fit no layout."""
    layout = _layout(sd)
    if layout is None and "body.0.conv1.weight" in sd:
        raise CheckpointError(
            "this looks like BasicSR's MSRResNet ('body.N.conv1'), which is not the paper's SRResNet: 3x3 first/last "
            "convolutions, ReLU residual blocks without batch norm, an extra conv_hr layer and a bilinear skip, while "
            "i2i's "
            "srresnet follows Ledig et al. (9x9, PReLU). i2i cannot represent it exactly, so it refuses rather than "
            "loading it "
            "approximately")
    if layout is None:
        raise CheckpointError(
            "the keys fit no published super-resolution layout (BasicSR 'conv_first' + 'body.N.rdb1', ESRGAN "
            "'RRDB_trunk', "
            "the first ESRGAN release 'model.1.sub.N.RDB1', SRVGGNet 'body.N'); the first keys are: "
            f"{', '.join(list(sd)[:8])}")
    if layout == "esrgan_old":
        n_blocks = sum(1 for k in sd if re.fullmatch(r"model\.1\.sub\.\d+\.RDB1\.conv1\.0\.weight", k))
        return layout, {_old_to_basicsr(k, n_blocks): v for k, v in sd.items()}
    if layout == "esrgan":
        return layout, {_esrgan_to_basicsr(k): v for k, v in sd.items()}
    return layout, dict(sd)


def inspect_sr_state(sd: dict[str, torch.Tensor]) -> SRImport:
    """The architecture of a state dict already under i2i's names (see :func:`to_i2i_keys`)."""
    layout = _layout(sd) or "basicsr"
    if layout == "srvgg":
        convs = sorted(int(k.split(".")[1]) for k in sd if k.endswith(".weight") and sd[k].dim() == 4)
        first, last = sd[f"body.{convs[0]}.weight"], sd[f"body.{convs[-1]}.weight"]
        in_ch = first.shape[1]
        scale = math.isqrt(last.shape[0] // in_ch)
        if not ("body.1.weight" in sd and sd["body.1.weight"].dim() == 1):
            raise CheckpointError("SRVGGNet-like keys without PReLU weights: a ReLU / LeakyReLU model's activation "
                                  "cannot be read "
                                  "from the file (every published SRVGGNet uses PReLU)")
        if scale * scale * in_ch != last.shape[0]:
            raise CheckpointError(f"SRVGGNet-like keys, but the last convolution's {last.shape[0]} outputs are not "
                                  "channels x scale^2")
        return SRImport(layout, "srvgg",
                        {"in_channels": in_ch, "out_channels": in_ch, "scale": scale, "base_channels": first.shape[0],
                         "n_convs": len(convs) - 2, "act": "prelu"})
    try:
        first, last, dense = sd["conv_first.weight"], sd["conv_last.weight"], sd["body.0.rdb1.conv1.weight"]
    except KeyError as e:
        raise CheckpointError(f"RRDBNet-like keys, but {e} is missing") from None
    out_ch = last.shape[0]
    fold = first.shape[1] // out_ch  # 1 (x4), 4 (x2: 2x2 pixel-unshuffle) or 16 (x1)
    scales = {1: 4, 4: 2, 16: 1}
    if fold not in scales or fold * out_ch != first.shape[1]:
        raise CheckpointError(f"conv_first takes {first.shape[1]} channels, which is no pixel-unshuffle of "
                              f"{out_ch}-channel images")
    n_blocks = len({k.split(".")[1] for k in sd if k.startswith("body.")})
    return SRImport(layout, "rrdbnet", {"in_channels": out_ch, "out_channels": out_ch, "scale": scales[fold],
                                        "base_channels": first.shape[0], "n_blocks": n_blocks,
                                        "growth": dense.shape[0]})


def import_sr_generator(state: dict[str, Any]) -> tuple[torch.nn.Module, SRImport]:
    """Build the i2i generator a published SR file holds and load its weights exactly.
    Mismatches (missing, unexpected or misshapen keys) raise :class:`CheckpointError`
    listing the first of them."""
    layout, sd = to_i2i_keys(unwrap(state))
    info = inspect_sr_state(sd)
    info.layout = layout
    with torch.device("meta"):  # shapes only: the file is compared and sized before anything is allocated
        ours = build_generator(info.arch, **info.kwargs)
    own = ours.state_dict()  # once: a state_dict() per key made the published RRDBNet's load take 1 s
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shapes = [f"{k}: file {tuple(sd[k].shape)} vs {tuple(t.shape)}" for k,
              t in own.items() if k in sd and sd[k].shape != t.shape]
    if missing or unexpected or shapes:
        raise CheckpointError(f"the file does not fit {info.arch} {info.kwargs} ({layout} layout): "
                              + describe_mismatch(missing, unexpected, shapes))
    check_weights(sd, own, what=f"{info.arch} ({layout} layout)", source="the file")
    check_fits_memory(ours, what=f"an {info.arch} {info.kwargs}", source="the file")
    # the file's tensors become the parameters (assign): no random initialisation of 16.7M weights first
    ours.load_state_dict({k: sd[k].to(t.dtype) for k, t in own.items()}, assign=True)
    if any(t.is_meta for t in (*ours.parameters(), *ours.buffers())):  # a buffer outside the state dict
        ours = build_generator(info.arch, **info.kwargs)
        ours.load_state_dict({k: sd[k].to(t.dtype) for k, t in own.items()})
    return ours.eval(), info

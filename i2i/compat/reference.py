"""Generators of the reference pix2pix / CycleGAN implementation -> i2i.

The reference files (``latest_net_G.pth``, ``latest_net_G_A.pth``, ...) hold a bare
``state_dict``. i2i's U-Net and ResNet generators compute the same functions with the
same parameters (parameter counts are tested equal); only the module paths differ:

* ResNet: identical layer order; residual blocks are ``block`` here, ``conv_block`` there.
* U-Net: the reference nests ``UnetSkipConnectionBlock.model`` Sequentials
  (``model.model.1.model.3...``); i2i splits each level into ``down`` / ``sub`` / ``up``.
  The key of level ``d`` is derived from the level's position (outermost, middle,
  innermost) by :func:`unet_reference_key`.

Old-format quirks handled: ``module.`` prefixes (DataParallel), ``_metadata``, instance-norm
``running_mean``/``running_var``/``num_batches_tracked`` left by pre-0.4 code (dropped, as
the reference loader does), missing batch-norm ``num_batches_tracked`` (filled), and
ResNet dropout, which shifts the second block conv from ``conv_block.5`` to ``.6``. CUT's generators
(the authors' ``latest_net_G.pth``) are the same ResNet with anti-aliased down- and upsampling: their
fixed blur filters are ``model.N.filt`` buffers, which i2i's ``antialias``/``antialias_up`` layers
keep under the same keys.
The architecture (U-Net depth, ResNet blocks, channels, norm, dropout) is inferred from the
keys and shapes; explicit arguments override and are checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import CheckpointError, check_fits_memory, check_weights, describe_mismatch, write_export
from ..config import config_to_dict
from ..nets.registry import build_generator
from ..recipes import config_from_dict
from ..weights import load_state_file
from .esrgan import import_sr_generator, is_sr_state

ARCHS = ("unet_256", "unet_128", "resnet_9blocks", "resnet_6blocks")


@dataclass
class ImportErrorDetail:
    """What was inferred from a foreign state dict."""

    arch: str
    kwargs: dict[str, Any]


def _clean(state: dict[str, Any]) -> dict[str, torch.Tensor]:
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    out = {}
    for k, v in state.items():
        if k == "_metadata" or not isinstance(v, torch.Tensor):
            continue
        out[k[len("module."):] if k.startswith("module.") else k] = v
    return out


def _is_norm_stat(k: str) -> bool:
    return k.endswith((".running_mean", ".running_var", ".num_batches_tracked"))


def unet_reference_key(our_key: str, num_downs: int) -> str:
    """The reference key of an i2i U-Net state-dict key, e.g.
    ``model.sub.down.2.weight`` -> ``model.model.1.model.2.weight`` (for 8 levels)."""
    parts = our_key.split(".")
    assert parts[0] == "model"
    depth = 0
    i = 1
    while parts[i] == "sub":
        depth += 1
        i += 1
    local, param = ".".join(parts[i:-1]), parts[-1]
    if depth == 0:
        table = {"down.0": "0", "up.1": "3"}
    elif depth == num_downs - 1:
        table = {"down.1": "1", "up.1": "3", "up.2": "4"}
    else:
        table = {"down.1": "1", "down.2": "2", "up.1": "5", "up.2": "6"}
    prefix = "model.model" + "".join(".1.model" if d == 0 else ".3.model" for d in range(depth))
    return f"{prefix}.{table[local]}.{param}"


def inspect_reference_state(state: dict[str, Any]) -> ImportErrorDetail:
    """Infer the architecture of a reference generator state dict (raises when it matches none)."""
    sd = _clean(state)
    keys = list(sd)
    if "model.model.0.weight" in sd:  # U-Net
        # 'model.model' plus one more 'model' per level below the outermost.
        num_downs = max(k.split(".").count("model") for k in keys) - 1
        w0, wout = sd["model.model.0.weight"], sd.get("model.model.3.weight")
        if wout is None:
            raise CheckpointError("U-Net-like keys but no 'model.model.3.weight' (outermost up-convolution)")
        # Batch norm has affine weights; instance norm has none (pre-0.4 files may still hold its running stats).
        norm = "batch" if "model.model.1.model.2.weight" in sd else "instance"
        return ImportErrorDetail(f"unet_{2 ** num_downs}" if num_downs in (7, 8) else "unet",
                                 {"num_downs": num_downs, "base_channels": w0.shape[0], "in_channels": w0.shape[1],
                                  "out_channels": wout.shape[1], "norm": norm})
    if "model.1.weight" in sd and any(".conv_block." in k for k in keys):  # ResNet
        blocks = sorted({int(m.group(1)) for k in keys if (m := re.match(r"model\.(\d+)\.conv_block\.", k))})
        w0 = sd["model.1.weight"]
        last = max(int(m.group(1)) for k in keys if (m := re.match(r"model\.(\d+)\.weight$", k)))
        dropout = any(".conv_block.6." in k for k in keys) and not any(".conv_block.5.weight" in k for k in keys)
        norm = "batch" if "model.2.weight" in sd else "instance"
        n = len(blocks)
        # CUT's anti-aliased layers keep their fixed filters as 'model.N.filt' buffers: before the blocks
        # (downsampling) and after them (upsampling)
        blurs = [int(m.group(1)) for k in keys if (m := re.match(r"model\.(\d+)\.filt$", k))]
        aa = {k: True for k, on in (("antialias", any(b < blocks[0] for b in blurs)),
                                    ("antialias_up", any(b > blocks[-1] for b in blurs))) if on}
        return ImportErrorDetail(f"resnet_{n}blocks" if n in (6, 9) else "resnet",
                                 {"n_blocks": n, "base_channels": w0.shape[0], "in_channels": w0.shape[1],
                                  "out_channels": sd[f"model.{last}.weight"].shape[0], "norm": norm,
                                  "dropout": dropout, **aa})
    raise CheckpointError(
        "the file matches no known generator layout (reference U-Net 'model.model.*' or ResNet 'model.N.conv_block.*', "
        "or a published super-resolution layout: BasicSR / Real-ESRGAN RRDBNet or SRVGGNet, ESRGAN); "
        f"its first keys are: {', '.join(keys[:8])}"
    )


def import_reference_generator(
    state: dict[str, Any],
    *,
    arch: str | None = None,
    norm: str | None = None,
    dropout: bool | None = None,
) -> tuple[torch.nn.Module, ImportErrorDetail]:
    """Build the i2i generator equivalent to a reference state dict and load the weights.

    ``arch`` / ``norm`` / ``dropout`` override what is inferred; a file that does not fit
    them fails with the first mismatching keys. Returns the net and the architecture used.
    """
    info = inspect_reference_state(state)
    if arch is not None:
        if arch not in ARCHS:
            raise CheckpointError(f"arch={arch!r} (--arch) is not one of {', '.join(ARCHS)}")
        if arch.split("_")[0] != info.arch.split("_")[0] or (arch != info.arch and info.arch in ARCHS):
            raise CheckpointError(f"arch={arch} (--arch) does not fit this file, whose keys and shapes say {info.arch} "
                                  f"({info.kwargs})")
    kw = dict(info.kwargs)
    if norm is not None:
        kw["norm"] = norm
    if dropout is not None:
        kw["dropout"] = dropout
    name = "unet" if "num_downs" in kw else "resnet"
    with torch.device("meta"):  # shapes only: the file is compared and sized before anything is allocated
        probe = build_generator(name, **kw)
    sd = _clean(state)
    if kw["norm"] == "instance":  # pre-0.4 files stored instance-norm statistics the module no longer has
        sd = {k: v for k, v in sd.items() if not _is_norm_stat(k)}
    ours = probe.state_dict()
    if name == "unet":
        ref_of = {k: unet_reference_key(k, kw["num_downs"]) for k in ours}
    else:
        ref_of = {k: k.replace(".block.", ".conv_block.") for k in ours}
    mapped, missing, shapes = {}, [], []
    for k, t in ours.items():
        rk = ref_of[k]
        if rk not in sd:
            if k.endswith("num_batches_tracked"):  # old files lack it; fill as torch does
                mapped[k] = torch.zeros((), dtype=torch.long)
                continue
            missing.append(rk)
        elif sd[rk].shape != t.shape:
            shapes.append(f"{rk}: file {tuple(sd[rk].shape)} vs {tuple(t.shape)}")
        else:
            mapped[k] = sd[rk]
    unexpected = sorted(set(sd) - set(ref_of.values()))
    if missing or shapes or unexpected:
        raise CheckpointError(f"the file does not fit {name} {kw}: " + describe_mismatch(missing, unexpected, shapes)
                              + ". Check --arch / --norm / --dropout (a ResNet trained with dropout has "
                                "conv_block.6 keys; CUT's anti-aliased ResNet has 'model.N.filt' buffers, read from "
                                "the keys)")
    check_weights(mapped, ours, what=f"{name} generator", source="the file")
    check_fits_memory(probe, what=f"a {name} generator {kw}", source="the file")
    net = build_generator(name, **kw)
    net.load_state_dict({k: mapped[k].to(t.dtype) for k, t in net.state_dict().items()})
    return net, ImportErrorDetail(info.arch if arch is None else arch, kw)


def import_reference_file(file: str | Path, output: str | Path, *, arch: str | None = None, norm: str | None = None,
                          dropout: bool | None = None) -> ImportErrorDetail:
    """Turn a reference generator file (``latest_net_G.pth``, a pretrained model) or a published
    super-resolution file (ESRGAN, Real-ESRGAN: :mod:`i2i.compat.esrgan`) into an i2i export at
    ``output``: the state dict is read with ``weights_only=True`` (no code runs), the
    architecture inferred (or, for pix2pix / CycleGAN files, checked against ``arch`` / ``norm``
    / ``dropout``). Batch-norm models keep the reference test script's behaviour (``test.mode:
    paper``). Returns what was recognised. Errors name the file."""
    state = load_state_file(file, "a generator state dict", wrappers=("params_ema", "params"))
    try:
        if is_sr_state(state):
            if arch is not None or norm is not None or dropout is not None:
                raise CheckpointError("--arch / --norm / --dropout are for pix2pix / CycleGAN generators; "
                                      "a super-resolution file's architecture is read from its keys and shapes")
            return _import_sr(state, file, output)
        net, info = import_reference_generator(state, arch=arch, norm=norm, dropout=dropout)
    except CheckpointError as e:
        raise CheckpointError(f"'{file}': {e}") from None
    kw = info.kwargs
    gen = {"name": "unet" if "num_downs" in kw else "resnet", **kw}
    # The reference test script runs generators in train mode (batch statistics, dropout):
    # keep that behaviour for batch-norm models; instance norm is the same either way.
    cfg = config_from_dict({"name": Path(output).stem, "pipeline": "pix2pix", "model": {"generator": gen},
                            "test": {"mode": "paper" if kw["norm"] == "batch" else "eval"}})
    write_export(output, net, config=config_to_dict(cfg), pipeline="pix2pix", name="G", direction="a_to_b",
                 source=str(file))
    return info


def _import_sr(state: dict[str, Any], file: str | Path, output: str | Path) -> ImportErrorDetail:
    net, sr = import_sr_generator(state)
    cfg = config_from_dict({"name": Path(output).stem, "pipeline": "srgan",
                            "model": {"generator": {"name": sr.arch, **sr.kwargs}},
                            "loss": {"adversarial_weight": 0.0}, "data": {"crop_size": 64}, "test": {"mode": "eval"}})
    write_export(output, net, config=config_to_dict(cfg), pipeline="srgan", name="G", direction="a_to_b",
                 source=str(file))
    return ImportErrorDetail(sr.arch, {"layout": sr.layout, **sr.kwargs})

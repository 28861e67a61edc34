"""One way to get a generator out of any i2i file (training checkpoint or export).

:func:`load_generator` is used by the translator, the sampler, the exporter, evaluation
and the trainer's ``init_from``: the pipeline named in the file's config says which net
is the generator (per direction for translation), and the EMA weights are preferred when
the file has them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .checkpoint import FORMAT, CheckpointError, ForeignFileError, config_of, load_checkpoint, load_state_strict
from .compat.spandrel import read_state_file
from .config import Config
from .recipes import pipeline_class

KIND_HINT = {
    "translation": "translation models are run with 'i2i convert' (Python: i2i.Translator)",
    "generation": "generation models are sampled with 'i2i sample' (Python: i2i.Generator)",
}


@dataclass
class LoadedGenerator:
    """A generator with its weights loaded (on the CPU, in train mode) and where it came from.

    ``weights``: ``"ema"`` (the exponential moving average the trainer kept) or ``"raw"``.
    ``direction``: the translation direction it performs (None for generation models)."""

    net: nn.Module
    cfg: Config
    pipeline: type
    name: str
    direction: str | None
    weights: str
    step: int


def load_generator(path: str | Path, *, direction: str | None = None, use_ema: bool = True,
                   kind: str | None = None, purpose: str = "") -> LoadedGenerator:
    """Load the generator of ``path`` (a checkpoint or an export).

    ``direction`` picks the generator of a two-way model (default: the one the file was
    exported for, else the pipeline's trained direction). ``kind`` ("translation" or
    "generation") refuses models of the other kind with a message that says which command
    fits them; ``purpose`` (e.g. "convert") is named in that message.
    Raises :class:`CheckpointError` naming the file for anything that does not fit."""
    data = load_checkpoint(path)
    cfg = config_of(data, path)
    pipe = pipeline_class(cfg.pipeline)
    if kind is not None and pipe.kind != kind:
        what = f"{purpose} needs" if purpose else "this needs"
        raise CheckpointError(f"'{path}' is a {cfg.pipeline} {pipe.kind} model, but {what} a {kind} model; "
                              f"{KIND_HINT[pipe.kind]}")
    if pipe.kind == "translation":
        direction = direction or data.get("direction") or pipe.default_direction(cfg)
    try:
        name = pipe.generator_name(cfg, direction)
    except ValueError as e:
        raise CheckpointError(f"'{path}': {e}") from None
    if name not in data["nets"]:
        raise CheckpointError(f"'{path}' does not hold generator {name!r}" + (f" for {direction}" if direction else "")
                              + f"; it holds {', '.join(data['nets'])}")
    net = pipe.build_net(cfg, name)
    ema = data.get("ema", {}).get(name) if use_ema else None
    load_state_strict(net, ema or data["nets"][name], what=name, source=path)
    return LoadedGenerator(net=net, cfg=cfg, pipeline=pipe, name=name,
                           direction=direction if pipe.kind == "translation" else None,
                           weights="ema" if ema else "raw", step=int(data.get("step", 0)))


def untrained_generator(cfg: Config, direction: str | None = None) -> tuple[nn.Module, str | None]:
    """The freshly initialised generator of ``cfg``: all nets are built in training order
    under ``cfg.seed``, so this is exactly the trained run's starting point (a baseline).
    Returns ``(net, direction)``."""
    pipe = pipeline_class(cfg.pipeline)
    direction = (direction or pipe.default_direction(cfg)) if pipe.kind == "translation" else None
    name = pipe.generator_name(cfg, direction)
    torch.manual_seed(cfg.seed)
    return pipe(cfg).nets[name], direction


def init_generator(net: nn.Module, path: str | Path, *, name: str, kind: str) -> None:
    """Load another run's raw generator weights from ``path`` into ``net`` (the config's
    ``model.generator.init_from``, e.g. SRGAN from a pretrained SRResNet); errors name the key."""
    try:
        src = load_generator(path, use_ema=False, kind=kind)
    except CheckpointError as e:
        raise CheckpointError(f"model.generator.init_from: {e}") from None
    load_state_strict(net, src.net.state_dict(), what=f"{name} (model.generator.init_from)", source=path)


def foreign_state(path: str | Path) -> dict | None:
    """The contents of ``path`` when it is another project's weights file (a state dict in a
    ``.pth`` / ``.pt`` / ``.ckpt`` / ``.safetensors`` file, read without running code), or None
    for an i2i checkpoint, export or model folder. Unreadable files raise :class:`CheckpointError`."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".safetensors":
        return read_state_file(path)  # i2i never writes a lone safetensors file
    if path.is_dir() or not path.is_file():
        return None
    try:  # memory-mapped: an i2i file is only peeked at here (its tag), then loaded with its checks
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # a legacy (non-zip) or unreadable file: the full load below names the problem
        try:
            load_checkpoint(path)
        except ForeignFileError as e:
            return e.state
        return None
    if isinstance(data, dict) and data.get("format") == FORMAT:
        return None
    if not isinstance(data, dict):
        raise CheckpointError(f"'{path}' holds a {type(data).__name__}, not a state dict; save the model's "
                              "state_dict()")
    return data

"""Checkpoint files: one ``torch.save`` dict with the config and weights.

The config inside is migrated to the current config version on load (:func:`i2i.recipes.migrate_config`),
so checkpoints written by older i2i versions keep loading, converting and resuming.
Training checkpoints (``kind: "training"``) also hold optimizers, the AMP scaler, step/epoch
counters, RNG states, the EMA weights, the best validation, health and any pipeline state (the
learning rate is a function of the step: no scheduler state). Exports
(``kind: "export"``) hold one generator and the config. Everything stored is tensors or
plain Python values, so files load with ``torch.load(weights_only=True)``. Saves write a
temporary file in the same folder and rename it, so a kill never leaves a broken file
under the final name.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ._version import __version__
from .config import Config, ConfigError
from .dist import available_bytes
from .files import atomic_write_bytes, publish_folder, temp_folder
from .hints import first_line
from .recipes import config_from_dict, migrate_config
from .weights import CheckpointError

FORMAT = "i2i-checkpoint"
FORMAT_VERSION = 2
# Format 1 (the first release) holds a version-1 config (no "version" key); format 2 tags it.


def checksum(obj: Any) -> str:
    """A digest (BLAKE2b) of every value in ``obj``: dict keys in sorted order, tensors by dtype,
    shape and bytes, other values by their repr. Written with every save and checked on every
    load, so flipped bytes inside a tensor (which the file formats do not check) are caught."""
    h = hashlib.blake2b(digest_size=16)

    def feed(x: Any) -> None:
        if isinstance(x, torch.Tensor) and (x.layout != torch.strided or x.device.type == "meta"):
            h.update(f"T{x.dtype}{tuple(x.shape)}{x.layout}{x.device.type}".encode())  # refused by check_structure
        elif isinstance(x, torch.Tensor):
            t = x.detach().cpu().contiguous()
            h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(x, dict):
            h.update(b"{")
            for k in sorted(x, key=str):
                h.update(repr(k).encode())
                feed(x[k])
            h.update(b"}")
        elif isinstance(x, (list, tuple)):
            h.update(b"[")
            for v in x:
                feed(v)
            h.update(b"]")
        else:
            h.update(repr(x).encode())

    feed(obj)
    return h.hexdigest()


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Atomically write ``payload`` (plus format tags and its :func:`checksum`) to ``path``."""
    data = {"format": FORMAT, "format_version": FORMAT_VERSION, "i2i_version": __version__, **payload}
    data["checksum"] = checksum(data)
    buf = io.BytesIO()
    torch.save(data, buf)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


MODEL_CONFIG = "config.json"
MODEL_WEIGHTS = "model.safetensors"
MODEL_FORMAT = "i2i-model"


def save_model_folder(folder: str | Path, payload: dict[str, Any]) -> Path:
    """Write an export ``payload`` (one net) as a shareable model folder: ``config.json`` (the
    config and what the weights are, plain JSON) and ``model.safetensors`` (the weights;
    no pickle, so loading runs no code). The folder is assembled beside the target and
    renamed into place: a kill leaves the previous folder (or none), never half of one."""
    folder = Path(folder)
    replaceable = folder.is_dir() and ((folder / MODEL_CONFIG).is_file() or not any(folder.iterdir()))
    if folder.exists() and not replaceable:  # never replace a folder of other things
        raise CheckpointError(f"'{folder}' exists and is not an i2i model folder; choose another output (nothing was "
                              "written)")
    (name, state), = payload["nets"].items()
    meta = {k: v for k, v in payload.items() if k != "nets"}
    info = {"format": MODEL_FORMAT, "format_version": 1, "i2i_version": __version__, **meta, "net": name,
            "checksum": checksum({"nets": {name: state}})}
    tmp = temp_folder(folder)
    try:
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp / MODEL_WEIGHTS), metadata={"format": "pt"})
        (tmp / MODEL_CONFIG).write_text(json.dumps(info, indent=2) + "\n")
        publish_folder(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _load_model_folder(folder: Path) -> dict[str, Any]:
    cfg_path, weights = folder / MODEL_CONFIG, folder / MODEL_WEIGHTS
    if not cfg_path.is_file() or not weights.is_file():
        raise CheckpointError(f"'{folder}' is a folder but not an i2i model folder (it needs {MODEL_CONFIG} and "
                              f"{MODEL_WEIGHTS}, "
                              "as 'i2i export --safetensors' writes them)")
    info = read_json(cfg_path, "the model folder's description")
    if not isinstance(info, dict) or info.get("format") != MODEL_FORMAT or not isinstance(info.get("net"), str):
        raise CheckpointError(f"'{cfg_path}' is not an i2i model description (no '{MODEL_FORMAT}' format tag)")
    version = info.get("format_version", 0)
    if isinstance(version, bool) or not isinstance(version, int) or version > 1:
        raise CheckpointError(f"model folder '{folder}' has format version {str(version)[:40]!r}; upgrade i2i to read "
                              "it (or the folder is damaged)")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"'{weights}' cannot be read ({e}); it may be truncated: download or export "
                              "it again") from None
    name = info.pop("net")
    if not isinstance(name, str):
        raise CheckpointError(f"'{cfg_path}' names its net {name!r}; the model folder is damaged")
    expected = info.pop("checksum", None)
    if expected is not None and checksum({"nets": {name: state}}) != expected:
        raise CheckpointError(f"'{weights}' does not match the checksum in '{cfg_path}': the weights were damaged on "
                              "disk or in "
                              "transfer; download or export the model again")
    return {**info, "format": FORMAT, "format_version": FORMAT_VERSION, "nets": {name: state}}


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load an i2i checkpoint safely (``weights_only=True``), or a model folder
    (``config.json`` + ``model.safetensors``) as an export; errors name the file."""
    path = Path(path)
    if path.is_dir():
        data = _load_model_folder(path)
    elif not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' not found; pass a .pt file written by 'i2i train' or 'i2i export', "
                              "or a model folder")
    else:
        data = _load_file(path, map_location)
        if nesting(data) > MAX_DEPTH:  # before anything walks it recursively (the checksum, the migration)
            raise CheckpointError(f"'{path}' holds values nested more than {MAX_DEPTH} deep; i2i never writes that: "
                                  "the file is damaged or crafted, use another copy")
        expected = data.pop("checksum", None)
        if expected is not None and checksum(data) != expected:
            raise CheckpointError(f"'{path}' does not match the checksum written with it: the file was damaged on disk "
                                  "or in transfer (flipped bytes); use another copy (e.g. an earlier step_N.pt or "
                                  "best.pt)")
    check_structure(data, path)
    if data.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"checkpoint '{path}' has format version {data['format_version']}; upgrade i2i to "
                              "read it")
    version = data["config"].get("version", 1 if data.get("format_version", 1) < 2 else 2)
    try:
        data["config"] = migrate_config(data["config"], version)
    except ConfigError as e:
        raise CheckpointError(f"the config inside '{path}' cannot be read: {e}") from None
    return data


def config_of(data: dict[str, Any], path: str | Path) -> Config:
    """The :class:`~i2i.config.Config` inside a loaded file (:func:`load_checkpoint`), checked as a
    config file is; a :class:`CheckpointError` names the file and the key otherwise."""
    try:
        return config_from_dict(data["config"])
    except ConfigError as e:
        raise CheckpointError(f"the config inside '{path}' does not load: {e}") from None


MAX_DEPTH = 32
"""How deep a checkpoint's values or a model description may nest (i2i writes 6 levels at most):
deeper is refused before anything walks it recursively."""


def nesting(obj: Any) -> int:
    """How deep ``obj``'s dicts, lists and tuples nest (1: a flat container), counted without
    recursion and stopping past :data:`MAX_DEPTH`, so a crafted file cannot exhaust the stack."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        x, depth = stack.pop()
        if isinstance(x, (dict, list, tuple)):
            deepest = max(deepest, depth)
            if depth > MAX_DEPTH:
                return depth
            stack.extend((v, depth + 1) for v in (x.values() if isinstance(x, dict) else x))
    return deepest


def read_json(path: Path, what: str) -> Any:
    """A JSON file i2i wrote (a model folder's ``config.json``), refused with a :class:`CheckpointError`
    naming it when it is not JSON, not text, or nested past :data:`MAX_DEPTH`."""
    try:
        text = path.read_text()
        value = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        why = "nested too deeply" if isinstance(e, RecursionError) else str(e)[:160]
        raise CheckpointError(f"'{path}' is not valid JSON ({why}): {what} is damaged; export or download it "
                              "again") from None
    if nesting(value) > MAX_DEPTH:
        raise CheckpointError(f"'{path}' ({what}) nests more than {MAX_DEPTH} levels deep; it is damaged or crafted")
    return value


_COUNTERS = ("step", "epoch", "batch_in_epoch", "format_version")


def _check_states(value: Any, where: str, path: Path) -> None:
    """``value`` must be name -> state dict of dense CPU tensors."""
    if not isinstance(value, dict):
        raise CheckpointError(f"'{path}' holds a {type(value).__name__} as '{where}', not a mapping of nets; the file "
                              "is damaged")
    for net, state in value.items():
        if not isinstance(state, dict):
            raise CheckpointError(f"'{path}' holds a {type(state).__name__} where the weights of '{where}.{net}' "
                                  "belong; "
                                  "the file is damaged")
        for key, t in state.items():
            if not isinstance(t, torch.Tensor):
                raise CheckpointError(f"'{path}': '{where}.{net}.{key}' is a {type(t).__name__}, not a tensor; the "
                                      "file is damaged")
            if t.layout != torch.strided or t.device.type != "cpu":
                raise CheckpointError(f"'{path}': '{where}.{net}.{key}' is a {t.layout} tensor on {t.device.type}, not "
                                      "a dense "
                                      "tensor of values; the file is damaged or not written by i2i")


def check_structure(data: dict[str, Any], path: str | Path) -> None:
    """The keys every i2i file needs, with the types i2i writes (a config mapping with an integer
    version, nets as state dicts of dense tensors, integer counters), else a
    :class:`CheckpointError` naming the file and the key."""
    path = Path(path)
    if not isinstance(data.get("config"), dict) or "nets" not in data:
        raise CheckpointError(f"'{path}' is an i2i file without a config or nets; it is damaged: use another "
                              "checkpoint")
    version = data["config"].get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CheckpointError(f"'{path}': the config's version is {str(version)[:40]!r}, not a version (1, 2, ...); "
                              "the file is damaged")
    _check_states(data["nets"], "nets", path)
    if data.get("ema") is not None:
        _check_states(data["ema"], "ema", path)
    for key in _COUNTERS:
        if key in data and (isinstance(data[key], bool) or not isinstance(data[key], int) or data[key] < 0):
            raise CheckpointError(f"'{path}': '{key}' is {str(data[key])[:40]!r}, not a count; the file is damaged")
    for key in ("kind", "pipeline", "weights", "direction"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise CheckpointError(f"'{path}': '{key}' is a {type(data[key]).__name__}, not a name; the file is damaged")
    if data.get("kind") == "training":
        check_training_state(data, path)


_TRAINING = {"optimizers": dict, "scaler": dict, "pipeline_state": dict, "rng": dict, "step": int, "epoch": int,
             "batch_in_epoch": int}


def check_training_state(data: dict[str, Any], path: Path) -> None:
    """What resuming reads from a training checkpoint, with the types i2i writes: the optimizers'
    states, the scaler, the pipeline's state, the counters and the random generators' states
    (:func:`check_rng`); a :class:`CheckpointError` names the file and the key otherwise."""
    for key, kind in _TRAINING.items():
        if key not in data:
            raise CheckpointError(f"'{path}' is a training checkpoint without '{key}', which resuming needs; "
                                  "the file is damaged: resume from another checkpoint (or start a new run from "
                                  f"its weights with --set model.generator.init_from={path})")
        if isinstance(data[key], bool) or not isinstance(data[key], kind):
            raise CheckpointError(f"'{path}': '{key}' is a {type(data[key]).__name__}, not a "
                                  f"{kind.__name__}; the file is damaged")
    for name, state in data["optimizers"].items():
        if not isinstance(state, dict) or not isinstance(state.get("state"), dict) or \
                not isinstance(state.get("param_groups"), list):
            raise CheckpointError(f"'{path}': 'optimizers.{name}' is not an optimizer's state "
                                  "(state, param_groups); the file is damaged")
    if data.get("best") is not None and not isinstance(data["best"], dict):
        raise CheckpointError(f"'{path}': 'best' is a {type(data['best']).__name__}, not a record; the file is damaged")
    check_rng(data["rng"], path)


def check_rng(rng: dict[str, Any], path: Path) -> None:
    """The saved states of torch's, NumPy's and Python's generators, shaped as they restore:
    torch's a uint8 tensor of its generator's size, NumPy's MT19937 (624 keys, a position), Python's
    625 32-bit words; a :class:`CheckpointError` naming the file and the key otherwise."""
    def bad(key: str, why: str) -> CheckpointError:
        return CheckpointError(f"'{path}': 'rng.{key}' {why}, not a random generator's saved state; "
                               "the file is damaged: resume from another checkpoint")

    t = rng.get("torch")
    if not isinstance(t, torch.Tensor) or t.dtype != torch.uint8 or t.numel() != torch.get_rng_state().numel():
        raise bad("torch",
                  f"is {type(t).__name__ if not isinstance(t, torch.Tensor) else f'{t.dtype} {tuple(t.shape)}'}")
    n = rng.get("numpy")
    if not isinstance(n, dict):
        raise bad("numpy", f"is a {type(n).__name__}")
    keys = n.get("keys")
    if not isinstance(keys, torch.Tensor) or keys.dtype != torch.int64 or keys.numel() != 624:
        raise bad("numpy.keys", "is not 624 int64 values")
    if not (isinstance(n.get("pos"), int) and 0 <= n["pos"] <= 624 and isinstance(n.get("has_gauss"), int)
            and isinstance(n.get("cached_gaussian"), (int, float))):
        raise bad("numpy", "has no position, gauss flag or cached gaussian")
    py = rng.get("python")
    if not isinstance(py, list) or len(py) != 625 or not all(type(v) is int and 0 <= v < 2**32 for v in py):
        raise bad("python", "is not 625 32-bit words")
    cuda = rng.get("cuda", [])
    if not isinstance(cuda, list) or not all(isinstance(c, torch.Tensor) and c.dtype == torch.uint8 for c in cuda):
        raise bad("cuda", "is not a list of uint8 tensors")


def _load_file(path: Path, map_location: str | torch.device) -> dict[str, Any]:
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many types for truncated/corrupt/foreign files
        raise CheckpointError(
            f"checkpoint '{path}' cannot be read ({type(e).__name__}: {first_line(e)}); "
            "it may be truncated or not an i2i checkpoint"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ForeignFileError(
            f"'{path}' is not an i2i checkpoint (no '{FORMAT}' tag); another project's weights file runs with "
            "'i2i convert' / Translator.from_file, or becomes an i2i file with 'i2i import-weights'", data)
    return data


class ForeignFileError(CheckpointError):
    """A file that reads safely but is not i2i's: ``state`` holds what it contains (another
    project's state dict), for the loaders of :mod:`i2i.compat`."""

    def __init__(self, message: str, state: Any) -> None:
        super().__init__(message)
        self.state = state


def write_export(path: str | Path, net: torch.nn.Module, *, config: dict[str, Any], pipeline: str, name: str,
                 direction: str | None, step: int = 0, weights: str = "raw", source: str | None = None,
                 folder: bool = False) -> Path:
    """Atomically write a generator-only file (the one writer of exports): ``net``'s weights
    under ``name`` plus the config (as plain data), so inference never asks the user to repeat
    settings. With ``folder``, a model folder instead (``config.json`` + ``model.safetensors``:
    no pickle, shareable)."""
    payload: dict[str, Any] = {"kind": "export", "pipeline": pipeline, "config": config, "direction": direction,
                               "nets": {name: state_of(net)}, "step": step, "weights": weights}
    if source is not None:
        payload["source"] = source
    return save_model_folder(path, payload) if folder else save_checkpoint(path, payload)


def non_finite_keys(states: dict[str, dict[str, torch.Tensor]]) -> list[str]:
    """``"<net>.<key>"`` of every floating-point tensor holding a NaN or an infinity, for
    ``states`` (net name -> state dict); one host synchronisation for all of them."""
    names, flags = [], []
    for net, state in states.items():
        for key, t in state.items():
            if t.is_floating_point():
                names.append(f"{net}.{key}")
                flags.append(torch.isfinite(t).all())
    finite = torch.stack(flags).cpu().tolist() if flags else []
    return [n for n, ok in zip(names, finite) if not ok]


def state_of(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of ``net``'s state dict: what checkpoints and exports store."""
    return {k: v.detach().cpu() for k, v in net.state_dict().items()}


def describe_mismatch(missing: list[str], unexpected: list[str], shapes: list[str]) -> str:
    """'missing N keys (first: ...); unexpected ...; N shape mismatches (first: ...)', or '' when all fit."""
    parts = []
    if missing:
        parts.append(f"missing {len(missing)} keys (first: {', '.join(missing[:3])})")
    if unexpected:
        parts.append(f"unexpected {len(unexpected)} keys (first: {', '.join(unexpected[:3])})")
    if shapes:
        parts.append(f"{len(shapes)} shape mismatches (first: {shapes[0]})")
    return "; ".join(parts)


def load_state_strict(net: torch.nn.Module, state: dict[str, torch.Tensor], *, what: str, source: str | Path) -> None:
    """``load_state_dict(strict=True)`` with an error that names the checkpoint and the mismatch.
    A net that changed its layout brings older states to it with its ``upgrade_state_dict``."""
    upgrade = getattr(net, "upgrade_state_dict", None)
    state = upgrade(state) if upgrade is not None else state
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model "
        f"{tuple(own[k].shape)}" for k in own if k in state and state[k].shape != own[k].shape
    ]
    if missing or unexpected or shapes:
        raise CheckpointError(
            f"the {what} weights in '{source}' do not fit the {type(net).__name__} built from its config: "
            + describe_mismatch(missing, unexpected, shapes)
            + ". The checkpoint is of another architecture; do not override model settings when loading it"
        )
    check_weights(state, own, what=what, source=source)
    net.load_state_dict(state)


def check_weights(state: dict[str, torch.Tensor], own: dict[str, torch.Tensor], *, what: str,
                  source: str | Path) -> None:
    """Weights ``state`` that fit a net's ``own`` state dict key for key (shapes checked before):
    real floating-point values for floating-point parameters (no integers, bools, float8 or complex
    cast into them), their data in the file (no stride-0 views over a smaller storage), all finite;
    a :class:`CheckpointError` names the file and the first key otherwise."""
    for k, t in own.items():
        s = state[k]
        if not _dtype_fits(s.dtype, t.dtype):
            raise CheckpointError(f"the {what} weights in '{source}' hold '{k}' as {s.dtype}, where the net keeps "
                                  f"{t.dtype}: the file is damaged or not weights of this net")
        if s.numel() and s.untyped_storage().nbytes() < s.numel() * s.element_size():
            raise CheckpointError(f"the {what} weights in '{source}' hold '{k}' {tuple(s.shape)} without its values "
                                  "(a view over a smaller storage): the file is damaged or crafted")
    bad = non_finite_keys({what: {k: state[k] for k in own}})
    if bad:
        raise CheckpointError(f"the {what} weights in '{source}' hold NaN or infinite values in {len(bad)} tensors "
                              f"(first: {', '.join(bad[:3])}); they would translate to garbage: use another file")


def check_fits_memory(meta_net: torch.nn.Module, *, what: str, source: str | Path) -> None:
    """Refuse a net (built on the meta device: shapes only) whose weights would take more than half
    of the memory available now, before anything is allocated: a small file can declare a huge net."""
    need = sum(t.numel() * t.element_size() for t in meta_net.state_dict().values())
    free = available_bytes(torch.device("cpu"))
    if free is not None and need > free // 2:
        raise CheckpointError(f"'{source}' declares {what} of {need / 2**30:.1f} GiB of weights, more than half of the "
                              f"{free / 2**30:.1f} GiB of memory available; nothing was built (a small file can "
                              "declare a huge net: check where it comes from)")


_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _dtype_fits(stored: torch.dtype, wanted: torch.dtype) -> bool:
    """Real floating-point weights for floating-point parameters (any common precision); the
    net's own dtype for everything else (integer counters)."""
    return stored in _FLOATS if wanted in _FLOATS else stored == wanted

"""``i2i info``: what an i2i file holds, in words."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .checkpoint import MAX_DEPTH, CheckpointError, config_of, load_checkpoint, nesting
from .compat.spandrel import load_foreign
from .config import Config, dump_config
from .download import file_sha256
from .loading import foreign_state
from .recipes import pipeline_class
from .translator import Translator


def describe(path: str | Path) -> str:
    """Human-readable summary of an i2i checkpoint, export, model folder or ONNX export: kind,
    pipeline (and what it does), nets with parameter counts, EMA, step, versions and the
    (migrated) config; for ONNX, its inputs, outputs and the metadata i2i stored."""
    if str(path).lower().endswith(".onnx"):
        return describe_onnx(path)
    state = foreign_state(path)
    if state is not None:
        return describe_foreign(path, state)
    data = load_checkpoint(path)
    cfg = config_of(data, path)
    pipe = pipeline_class(cfg.pipeline)
    lines = [
        f"file:        {path}",
        f"kind:        {data.get('kind')} ("
        + ("model folder: config.json + model.safetensors" if Path(path).is_dir() else f"format {data.get('format')} "
           f"v{data.get('format_version')}") + f", written by i2i {data.get('i2i_version')})",
        f"pipeline:    {cfg.pipeline} "
        f"({pipe.kind})" + (f", direction {data['direction']}" if data.get("direction") else ""),
        f"step:        {data.get('step', 0)}" + (f" (epoch {data['epoch']})" if "epoch" in data else ""),
    ]
    if data.get("source"):
        lines.append(f"imported:    {data['source']}")
    if data.get("kind") == "export":
        lines.append(f"weights:     {data.get('weights', 'as trained (EMA when the run kept one)')}")
    for name, sd in data["nets"].items():
        n = sum(t.numel() for k,
                t in sd.items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
        lines.append(f"net {name:<7} {n:>12,} parameters ({len(sd)} tensors)")
    if data.get("ema"):
        lines.append(f"EMA:         {', '.join(data['ema'])} (used for inference and sampling)")
    if data.get("kind") == "training":
        extra = ", ".join(data.get("pipeline_state", {})) or "none"
        lines.append(f"optimizers:  {', '.join(data.get('optimizers', {}))}; pipeline state: {extra}")
    lines += ["config:", *("  " + ln for ln in dump_config(cfg).splitlines())]
    return "\n".join(lines)


def describe_foreign(path: str | Path, state: dict | None = None) -> str:
    """Summary of another project's model file: the architecture Spandrel (or i2i's ESRGAN
    importer) found, purpose, scale, channels, parameters, size needs, tiling advice, sha256."""
    m = load_foreign(path, state)
    net = m.net
    needs = [f"multiple of {net.size_multiple}" if getattr(net, "size_multiple", 1) > 1 else "",
             f"at least {net.min_size} px" if getattr(net, "min_size", 0) else "",
             "square" if getattr(net, "square", False) else ""]
    return "\n".join([
        f"file:        {path}",
        "kind:        another project's weights file, read by " + ("Spandrel" if m.loader == "spandrel" else
                                                                  "i2i's published-ESRGAN importer"),
        f"model:       {m.architecture}" + (f" ({', '.join(m.tags)})" if m.tags else ""),
        f"purpose:     {m.purpose}, x{m.scale}",
        f"channels:    {m.in_channels} in, {m.out_channels} out",
        f"parameters:  {m.parameters:,}",
        "values:      [0, 1] in the model (i2i converts from and to 8/16-bit pixels)",
        f"input size:  {', '.join(n for n in needs if n) or 'any'} (i2i pads and crops back)",
        f"tiling:      {m.tiling}" + (" (Spandrel advises against it)" if m.tiling != "supported" else ""),
        f"sha256:      {file_sha256(Path(path))}",
        "run it with:  i2i convert FILE in/ out/   (Python: i2i.Translator.from_file)",
    ])


def describe_onnx(path: str | Path) -> str:
    """Summary of an ONNX file: opset, inputs and outputs with their dynamic axes, and the
    metadata ``i2i export --onnx`` stores (value range, size multiple, direction, config)."""
    try:
        import onnx  # the onnx extra: imported when an ONNX file is described
    except ImportError:
        raise ImportError("reading ONNX files needs the onnx extra: pip install 'i2i[onnx]'") from None
    if not Path(path).is_file():
        raise CheckpointError(f"ONNX file '{path}' not found")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf raises DecodeError and others for damaged files
        raise CheckpointError(f"'{path}' cannot be read as ONNX ({type(e).__name__}: {str(e)[:160]})") from None
    if not model.graph.node or not model.graph.input or not model.graph.output:  # protobuf reads b"" as an empty model
        raise CheckpointError(f"'{path}' holds no ONNX graph (no nodes, inputs or outputs): it is empty or damaged; "
                              "export it again")

    def shape(v) -> str:
        dims = [d.dim_param or str(d.dim_value) for d in v.type.tensor_type.shape.dim]
        return f"{v.name} ({', '.join(dims)})"

    props = {p.key: p.value for p in model.metadata_props}
    opsets = ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in model.opset_import)
    lines = [f"file:        {path}", f"kind:        ONNX model (IR {model.ir_version}; opsets {opsets}; "
             f"producer {model.producer_name} {model.producer_version})",
             f"inputs:      {', '.join(shape(v) for v in model.graph.input)}",
             f"outputs:     {', '.join(shape(v) for v in model.graph.output)}"]
    if not props.get("i2i_version"):
        lines.append("metadata:    none from i2i (not written by 'i2i export --onnx')")
        return "\n".join(lines)
    for key in ("pipeline", "direction", "weights", "input", "output", "value_range", "size_note", "i2i_version"):
        if key in props:
            lines.append(f"{key + ':':<12} {props[key]}")
    if "i2i_config" in props:
        lines += ["config:", *("  " + ln for ln in dump_config(_onnx_config(props["i2i_config"], path)).splitlines())]
    return "\n".join(lines)


def _onnx_config(text: str, path: str | Path) -> Config:
    """The config ``i2i export --onnx`` stored in the metadata (``i2i_config``), checked as a config file is."""
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        why = "nested too deeply" if isinstance(e, RecursionError) else str(e)[:120]
        raise CheckpointError(f"'{path}': the metadata 'i2i_config' is not valid JSON ({why}); the file is "
                              "damaged") from None
    if nesting(value) > MAX_DEPTH:
        raise CheckpointError(f"'{path}': the metadata 'i2i_config' nests more than {MAX_DEPTH} levels; the file "
                              "is damaged")
    return config_of({"config": value}, path)


MODEL_SUFFIXES = (".pt", ".pth", ".ckpt", ".safetensors", ".onnx")
"""The files ``i2i models`` looks at (and folders holding ``config.json`` + ``model.safetensors``)."""


@dataclass
class ModelEntry:
    """One model file as ``i2i models`` lists it: ``kind`` (``i2i training``, ``i2i export``,
    ``i2i folder``, ``Spandrel``, ``published ESRGAN``, ``ONNX``), ``model`` (pipeline or architecture),
    ``scale``, ``parameters``, ``values`` (the value range the net works in), ``sha256`` of the file
    (of ``model.safetensors`` for a folder) and ``problem`` (why it cannot be used; empty if it can)."""

    path: Path
    kind: str = "?"
    model: str = "?"
    scale: int | None = None
    parameters: int | None = None
    values: str = "?"
    sha256: str = ""
    problem: str = ""


def find_models(folder: str | Path) -> list[Path]:
    """Model files and model folders under ``folder`` (recursive, sorted); :data:`MODEL_SUFFIXES`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"model folder '{folder}' does not exist")
    found = {p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in MODEL_SUFFIXES
             and p.name != "model.safetensors"}
    found |= {p.parent for p in folder.rglob("model.safetensors") if is_model_folder(p.parent)}
    return sorted(found)


def is_model_folder(path: str | Path) -> bool:
    """True for an i2i model folder (``config.json`` + ``model.safetensors``)."""
    return (Path(path) / "model.safetensors").is_file() and (Path(path) / "config.json").is_file()


def model_entry(path: str | Path) -> ModelEntry:
    """What ``path`` holds (see :class:`ModelEntry`); a file that cannot be read gets ``problem``."""
    path = Path(path)
    e = ModelEntry(path)
    try:
        e.sha256 = file_sha256(path / "model.safetensors" if path.is_dir() else path)
        if path.suffix.lower() == ".onnx":
            _onnx_entry(e)
            return e
        state = foreign_state(path)
        if state is not None:
            m = load_foreign(path, state)
            e.kind = "Spandrel" if m.loader == "spandrel" else "published ESRGAN"
            e.model, e.scale, e.parameters, e.values = m.architecture, m.scale, m.parameters, "[0, 1]"
            return e
        data = load_checkpoint(path)
        cfg = config_of(data, path)
        e.kind = "i2i folder" if path.is_dir() else f"i2i {data.get('kind')}"
        spec = cfg.model.generator
        e.model = f"{cfg.pipeline} ({spec.name})"
        try:
            e.scale = int(spec.arg("scale"))
        except KeyError:
            e.scale = 1
        e.parameters = sum(t.numel() for sd in data["nets"].values() for k, t in sd.items()
                           if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
        e.values = "[-1, 1]"
    except (CheckpointError, ImportError, OSError, ValueError) as err:
        e.problem = str(err).splitlines()[0]
    return e


def _onnx_entry(e: ModelEntry) -> None:
    import onnx  # the onnx extra: imported when an ONNX file is listed

    model = onnx.load(str(e.path), load_external_data=False)
    props = {p.key: p.value for p in model.metadata_props}
    e.kind = "ONNX"
    e.model = props.get("pipeline", "ONNX graph (not from i2i)")
    e.scale = int(props["scale"]) if props.get("scale", "").isdigit() else None
    e.parameters = sum(int(np.prod(t.dims)) for t in model.graph.initializer)
    e.values = "[0, 1]" if props.get("profile") == "chainner" else "[-1, 1]" if props else "?"


def check_model(path: str | Path) -> ModelEntry:
    """:func:`model_entry`, then a run of the model on a small random image (translation models; a
    generation model is loaded only): ``problem`` says what failed, e.g. non-finite outputs."""
    e = model_entry(path)
    if e.problem or e.kind == "ONNX":
        return e
    try:
        tr = Translator.from_file(path, device="cpu")
    except CheckpointError as err:
        if "generation model" not in str(err):
            e.problem = str(err).splitlines()[0]
        return e
    side = max(2 * tr.size_multiple, tr.min_size, 16)
    x = torch.rand(1, tr.in_channels, side, side) * 2 - 1
    y = tr.translate_tensor(x)
    if not torch.isfinite(y).all():
        e.problem = "the model's output holds NaN or infinite values: the weights are damaged"
    elif y.shape[-1] != side * tr.scale:
        e.problem = f"output width {y.shape[-1]} for a {side}-pixel input, not x{tr.scale}"
    return e

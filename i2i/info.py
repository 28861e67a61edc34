"""``i2i info``: what an i2i file holds, in words."""

from __future__ import annotations

import json
from pathlib import Path

from .checkpoint import MAX_DEPTH, CheckpointError, config_of, load_checkpoint, nesting
from .config import Config, dump_config
from .recipes import pipeline_class


def describe(path: str | Path) -> str:
    """Human-readable summary of an i2i checkpoint, export, model folder or ONNX export: kind,
    pipeline (and what it does), nets with parameter counts, EMA, step, versions and the
    (migrated) config; for ONNX, its inputs, outputs and the metadata i2i stored."""
    if str(path).lower().endswith(".onnx"):
        return describe_onnx(path)
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

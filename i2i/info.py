"""``i2i info``: what an i2i file holds, in words."""

from __future__ import annotations

from pathlib import Path

from .config import config_from_dict, dump_config
from .engine.checkpoint import load_checkpoint
from .registry import pipeline_class


def describe(path: str | Path) -> str:
    """Human-readable summary of an i2i checkpoint or export: kind, pipeline (and what it
    does), nets with parameter counts, EMA, step, versions and the (migrated) config."""
    data = load_checkpoint(path)
    cfg = config_from_dict(data["config"])
    pipe = pipeline_class(cfg.pipeline)
    lines = [
        f"file:        {path}",
        f"kind:        {data.get('kind')} (format {data.get('format')} v{data.get('format_version')}, "
        f"written by i2i {data.get('i2i_version')})",
        f"pipeline:    {cfg.pipeline} ({pipe.kind})" + (f", direction {data['direction']}" if data.get("direction") else ""),
        f"step:        {data.get('step', 0)}" + (f" (epoch {data['epoch']})" if "epoch" in data else ""),
    ]
    if data.get("source"):
        lines.append(f"imported:    {data['source']}")
    if data.get("kind") == "export":
        lines.append(f"weights:     {data.get('weights', 'as trained (EMA when the run kept one)')}")
    for name, sd in data["nets"].items():
        n = sum(t.numel() for k, t in sd.items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
        lines.append(f"net {name:<7} {n:>12,} parameters ({len(sd)} tensors)")
    if data.get("ema"):
        lines.append(f"EMA:         {', '.join(data['ema'])} (used for inference and sampling)")
    if data.get("kind") == "training":
        extra = ", ".join(data.get("pipeline_state", {})) or "none"
        lines.append(f"optimizers:  {', '.join(data.get('optimizers', {}))}; pipeline state: {extra}")
    lines += ["config:", *("  " + ln for ln in dump_config(cfg).splitlines())]
    return "\n".join(lines)

"""Config versions: renaming or moving a config field means a new :data:`CONFIG_VERSION` and a
migration here, so configs inside older checkpoints keep loading.

A migration may need what a pipeline declares (its sections' fields); the caller passes the
lookup (:func:`i2i.recipes.migrate_config` passes the pipeline table's), so this layer imports no
pipeline."""

from __future__ import annotations

import copy
import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

from ..nets.registry import resolve_net
from .sections import CONFIG_VERSION, ConfigError

PipelineLookup = Callable[[Any], type]
"""Pipeline name -> its class (a :class:`ConfigError` for an unknown name)."""


def _migrate_v1(data: dict[str, Any], pipeline_for: PipelineLookup) -> dict[str, Any]:
    """Version 1 (the first release's checkpoints): one flat union of every method's fields.
    Keep exactly what the pipeline used: null generator fields meant the architecture's default,
    the discriminator's ``in_channels`` null meant "what the pipeline feeds it", DCGAN's image
    size was ``data.crop_size`` and its prior a generator field."""
    pipe = pipeline_for(data.get("pipeline", "pix2pix"))
    out = {k: v for k, v in data.items() if k not in ("model", "data", "loss")}
    model = data.get("model") or {}
    g = {k: v for k, v in (model.get("generator") or {}).items() if v is not None}
    prior = g.pop("prior", "gaussian")
    if pipe.name == "dcgan":
        g.pop("in_channels", None)
        g["prior"] = prior
    d = {k: v for k, v in (model.get("discriminator") or {}).items() if v is not None}
    if "name" in d:
        try:
            cls, fixed = resolve_net("discriminator", d["name"])
        except ValueError:
            fixed = {}
            cls = None
        if cls is not None and ("n_layers" in fixed or "n_layers" not in inspect.signature(cls).parameters):
            d.pop("n_layers", None)
    for key in pipe.derived_options.get("discriminator", ()):
        d.pop(key, None)
    out["model"] = {"generator": g, "discriminator": d}
    data_section = dict(data.get("data") or {})
    if pipe.name == "dcgan":
        if "crop_size" in data_section:
            data_section["image_size"] = data_section.pop("crop_size")
        data_section["fit"] = "resize"  # version 1 always resized (28 -> 32 for Fashion-MNIST)
    for key, cls in (("data", pipe.DataConfig), ("loss", pipe.LossConfig)):
        src = data_section if key == "data" else dict(data.get(key) or {})
        # keys of the time: today's fields and the old names later migrations rename (data.rotate)
        names = {f.name for f in dataclasses.fields(cls)} | set(pipe.renamed_options.get(key, {}))
        out[key] = {k: v for k, v in src.items() if k in names}
    out["version"] = 2
    return out


def _migrate_v2(data: dict[str, Any], pipeline_for: PipelineLookup) -> dict[str, Any]:
    """Version 2: super-resolution's ``data.rotate`` (random quarter turns) is called ``data.rotate90``,
    as the image-to-image datasets' key that does the same."""
    del pipeline_for
    out = dict(data)
    section = dict(out.get("data") or {})
    if "rotate" in section:
        section["rotate90"] = section.pop("rotate")
    out["data"] = section
    out["version"] = 3
    return out


MIGRATIONS = {1: _migrate_v1, 2: _migrate_v2}


def migrate(data: dict[str, Any], version: int, pipeline_for: PipelineLookup) -> dict[str, Any]:
    """Bring a config dict written as ``version`` up to :data:`CONFIG_VERSION`; ``pipeline_for``
    finds the pipeline class a config names."""
    if version > CONFIG_VERSION:
        raise ConfigError(f"the config has version {version}; this i2i reads up to {CONFIG_VERSION}: upgrade i2i")
    data = copy.deepcopy(data)
    while version < CONFIG_VERSION:
        data = MIGRATIONS[version](data, pipeline_for)
        version += 1
    return data

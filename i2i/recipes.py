"""Recipes: a config and the method it names. The table of methods (pipeline name -> class) and
the one assembly step that needs it: reading a config for the pipeline it names.

This module sits right above :mod:`i2i.pipelines` and imports each pipeline class directly (no
``"module:Class"`` strings), so the layer order of ARCHITECTURE.md holds for every lookup: the
config layer below builds sections for a pipeline class it is given, and knows no pipeline.

    cfg = load_config("configs/pix2pix/facades.yaml", ["train.steps=100"])
    pipe = pipeline_class(cfg.pipeline)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import Config, ConfigError, apply_overrides, build_config, migrate, read_config_file
from .hints import did_you_mean, show
from .pipelines.base import Pipeline
from .pipelines.cut import CUT
from .pipelines.cyclegan import CycleGAN
from .pipelines.dcgan import DCGAN
from .pipelines.pix2pix import Pix2Pix
from .pipelines.srgan import SRGAN

PIPELINES: dict[str, type[Pipeline]] = {"pix2pix": Pix2Pix, "cyclegan": CycleGAN, "cut": CUT, "srgan": SRGAN,
                                       "dcgan": DCGAN}
"""Every method i2i trains, by the name configs give in ``pipeline:``. A new method is one line here."""


def pipeline_class(name: str) -> type[Pipeline]:
    """The pipeline class registered under ``name`` (a ``ValueError`` listing the known ones otherwise)."""
    if name not in PIPELINES:
        raise ValueError(f"unknown pipeline {name!r}{did_you_mean(name, list(PIPELINES))}; known: "
                         f"{', '.join(PIPELINES)}")
    return PIPELINES[name]


def pipeline_for(name: Any) -> type[Pipeline]:
    """The pipeline class a config's ``pipeline`` key names, or a :class:`ConfigError` listing the known ones."""
    if not isinstance(name, str) or name not in PIPELINES:
        raise ConfigError(f"config key 'pipeline' is {show(name)}{did_you_mean(str(name)[:100], list(PIPELINES))}; "
                          f"known: {', '.join(PIPELINES)}")
    return PIPELINES[name]


def config_from_dict(data: dict[str, Any], overrides: list[str] | None = None) -> Config:
    """Build and validate a :class:`Config` from plain data (a YAML file's or a checkpoint's),
    after the ``key.path=value`` ``overrides``; a :class:`ConfigError` names the key otherwise."""
    if not isinstance(data, dict):
        raise ConfigError(f"a config must be a mapping at the top level, got {type(data).__name__}")
    data = apply_overrides(data, overrides)
    pipe = pipeline_for(data.get("pipeline", "pix2pix"))
    return build_config(data, pipe, [p for p in PIPELINES.values() if p is not pipe])


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read a YAML config file, apply ``key.path=value`` overrides, validate, return it; errors
    name the file and the key."""
    data = read_config_file(path)
    try:
        return config_from_dict(data, overrides)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def migrate_config(data: dict[str, Any], version: int) -> dict[str, Any]:
    """A config dict written as ``version`` (inside an older checkpoint) brought up to the current version."""
    return migrate(data, version, pipeline_for)

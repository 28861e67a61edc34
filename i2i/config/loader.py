"""Reading configs: YAML (safely), ``--set`` overrides, the strict build of a :class:`Config`
(sections, networks, cross-key checks) for a pipeline class the caller names, and the plain-data
form checkpoints store.

Nothing here looks a pipeline up by name: :mod:`i2i.recipes`, above the pipelines, does that and
passes the class in (``build_config(data, pipe, others)``), so the config layer sits below them.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from ..hints import did_you_mean, first_line, show
from ..nets.registry import net_names, resolve_arch_name, resolve_net
from .sections import (
    CONFIG_VERSION,
    TOP_LEVEL,
    Config,
    ConfigError,
    ModelConfig,
    NetConfig,
    OptimConfig,
    ScheduleConfig,
    TestConfig,
    TrainConfig,
)
from .values import build_dataclass, convert_value, field_types

MAX_YAML_VALUES = 100_000


def _yaml_size(node: Any, memo: dict[int, int], active: set[int]) -> int:
    """Values ``node`` stands for once its aliases are expanded (memoised per node)."""
    key = id(node)
    if key in memo:
        return memo[key]
    if key in active:  # an anchor that contains itself
        return MAX_YAML_VALUES + 1
    active.add(key)
    if isinstance(node, yaml.MappingNode):
        size = 1 + sum(_yaml_size(k, memo, active) + _yaml_size(v, memo, active) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_yaml_size(v, memo, active) for v in node.value)
    else:
        size = 1
    active.discard(key)
    memo[key] = min(size, MAX_YAML_VALUES + 1)
    return memo[key]


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key written twice in one mapping (YAML would keep the
    last silently); keys brought in by a merge (``<<: *anchor``) may still be overridden."""

    where = "the config"

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                continue
            line = key_node.start_mark.line + 1
            if key_node.value in seen:
                raise ConfigError(f"{self.where}: key {show(key_node.value)} is written twice in one section (lines "
                                  f"{seen[key_node.value]} and {line}); keep one")
            seen[key_node.value] = line
        return super().construct_mapping(node, deep)


def safe_yaml(text: str, where: str) -> Any:
    """``yaml.safe_load`` (no Python tags: reading a config runs no code) that refuses documents
    whose anchors and aliases expand to more than :data:`MAX_YAML_VALUES` values (a "billion
    laughs" bomb) before building anything, keys written twice in one mapping, nesting too deep
    to read and numbers too long to convert, each with a :class:`ConfigError` naming ``where``."""
    loader = _StrictLoader(text)
    loader.where = where
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _yaml_size(node, {}, set()) > MAX_YAML_VALUES:
            raise ConfigError(f"{where} expands to more than {MAX_YAML_VALUES:,} values through YAML anchors and "
                              "aliases; "
                              "write the values out (a config needs a few hundred at most)")
        return loader.construct_document(node)
    except RecursionError:
        raise ConfigError(f"{where} is nested too deeply to read; a config is a few sections deep") from None
    except ValueError as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"{where}: a value cannot be read ({first_line(e)[:120]})") from None
    finally:
        loader.dispose()


# ----------------------------------------------------------------------------- net sections
def _net_spec(value: dict[str, Any], path: str, role: str) -> dict[str, Any]:
    """The keys every net has (``init``, ``init_gain``, ``init_from``), popped from ``value``."""
    spec: dict[str, Any] = {"role": role}
    types = field_types(NetConfig)
    for key in ("init", "init_gain", "init_from"):
        if key in value:
            if key == "init_from" and role != "generator":
                raise ConfigError(f"config key '{path}.init_from' applies to generators only")
            spec[key] = convert_value(value.pop(key), types[key], f"{path}.{key}")
    return spec


def _net_config(value: Any, path: str, role: str, pipe: type) -> NetConfig:
    """A ``model.generator`` / ``model.discriminator`` section: a registered name and the
    constructor's keyword options, typed and range-checked by its annotations."""
    if not isinstance(value, dict):
        raise ConfigError(f"config key {path!r} must be a mapping like {{name: ..., <options>}}, got {show(value)}")
    value = dict(value)
    name = value.pop("name", pipe.default_nets.get(role))
    if not isinstance(name, str):
        raise ConfigError(f"config key '{path}.name' must name a registered {role}, got {show(name)}")
    try:
        cls, fixed = resolve_net(role, name)
    except ValueError:
        known = net_names(role)
        raise ConfigError(f"config key '{path}.name' is {show(name)}{did_you_mean(name[:100], known)}; known {role}s: "
                          f"{', '.join(known)}") from None
    spec = _net_spec(value, path, role)
    params = inspect.signature(cls).parameters
    hints = field_types(cls.__init__)
    derived = pipe.derived_options.get(role, ())
    options = {}
    for key, v in value.items():
        kpath = f"{path}.{key}"
        if key in derived and key in params:
            raise ConfigError(f"config key {kpath!r} is set by the {pipe.name} pipeline (it follows from the rest of "
                              "the config); "
                              "remove it")
        if key in fixed:
            raise ConfigError(f"config key {kpath!r} is fixed to {fixed[key]!r} by the preset {name!r}; "
                              f"to change it use the architecture: '{path}.name: {resolve_arch_name(role, name)}'")
        if key not in params or params[key].kind is not inspect.Parameter.KEYWORD_ONLY:
            allowed = [
                k
                for k, p in params.items()
                if p.kind is inspect.Parameter.KEYWORD_ONLY and k not in fixed and k not in derived
            ]
            raise ConfigError(f"config key {kpath!r} is not an option of {role} {name!r} ({cls.__name__})"
                              f"{did_you_mean(str(key), allowed)}; its options: {', '.join(allowed)}")
        options[key] = convert_value(v, hints.get(key, Any), kpath)
    return NetConfig(name=name, **spec, options=options)


# ----------------------------------------------------------------------------- whole config
def _elsewhere(section: str, pipe: type, others: Iterable[type]) -> dict[str, str]:
    """Keys of ``section`` that ``others`` (the other pipeline classes) own, for 'it is an option of ...' hints."""
    own = {f.name for f in dataclasses.fields(getattr(pipe, section.capitalize() + "Config"))}
    out: dict[str, str] = {}
    for other in others:
        for f in dataclasses.fields(getattr(other, section.capitalize() + "Config")):
            if f.name not in own:
                out.setdefault(f.name, f"pipeline {other.name!r}")
    return out


def _section(data: dict[str, Any], key: str, cls: type, pipe: type | None = None, others: Iterable[type] = ()) -> Any:
    """Section ``key`` of ``data`` as ``cls``; ``pipe``: the pipeline that owns the section
    (its renamed keys and the keys of ``others``, the other pipelines, get their own messages)."""
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"config key {key!r} must be a mapping of {cls.__name__} fields, got {show(value)}")
    if pipe is None:
        return build_dataclass(cls, value, key)
    for old, new in pipe.renamed_options.get(key, {}).items():
        if old in value:
            raise ConfigError(f"config key '{key}.{old}' is called '{key}.{new}' in pipeline {pipe.name!r}; rename it")
    owner = f"pipeline {pipe.name!r}"
    try:
        return build_dataclass(cls, value, key, owner=owner)
    except ConfigError as e:
        if "does not apply" not in str(e):
            raise
        return build_dataclass(cls, value, key, owner=owner, elsewhere=_elsewhere(key, pipe, others))


def _model(data: dict[str, Any], pipe: type) -> ModelConfig:
    model = data.get("model") or {}
    if not isinstance(model, dict):
        raise ConfigError(f"config key 'model' must be a mapping with 'generator' and 'discriminator', got {model!r}")
    for key in model:
        if key not in ("generator", "discriminator"):
            raise ConfigError("unknown config key "
                              f"'model.{key}'{did_you_mean(str(key), ['generator', 'discriminator'])}; "
                              "keys allowed in section 'model': generator, discriminator")
    generator = _net_config(model.get("generator") or {}, "model.generator", "generator", pipe)
    disc_value = model.get("discriminator")
    if disc_value is None and pipe.default_nets.get("discriminator"):
        disc_value = {}
    discriminator = _net_config(disc_value, "model.discriminator", "discriminator",
                                pipe) if disc_value is not None else None
    return ModelConfig(generator=generator, discriminator=discriminator)


def build_config(data: dict[str, Any], pipe: type, others: Iterable[type] = ()) -> Config:
    """The :class:`Config` of plain ``data`` for pipeline class ``pipe`` (the one ``data["pipeline"]``
    names), every key type-, range- and cross-checked, then the pipeline's own checks
    (``validate_config``, ``check_buildable``); ``others``: the other pipeline classes, whose keys
    get 'it is an option of ...' hints. Raises :class:`ConfigError` naming the key."""
    for key in data:
        if key not in TOP_LEVEL:
            raise ConfigError(f"unknown config key {key!r}{did_you_mean(str(key), TOP_LEVEL)}; keys allowed at the top "
                              "level: "
                              f"{', '.join(TOP_LEVEL)}")
    version = convert_value(data.get("version", CONFIG_VERSION), int, "version")
    if version != CONFIG_VERSION:
        raise ConfigError(f"config key 'version' is {version}; this i2i reads version {CONFIG_VERSION} (older ones are "
                          "migrated "
                          "when loaded from checkpoints)")
    top = field_types(Config)
    cfg = Config(
        name=convert_value(data.get("name", "run"), top["name"], "name"),
        pipeline=pipe.name,
        seed=convert_value(data.get("seed", 0), top["seed"], "seed"),
        output_dir=convert_value(data.get("output_dir", "runs"), top["output_dir"], "output_dir"),
        model=_model(data, pipe),
        data=_section(data, "data", pipe.DataConfig, pipe, others),
        loss=_section(data, "loss", pipe.LossConfig, pipe, others),
        optim=_section(data, "optim", OptimConfig),
        schedule=_section(data, "schedule", ScheduleConfig),
        train=_section(data, "train", TrainConfig),
        test=_section(data, "test", TestConfig),
    )
    problems = cfg.problems()  # checks across keys, each section's own (single values were checked on the way in)
    if problems:
        raise ConfigError(problems[0])
    pipe.validate_config(cfg)
    pipe.check_buildable(cfg)
    return cfg


# ----------------------------------------------------------------------------- overrides and files
def parse_override(text: str) -> tuple[str, Any]:
    """``"a.b=c"`` -> ``("a.b", yaml-parsed c)``."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.path=value, e.g. train.steps=100")
    key, raw = text.split("=", 1)
    try:
        return key.strip(), safe_yaml(raw, f"override {key.strip()!r}") if raw.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"override {text!r}: the value is not valid YAML ({first_line(e)})") from None


def apply_overrides(data: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``key.path=value`` set (sections created as needed).
    ``train.steps`` and ``train.epochs`` replace each other unless both are given."""
    data = copy.deepcopy(data)
    keys = [parse_override(text)[0] for text in overrides or []]
    for text in overrides or []:
        key, value = parse_override(text)
        # Training length is one of epochs / steps: setting one replaces the other (unless
        # both are given), so `--set train.steps=30` works on a recipe that counts epochs.
        for one, other in (("train.steps", "epochs"), ("train.epochs", "steps")):
            if key == one and value is not None and f"train.{other}" not in keys and isinstance(data.get("train"),
                                                                                                dict):
                data["train"][other] = None
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            nxt = node.setdefault(part, {})
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                raise ConfigError(f"override {text!r}: {part!r} is a value, not a section")
            node = nxt
        node[parts[-1]] = value
    return data


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The plain data of a YAML config file (safely: no tags, no anchor bombs, no duplicate keys);
    :class:`ConfigError` naming the file when it is missing, not text or not YAML."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file '{path}' not found; pass the path of a YAML file such as "
                          "configs/pix2pix/demo.yaml")
    try:
        data = safe_yaml(path.read_text(), f"config file '{path}'") or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"config file '{path}' is not valid YAML: {e}") from None
    except (UnicodeDecodeError, OSError) as e:
        raise ConfigError(f"config file '{path}' cannot be read as text ({e}); pass a YAML file") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping at the top level, got {type(data).__name__}")
    return data


def _plain(value: Any) -> Any:
    """Tuples (list-valued keys) as lists, in nested dicts too: YAML's safe form."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """Plain-data copy of ``cfg`` (only dicts, lists, str, int, float, bool, None), version first."""
    out: dict[str, Any] = {"version": cfg.version}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if f.name == "model":
            out["model"] = {"generator": value.generator.to_dict()}
            if value.discriminator is not None:
                out["model"]["discriminator"] = value.discriminator.to_dict()
        elif dataclasses.is_dataclass(value):
            out[f.name] = _plain(dataclasses.asdict(value))
        elif f.name != "version":
            out[f.name] = value
    return out


def dump_config(cfg: Config) -> str:
    """The resolved config as YAML text."""
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)

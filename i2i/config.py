"""YAML configs as typed dataclasses, owned by the classes that use them.

A config has shared sections (``optim``, ``schedule``, ``train``, ``test``: the trainer's
and the translator's) and sections owned by the chosen pipeline:

- ``model.generator`` / ``model.discriminator``: a registered network name plus keyword
  options for its constructor. The options are validated against the constructor's
  signature and annotations (so a U-Net accepts ``num_downs`` and refuses ``n_blocks``);
  keys the pipeline derives itself (e.g. the discriminator's input channels) are refused.
- ``data``: the pipeline's :attr:`~i2i.pipelines.base.Pipeline.DataConfig` dataclass.
- ``loss``: the pipeline's :attr:`~i2i.pipelines.base.Pipeline.LossConfig` dataclass.

A key that does not apply is an error that names the key and the pipeline. Configs carry
a ``version``; older versions (inside older checkpoints) are migrated on load by
:func:`migrate`, so renaming a field never breaks an existing checkpoint.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from .hints import did_you_mean, first_line

CONFIG_VERSION = 2
INITS = ("normal", "xavier", "kaiming", "orthogonal")


class ConfigError(ValueError):
    """A config value or key is wrong; the message names the key path and what to do."""


def _show(value: Any) -> str:
    """A short repr of a config value for messages (a huge or deeply nested value is cut)."""
    import reprlib

    r = reprlib.Repr()
    r.maxstring, r.maxother, r.maxlist, r.maxdict, r.maxlevel = 60, 60, 6, 6, 3
    return r.repr(value)


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


def safe_yaml(text: str, where: str) -> Any:
    """``yaml.safe_load`` (no Python tags: reading a config runs no code) that refuses documents
    whose anchors and aliases expand to more than :data:`MAX_YAML_VALUES` values (a "billion
    laughs" bomb) before building anything."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _yaml_size(node, {}, set()) > MAX_YAML_VALUES:
            raise ConfigError(f"{where} expands to more than {MAX_YAML_VALUES:,} values through YAML anchors and aliases; "
                              "write the values out (a config needs a few hundred at most)")
        return loader.construct_document(node)
    finally:
        loader.dispose()


# ----------------------------------------------------------------------------- shared sections
@dataclass
class OptimConfig:
    """Adam for every optimizer the pipeline declares (``G`` at ``lr_g``, ``D`` at ``lr_d``).
    ``fused``: one fused kernel per step for all parameters (CPU and CUDA) instead of the
    multi-tensor loop: the same update up to float rounding, and 15 % (fp32) to 25 % (bf16)
    of a pix2pix step saved on a 2-core CPU. Off by default so that runs repeat earlier
    runs' trajectories; the recommended fast setting is ``fused: true`` with
    ``train.amp: bf16`` (see the README's speed table).

    ``n_critic``: discriminator updates per generator update (WGAN's 5; 1: alternate). The
    generator's optimizer steps on every ``n_critic``-th iteration only; each iteration still
    draws a new batch for D. Two time-scales (TTUR, Heusel et al. 2017): a larger ``lr_d``
    than ``lr_g`` (e.g. 4e-4 and 1e-4) instead of, or with, ``n_critic``."""

    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    weight_decay: float = 0.0
    fused: bool = False
    n_critic: int = 1


@dataclass
class ScheduleConfig:
    """Learning-rate schedule, stepped every iteration.

    ``linear``: constant for ``decay_start`` then linear to zero at the end of training;
    ``step``: times ``gamma`` every ``step_size``; ``cosine``: cosine to zero;
    ``constant``. ``decay_start`` and ``step_size`` count epochs when ``train.epochs`` is
    set, else steps."""

    policy: Literal["constant", "linear", "step", "cosine"] = "linear"
    decay_start: int = 100
    step_size: int = 50
    gamma: float = 0.1


@dataclass
class TrainConfig:
    """Training length is ``epochs`` or ``steps`` (exactly one). ``amp`` applies on CUDA
    (``bf16`` also on CPU); ``fp16`` uses a gradient scaler. ``ema_decay`` > 0 keeps an
    exponential moving average of the generator's weights (its half-life ramps up as 5 % of
    the steps so far, up to ``ema_decay``), saved in checkpoints and used for
    inference and sampling when present. ``bn_recalibration_batches``: before every save,
    the batch-norm statistics of the inference generators (and their EMA copies) are
    re-estimated for the current weights over this many training batches (0: keep the
    running averages, which lag the weights).

    Validation: every ``val_every`` steps (0: never) and at the end, the pipeline's own
    metrics (paired translation: L1 / PSNR / SSIM against targets; super-resolution: PSNR /
    SSIM on Y and PSNR on RGB; generation: FID / KID / IS and the mode-collapse diagnostics
    on ``val_features``, with class coverage by the ONNX classifier ``val_classifier``) are measured on up
    to ``val_limit`` items (null: all) of ``data.val_root`` for the inference generators (EMA
    when kept), logged, and ``checkpoints/best.pt`` keeps the best step by ``val_metric``
    (default: the evaluation's first metric, e.g. PSNR or FID).

    Trackers (rank 0, see :mod:`i2i.engine.trackers`): ``tensorboard`` writes ``RUN/tensorboard``;
    ``wandb`` logs to the Weights & Biases project ``wandb_project`` (``WANDB_MODE=offline``
    keeps it local). Both get grouped scalars, sample grids, the config and hyper-parameters."""

    epochs: int | None = 200
    steps: int | None = None
    device: str = "auto"
    amp: Literal["none", "bf16", "fp16"] = "none"
    compile: bool = False
    channels_last: bool = False
    log_every: int = 50
    sample_every: int = 500
    checkpoint_every: int = 1000
    keep_checkpoints: int = 0
    tensorboard: bool = False
    wandb: bool = False
    wandb_project: str = "i2i"
    progress: bool = True
    deterministic: bool = False
    ema_decay: float = 0.0
    bn_recalibration_batches: int = 32
    val_every: int = 0
    val_metric: str | None = None
    val_limit: int | None = 100
    val_features: str = "fid-inception"
    val_classifier: str | None = None


@dataclass
class TestConfig:
    """``mode``: ``eval`` (running statistics, no dropout) or ``paper`` (pix2pix test time:
    batch statistics and dropout on, as in the paper)."""

    mode: Literal["eval", "paper"] = "eval"


@dataclass
class DataConfig:
    """What every pipeline's data section has; pipelines declare subclasses with their own keys.
    ``val_root``: held-out data for the preview grid (the training folder otherwise) and
    for validation (``train.val_every``)."""

    root: str = ""
    val_root: str | None = None
    batch_size: int = 1
    num_workers: int = 2


@dataclass
class LossConfig:
    """What every adversarial objective has; pipelines declare subclasses with their terms.

    ``gan_mode``: vanilla (non-saturating BCE on logits), lsgan, hinge, wgangp (with the
    gradient penalty weighted ``gp_weight``). ``r1_weight``: gamma of the R1 penalty on real
    images, in any mode (0: off; Mescheder et al. 2018 use 10, StyleGAN2 0.01-100 by
    resolution; see :func:`i2i.losses.r1_penalty`)."""

    gan_mode: Literal["vanilla", "lsgan", "hinge", "wgangp"] = "vanilla"
    gp_weight: float = 10.0
    r1_weight: float = 0.0


# ----------------------------------------------------------------------------- networks
@dataclass
class NetConfig:
    """A network: a registered ``name`` (architecture or preset), its weight ``init``, and
    ``options``: keyword arguments for the architecture's constructor (validated against it).

    ``init_from`` (generators only): a checkpoint whose generator initialises this one
    (e.g. SRGAN from a pretrained SRResNet). In YAML the options sit beside ``name``:
    ``generator: {name: unet_256, norm: instance}``."""

    name: str
    role: Literal["generator", "discriminator"] = "generator"
    init: Literal["normal", "xavier", "kaiming", "orthogonal"] = "normal"
    init_gain: float = 0.02
    init_from: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def arg(self, key: str) -> Any:
        """The value the constructor gets for ``key``: the option, else what the preset fixes,
        else the constructor's default (KeyError when the architecture has no such argument)."""
        if key in self.options:
            return self.options[key]
        from .registry import resolve_net

        cls, fixed = resolve_net(self.role, self.name)
        if key in fixed:
            return fixed[key]
        param = inspect.signature(cls).parameters.get(key)
        if param is None or param.default is inspect.Parameter.empty:
            raise KeyError(f"{self.role} {self.name!r} has no argument {key!r}")
        return param.default

    def to_dict(self) -> dict[str, Any]:
        """The flat YAML form: ``name``, ``init``, ``init_gain``, [``init_from``], then the options."""
        out: dict[str, Any] = {"name": self.name, "init": self.init, "init_gain": self.init_gain}
        if self.role == "generator":
            out["init_from"] = self.init_from
        return {**out, **self.options}


@dataclass
class ModelConfig:
    generator: NetConfig
    discriminator: NetConfig | None = None


@dataclass
class Config:
    """A whole run. ``data`` and ``loss`` are instances of the pipeline's own config classes."""

    name: str
    pipeline: str
    seed: int
    output_dir: str
    model: ModelConfig
    data: DataConfig
    loss: LossConfig
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    test: TestConfig = field(default_factory=TestConfig)
    version: int = CONFIG_VERSION

    @property
    def run_dir(self) -> Path:
        """Folder of this run: ``output_dir/name``."""
        return Path(self.output_dir) / self.name


TOP_LEVEL = ("version", "name", "pipeline", "seed", "output_dir", "model", "data", "loss", "optim", "schedule", "train", "test")


# ----------------------------------------------------------------------------- typed values
def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    return "null" if tp is type(None) else getattr(tp, "__name__", str(tp))


def convert_value(value: Any, tp: Any, path: str) -> Any:
    """Check ``value`` against type ``tp`` and return it converted (e.g. int -> float);
    a :class:`ConfigError` names ``path`` otherwise."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"config key {path!r} must be a mapping of {tp.__name__} fields, got {_show(value)}")
        return build_dataclass(tp, value, path)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return convert_value(value, a, path)
            except ConfigError:
                pass
        raise ConfigError(f"config key {path!r} must be {_type_name(tp)}, got {_show(value)}")
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            hint = did_you_mean(str(value), [str(c) for c in choices])
            raise ConfigError(f"config key {path!r} is {_show(value)}{hint}; choose one of {', '.join(map(str, choices))}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config key {path!r} must be true or false, got {_show(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config key {path!r} must be an integer, got {_show(value)}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config key {path!r} must be a number, got {_show(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"config key {path!r} must be a string, got {_show(value)}")
        return value
    if tp is Any:
        return value
    raise TypeError(f"unsupported config type {tp!r} at {path}")  # programming error


# Allowed ranges of numeric keys wherever they appear (a section field or a net option):
# (low, high, low_open, high_open); None: unbounded. Checked before anything is built.
RANGES: dict[str, tuple[float | None, float | None, bool, bool]] = {
    # optim / schedule
    "lr_g": (0, 1, True, False), "lr_d": (0, 1, True, False), "beta1": (0, 1, False, True), "beta2": (0, 1, False, True),
    "weight_decay": (0, 1, False, False), "decay_start": (0, None, False, False), "step_size": (1, None, False, False),
    "gamma": (0, 1, True, False),
    # train
    "epochs": (1, 10**7, False, False), "steps": (1, 10**10, False, False), "log_every": (1, None, False, False),
    "sample_every": (1, None, False, False), "checkpoint_every": (1, None, False, False), "keep_checkpoints": (0, 10**6, False, False),
    "ema_decay": (0, 1, False, True), "bn_recalibration_batches": (0, 10**5, False, False), "val_every": (0, None, False, False),
    "val_limit": (1, None, False, False), "seed": (0, 2**63 - 1, False, False),
    # data
    "batch_size": (1, 65536, False, False), "num_workers": (0, 256, False, False), "load_size": (1, 16384, False, False),
    "crop_size": (1, 16384, False, False), "image_size": (8, 4096, False, False),
    # losses
    "gp_weight": (0, 1e6, False, False), "r1_weight": (0, 1e6, False, False), "n_critic": (1, 100, False, False),
    "l1_weight": (0, 1e6, False, False), "cycle_weight": (0, 1e6, False, False),
    "identity_weight": (0, 1e6, False, False), "pool_size": (0, 10**5, False, False), "pixel_weight": (0, 1e6, False, False),
    "perceptual_weight": (0, 1e6, False, False), "adversarial_weight": (0, 1e6, False, False),
    # net options
    "base_channels": (1, 1024, False, False), "in_channels": (1, 4, False, False), "out_channels": (1, 4, False, False),
    "num_downs": (1, 12, False, False), "n_blocks": (0, 128, False, False), "n_layers": (0, 10, False, False),
    "latent_dim": (1, 65536, False, False), "num_classes": (0, 100000, False, False), "scale": (1, 16, False, False),
    "input_size": (8, 4096, False, False), "init_gain": (0, 100, True, False), "attention": (0, 4096, False, False),
    "minibatch_std": (0, 4096, False, False),
}


def check_range(path: str, value: Any) -> None:
    """Raise :class:`ConfigError` naming ``path`` when a number is NaN, infinite or outside
    the range :data:`RANGES` gives its key (the last part of ``path``)."""
    import math

    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config key {path!r} must be a finite number, got {value}")
    spec = RANGES.get(path.rsplit(".", 1)[-1])
    if spec is None:
        return
    lo, hi, lo_open, hi_open = spec
    if (lo is not None and (value < lo or (lo_open and value == lo))) or (hi is not None and (value > hi or (hi_open and value == hi))):
        low = "" if lo is None else f"{'(' if lo_open else '['}{lo:g}"
        high = "" if hi is None else f"{hi:g}{')' if hi_open else ']'}"
        allowed = f"{low}, {high}" if lo is not None and hi is not None else (f">= {lo:g}" if hi is None else f"<= {hi:g}")
        if lo is not None and hi is None and lo_open:
            allowed = f"> {lo:g}"
        raise ConfigError(f"config key {path!r} is {value}; allowed: {allowed}")


def build_dataclass(cls: type, data: dict[str, Any], prefix: str = "", *, owner: str | None = None,
                    elsewhere: dict[str, str] | None = None) -> Any:
    """``cls(**data)`` with every value type-checked. An unknown key is an error naming its
    path; ``owner`` (e.g. "pipeline 'pix2pix'") and ``elsewhere`` (key -> where it does apply)
    make the message say why the key does not apply here."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    kwargs = {}
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if key not in names:
            where = f"section {prefix!r}" if prefix else "the top level"
            if elsewhere and key in elsewhere:
                why = f" to {owner} (it is an option of {elsewhere[key]})"
            else:
                why = (f" to {owner}" if owner else "") + did_you_mean(str(key), names)
            verb = "does not apply" if owner else "is unknown"
            raise ConfigError(f"config key {path!r} {verb}{why}; keys allowed in {where}: {', '.join(names)}")
        kwargs[key] = convert_value(value, hints[key], path)
        check_range(path, kwargs[key])
    return cls(**kwargs)


# ----------------------------------------------------------------------------- net sections
def _net_config(value: Any, path: str, role: str, pipe: type) -> NetConfig:
    from .registry import net_names, resolve_net

    if not isinstance(value, dict):
        raise ConfigError(f"config key {path!r} must be a mapping like {{name: ..., <options>}}, got {_show(value)}")
    value = dict(value)
    name = value.pop("name", pipe.default_nets.get(role))
    if not isinstance(name, str):
        raise ConfigError(f"config key '{path}.name' must name a registered {role}, got {name!r}")
    try:
        cls, fixed = resolve_net(role, name)
    except ValueError:
        known = net_names(role)
        raise ConfigError(f"config key '{path}.name' is {name!r}{did_you_mean(name, known)}; known {role}s: {', '.join(known)}") from None
    spec: dict[str, Any] = {"name": name, "role": role}
    for key, tp in (("init", Literal["normal", "xavier", "kaiming", "orthogonal"]), ("init_gain", float), ("init_from", str | None)):
        if key in value:
            if key == "init_from" and role != "generator":
                raise ConfigError(f"config key '{path}.init_from' applies to generators only")
            spec[key] = convert_value(value.pop(key), tp, f"{path}.{key}")
            check_range(f"{path}.{key}", spec[key])
    params = inspect.signature(cls).parameters
    hints = typing.get_type_hints(cls.__init__)
    derived = pipe.derived_options.get(role, ())
    options = {}
    for key, v in value.items():
        kpath = f"{path}.{key}"
        if key in derived and key in params:
            raise ConfigError(f"config key {kpath!r} is set by the {pipe.name} pipeline (it follows from the rest of the config); "
                              "remove it")
        if key in fixed:
            from .registry import resolve_arch_name

            raise ConfigError(f"config key {kpath!r} is fixed to {fixed[key]!r} by the preset {name!r}; "
                              f"to change it use the architecture: '{path}.name: {resolve_arch_name(role, name)}'")
        if key not in params or params[key].kind is not inspect.Parameter.KEYWORD_ONLY:
            allowed = [k for k, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY and k not in fixed and k not in derived]
            raise ConfigError(f"config key {kpath!r} is not an option of {role} {name!r} ({cls.__name__})"
                              f"{did_you_mean(str(key), allowed)}; its options: {', '.join(allowed)}")
        options[key] = convert_value(v, hints.get(key, Any), kpath)
        check_range(kpath, options[key])
    return NetConfig(**spec, options=options)


# ----------------------------------------------------------------------------- whole config
def _pipeline_class(name: Any) -> type:
    from .registry import PIPELINES, pipeline_class

    if not isinstance(name, str) or name not in PIPELINES:
        raise ConfigError(f"config key 'pipeline' is {name!r}{did_you_mean(str(name), list(PIPELINES))}; known: {', '.join(PIPELINES)}")
    return pipeline_class(name)


def _elsewhere(section: str, pipe: type) -> dict[str, str]:
    """Keys of ``section`` that other pipelines own, for 'it is an option of ...' hints."""
    from .registry import PIPELINES, pipeline_class

    own = {f.name for f in dataclasses.fields(getattr(pipe, section.capitalize() + "Config"))}
    out: dict[str, str] = {}
    for name in PIPELINES:
        for f in dataclasses.fields(getattr(pipeline_class(name), section.capitalize() + "Config")):
            if f.name not in own:
                out.setdefault(f.name, f"pipeline {name!r}")
    return out


def _build_config(data: dict[str, Any]) -> Config:
    for key in data:
        if key not in TOP_LEVEL:
            raise ConfigError(f"unknown config key {key!r}{did_you_mean(str(key), TOP_LEVEL)}; keys allowed at the top level: "
                              f"{', '.join(TOP_LEVEL)}")
    pipe = _pipeline_class(data.get("pipeline", "pix2pix"))
    version = convert_value(data.get("version", CONFIG_VERSION), int, "version")
    if version != CONFIG_VERSION:
        raise ConfigError(f"config key 'version' is {version}; this i2i reads version {CONFIG_VERSION} (older ones are migrated "
                          "when loaded from checkpoints)")
    model = data.get("model") or {}
    if not isinstance(model, dict):
        raise ConfigError(f"config key 'model' must be a mapping with 'generator' and 'discriminator', got {model!r}")
    for key in model:
        if key not in ("generator", "discriminator"):
            raise ConfigError(f"unknown config key 'model.{key}'{did_you_mean(str(key), ['generator', 'discriminator'])}; "
                              "keys allowed in section 'model': generator, discriminator")
    generator = _net_config(model.get("generator") or {}, "model.generator", "generator", pipe)
    disc_value = model.get("discriminator")
    if disc_value is None and pipe.default_nets.get("discriminator"):
        disc_value = {}
    discriminator = _net_config(disc_value, "model.discriminator", "discriminator", pipe) if disc_value is not None else None
    owner = f"pipeline {pipe.name!r}"

    def section(key: str, cls: type, pipeline_owned: bool) -> Any:
        value = data.get(key) or {}
        if not isinstance(value, dict):
            raise ConfigError(f"config key {key!r} must be a mapping of {cls.__name__} fields, got {_show(value)}")
        if not pipeline_owned:
            return build_dataclass(cls, value, key)
        for old, new in pipe.renamed_options.get(key, {}).items():
            if old in value:
                raise ConfigError(f"config key '{key}.{old}' is called '{key}.{new}' in pipeline {pipe.name!r}; rename it")
        try:
            return build_dataclass(cls, value, key, owner=owner)
        except ConfigError as e:
            if "does not apply" not in str(e):
                raise
            return build_dataclass(cls, value, key, owner=owner, elsewhere=_elsewhere(key, pipe))

    cfg = Config(
        name=convert_value(data.get("name", "run"), str, "name"),
        pipeline=pipe.name,
        seed=_seed(data.get("seed", 0)),
        output_dir=convert_value(data.get("output_dir", "runs"), str, "output_dir"),
        model=ModelConfig(generator=generator, discriminator=discriminator),
        data=section("data", pipe.DataConfig, True),
        loss=section("loss", pipe.LossConfig, True),
        optim=section("optim", OptimConfig, False),
        schedule=section("schedule", ScheduleConfig, False),
        train=section("train", TrainConfig, False),
        test=section("test", TestConfig, False),
    )
    _validate(cfg)
    pipe.validate_config(cfg)
    pipe.check_buildable(cfg)
    return cfg


def _seed(value: Any) -> int:
    seed = convert_value(value, int, "seed")
    check_range("seed", seed)
    return seed


def _validate_paths(cfg: Config) -> None:
    """The run folder is ``output_dir/name``: ``name`` is one plain folder name, and the run
    folder may not be the filesystem root or lie inside the data it trains on (samples and
    checkpoints would mix with the images)."""
    import os

    name = cfg.name
    if not name or name in (".", "..") or "/" in name or "\\" in name or os.path.isabs(name):
        raise ConfigError(f"'name' {_show(name)} must be a plain folder name (no '/', '..' or absolute path): the run folder "
                          "is output_dir/name; set output_dir to choose where runs go")
    out = Path(cfg.output_dir).expanduser().resolve()
    if out == Path(out.anchor):
        raise ConfigError(f"'output_dir' {_show(cfg.output_dir)} is the filesystem root; choose a folder for runs, e.g. runs")
    run = out / name
    for key in ("root", "val_root"):
        data = getattr(cfg.data, key, None)
        if data:
            d = Path(data).expanduser().resolve()
            if run == d or d in run.parents:
                raise ConfigError(f"the run folder '{run}' (output_dir/name) is inside data.{key} '{data}': samples and "
                                  "checkpoints would land among the training images; choose an output_dir outside the data")


def _validate(cfg: Config) -> None:
    _validate_paths(cfg)
    t = cfg.train
    if (t.epochs is None) == (t.steps is None):
        raise ConfigError("set exactly one of 'train.epochs' and 'train.steps' (the other to null)")
    if (t.epochs or t.steps or 0) <= 0:
        raise ConfigError("'train.epochs' / 'train.steps' must be positive")
    for key in ("log_every", "sample_every", "checkpoint_every"):
        if getattr(t, key) <= 0:
            raise ConfigError(f"'train.{key}' must be positive, got {getattr(t, key)}")
    if cfg.data.batch_size <= 0:
        raise ConfigError(f"'data.batch_size' must be positive, got {cfg.data.batch_size}")
    if t.device != "auto":
        import torch

        try:
            torch.device(t.device)
        except (RuntimeError, ValueError):
            raise ConfigError(f"'train.device' {_show(t.device)} is not a device; use auto, cpu, cuda or cuda:N") from None
    if t.val_every < 0:
        raise ConfigError(f"'train.val_every' must be 0 (no validation) or a number of steps, got {t.val_every}")
    if t.val_limit is not None and t.val_limit <= 0:
        raise ConfigError(f"'train.val_limit' must be a positive number of items or null (all), got {t.val_limit}")
    if t.val_every and not cfg.data.val_root:
        raise ConfigError("'train.val_every' needs 'data.val_root': a folder of held-out data the model never trains on")
    if t.val_metric is not None:
        from .registry import evaluation, pipeline_class

        names = evaluation(pipeline_class(cfg.pipeline).evaluation).validator.metric_names(cfg)
        if t.val_metric not in names:
            raise ConfigError(f"'train.val_metric' {t.val_metric!r} is not measured for {cfg.pipeline}"
                              f"{did_you_mean(t.val_metric, list(names))}; choose one of {', '.join(names)}")


# ----------------------------------------------------------------------------- versions
def _migrate_v1(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 (i2i up to c9b2b16): one flat union of every method's fields. Keep exactly
    what the pipeline used: null generator fields meant the architecture's default, the
    discriminator's ``in_channels`` null meant "what the pipeline feeds it", DCGAN's image
    size was ``data.crop_size`` and its prior a generator field."""
    from .registry import resolve_net

    pipe = _pipeline_class(data.get("pipeline", "pix2pix"))
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
        names = {f.name for f in dataclasses.fields(cls)}
        out[key] = {k: v for k, v in src.items() if k in names}
    out["version"] = 2
    return out


MIGRATIONS = {1: _migrate_v1}


def migrate(data: dict[str, Any], version: int) -> dict[str, Any]:
    """Bring a config dict written as ``version`` up to :data:`CONFIG_VERSION`."""
    if version > CONFIG_VERSION:
        raise ConfigError(f"the config has version {version}; this i2i reads up to {CONFIG_VERSION}: upgrade i2i")
    data = copy.deepcopy(data)
    while version < CONFIG_VERSION:
        data = MIGRATIONS[version](data)
        version += 1
    return data


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
            if key == one and value is not None and f"train.{other}" not in keys and isinstance(data.get("train"), dict):
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


def config_from_dict(data: dict[str, Any], overrides: list[str] | None = None) -> Config:
    """Build and validate a :class:`Config` from plain data (a YAML file's or a checkpoint's)."""
    if not isinstance(data, dict):
        raise ConfigError(f"a config must be a mapping at the top level, got {type(data).__name__}")
    return _build_config(apply_overrides(data, overrides))


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read a YAML config file, apply ``key.path=value`` overrides, validate, return it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file '{path}' not found; pass the path of a YAML file such as configs/pix2pix/demo.yaml")
    try:
        data = safe_yaml(path.read_text(), f"config file '{path}'") or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"config file '{path}' is not valid YAML: {e}") from None
    except (UnicodeDecodeError, OSError) as e:
        raise ConfigError(f"config file '{path}' cannot be read as text ({e}); pass a YAML file") from None
    try:
        return config_from_dict(data, overrides)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


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
            out[f.name] = dataclasses.asdict(value)
        elif f.name != "version":
            out[f.name] = value
    return out


def dump_config(cfg: Config) -> str:
    """The resolved config as YAML text."""
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)

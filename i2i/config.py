"""YAML configs as typed dataclasses.

``load_config(path, overrides)`` reads a YAML file, applies ``key.path=value``
overrides, and builds :class:`Config`. Unknown keys and values of the wrong type are
rejected with the full key path and, where one is close, a suggestion. The resolved
config round-trips through :func:`config_to_dict` / :func:`config_from_dict`, which is
how it travels inside run folders and checkpoints.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from .registry import did_you_mean


class ConfigError(ValueError):
    """A config value or key is wrong; the message names the key path and what to do."""


@dataclass
class GeneratorConfig:
    """Generator: a preset (unet_256, unet_128, resnet_9blocks, resnet_6blocks) or an
    architecture (unet, resnet, srresnet). Keys left null take the architecture's default
    (U-Net: batch norm, dropout on; ResNet: batch norm, no dropout; SRResNet: batch norm,
    16 blocks, x4). ``num_downs`` is U-Net's, ``n_blocks`` ResNet's / SRResNet's, ``scale``
    and ``global_skip`` SRResNet's; ``latent_dim``, ``num_classes`` (0: unconditional) and
    ``prior`` (of z) DCGAN's, whose image size is ``data.crop_size``. ``init_from``: a checkpoint whose generator ``G`` initialises this one
    (e.g. SRGAN from a pretrained SRResNet)."""

    name: str = "unet_256"
    in_channels: int = 3
    out_channels: int = 3
    base_channels: int = 64
    norm: Literal["batch", "instance", "none"] | None = None
    dropout: bool | None = None
    num_downs: int | None = None
    n_blocks: int | None = None
    scale: int | None = None
    global_skip: bool | None = None
    latent_dim: int | None = None
    num_classes: int | None = None
    prior: Literal["gaussian", "uniform"] = "gaussian"
    init: Literal["normal", "xavier", "kaiming", "orthogonal"] = "normal"
    init_gain: float = 0.02
    init_from: str | None = None


@dataclass
class DiscriminatorConfig:
    """Discriminator: ``patch`` (PatchGAN, ``n_layers``) or ``pixel``. ``in_channels``
    None means what the pipeline feeds it (pix2pix: input + output channels)."""

    name: str = "patch"
    in_channels: int | None = None
    base_channels: int = 64
    n_layers: int = 3
    norm: Literal["batch", "instance", "none"] = "batch"
    spectral_norm: bool = False
    init: Literal["normal", "xavier", "kaiming", "orthogonal"] = "normal"
    init_gain: float = 0.02


@dataclass
class ModelConfig:
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)


@dataclass
class DataConfig:
    """Paired data (pix2pix): ``root`` holds either ``A/`` + ``B/`` folders matched by file
    stem or side-by-side AB images (``layout: auto`` picks by looking).
    Unpaired data (CycleGAN): ``root`` holds ``trainA/ trainB/ testA/ testB/`` (or ``A/ B/``);
    B images are drawn at random unless ``serial_batches``.
    Super-resolution (SRGAN): ``root`` is a folder of HR images; LR images are made with
    MATLAB-style bicubic unless ``lr_root`` holds them (matched by name); ``crop_size`` is
    the HR crop; ``rotate`` adds random 90-degree rotations.
    Generation (DCGAN): ``dataset`` ``folder`` reads images under ``root`` (class = first
    sub-folder, for conditional models) resized and centre-cropped to ``crop_size``; or
    a torchvision dataset from local files under ``root`` (``download: true`` fetches it:
    an explicit network access). ``val_root`` is optional."""

    root: str = ""
    val_root: str | None = None
    layout: Literal["auto", "folders", "aligned"] = "auto"
    direction: Literal["a_to_b", "b_to_a"] = "a_to_b"
    preprocess: Literal["resize_and_crop", "crop", "resize", "none"] = "resize_and_crop"
    load_size: int = 286
    crop_size: int = 256
    flip: bool = True
    batch_size: int = 1
    num_workers: int = 2
    serial_batches: bool = False
    lr_root: str | None = None
    rotate: bool = False
    dataset: Literal["folder", "mnist", "fashion_mnist", "cifar10"] = "folder"
    download: bool = False


@dataclass
class LossConfig:
    """``gan_mode``: vanilla (non-saturating BCE on logits), lsgan, hinge, wgangp.
    pix2pix: ``l1_weight``. CycleGAN: ``cycle_weight`` (each direction),
    ``identity_weight`` (times ``cycle_weight``; 0 disables), ``pool_size`` (history of
    generated images per direction shown to the discriminators; 0 disables).
    SRGAN: ``pixel_weight`` x ``pixel_loss`` + ``perceptual_weight`` x VGG19 feature MSE at
    ``perceptual_layer`` (weights from ``vgg_weights`` or torchvision's cache) +
    ``adversarial_weight`` x GAN loss (0: plain SRResNet training, no discriminator)."""

    gan_mode: Literal["vanilla", "lsgan", "hinge", "wgangp"] = "vanilla"
    l1_weight: float = 100.0
    gp_weight: float = 10.0
    cycle_weight: float = 10.0
    identity_weight: float = 0.5
    pool_size: int = 50
    pixel_loss: Literal["mse", "l1"] = "mse"
    pixel_weight: float = 1.0
    perceptual_weight: float = 0.0
    perceptual_layer: str = "relu5_4"
    vgg_weights: str | None = None
    adversarial_weight: float = 1e-3


@dataclass
class OptimConfig:
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    weight_decay: float = 0.0


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
    exponential moving average of the generator's weights, saved in checkpoints and used
    for inference and sampling when present."""

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
    progress: bool = True
    deterministic: bool = False
    ema_decay: float = 0.0


@dataclass
class TestConfig:
    """``mode``: ``eval`` (running statistics, no dropout) or ``paper`` (pix2pix test time:
    batch statistics and dropout on, as in the paper)."""

    mode: Literal["eval", "paper"] = "eval"


@dataclass
class Config:
    name: str = "run"
    pipeline: str = "pix2pix"
    seed: int = 0
    output_dir: str = "runs"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    test: TestConfig = field(default_factory=TestConfig)

    @property
    def run_dir(self) -> Path:
        """Folder of this run: ``output_dir/name``."""
        return Path(self.output_dir) / self.name


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    return "null" if tp is type(None) else getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, path: str) -> Any:
    """Check ``value`` against type ``tp`` and return it converted (e.g. int -> float)."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"config key {path!r} must be a mapping of {tp.__name__} fields, got {value!r}")
        return _build(tp, value, path)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(value, a, path)
            except ConfigError as e:
                errors.append(e)
        raise ConfigError(f"config key {path!r} must be {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            hint = did_you_mean(str(value), [str(c) for c in choices])
            raise ConfigError(f"config key {path!r} is {value!r}{hint}; choose one of {', '.join(map(str, choices))}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config key {path!r} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config key {path!r} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config key {path!r} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"config key {path!r} must be a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {tp!r} at {path}")  # programming error


def _build(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if key not in names:
            where = f"section {prefix!r}" if prefix else "the top level"
            raise ConfigError(f"unknown config key {path!r}{did_you_mean(str(key), names)}; keys allowed in {where}: {', '.join(names)}")
        kwargs[key] = _convert(value, hints[key], path)
    return cls(**kwargs)


def _validate(cfg: Config) -> None:
    t = cfg.train
    if (t.epochs is None) == (t.steps is None):
        raise ConfigError("set exactly one of 'train.epochs' and 'train.steps' (the other to null)")
    if (t.epochs or t.steps or 0) <= 0:
        raise ConfigError("'train.epochs' / 'train.steps' must be positive")
    for key in ("log_every", "sample_every", "checkpoint_every"):
        if getattr(t, key) <= 0:
            raise ConfigError(f"'train.{key}' must be positive, got {getattr(t, key)}")
    d = cfg.data
    if d.batch_size <= 0:
        raise ConfigError(f"'data.batch_size' must be positive, got {d.batch_size}")
    for key in ("in_channels", "out_channels"):
        if getattr(cfg.model.generator, key) not in (1, 3):
            raise ConfigError(f"'model.generator.{key}' must be 1 or 3, got {getattr(cfg.model.generator, key)}")
    from .registry import PIPELINES

    if cfg.pipeline not in PIPELINES:
        raise ConfigError(f"'pipeline' is {cfg.pipeline!r}{did_you_mean(cfg.pipeline, list(PIPELINES))}; known: {', '.join(PIPELINES)}")


def parse_override(text: str) -> tuple[str, Any]:
    """``"a.b=c"`` -> ``("a.b", yaml-parsed c)``."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.path=value, e.g. train.steps=100")
    key, raw = text.split("=", 1)
    return key.strip(), yaml.safe_load(raw) if raw.strip() else ""


def apply_overrides(data: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``key.path=value`` set (sections created as needed)."""
    import copy

    data = copy.deepcopy(data)
    for text in overrides or []:
        key, value = parse_override(text)
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            nxt = node.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise ConfigError(f"override {text!r}: {part!r} is a value, not a section")
            node = nxt
        node[parts[-1]] = value
    return data


def config_from_dict(data: dict[str, Any], overrides: list[str] | None = None) -> Config:
    """Build and validate a :class:`Config` from plain data (e.g. a checkpoint's copy)."""
    if not isinstance(data, dict):
        raise ConfigError(f"a config must be a mapping at the top level, got {type(data).__name__}")
    cfg = _build(Config, apply_overrides(data, overrides))
    _validate(cfg)
    return cfg


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read a YAML config file, apply ``key.path=value`` overrides, validate, return it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file '{path}' not found; pass the path of a YAML file such as configs/pix2pix/demo.yaml")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"config file '{path}' is not valid YAML: {e}") from None
    try:
        return config_from_dict(data, overrides)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """Plain-data copy of ``cfg`` (only dicts, lists, str, int, float, bool, None)."""
    return dataclasses.asdict(cfg)


def dump_config(cfg: Config) -> str:
    """The resolved config as YAML text."""
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)

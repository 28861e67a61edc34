"""The config dataclasses: the shared sections (``optim``, ``schedule``, ``train``, ``test``),
the bases of the pipeline-owned ``data`` and ``loss`` sections, networks and the whole run.

Numeric fields declare their allowed range in their annotation (:class:`i2i.options.Range`);
the loader checks every value against it. Checks across keys are each section's ``problems()``
(messages naming the keys, empty when all is well); :meth:`Config.problems` gathers them.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import torch

from ..hints import show
from ..nets.registry import resolve_net
from ..options import Amp, GANMode, Init, LossWeight, Range, TestMode, parse_policy

PSEUDO_FILESYSTEMS = ("/proc", "/sys", "/dev")
"""Kernel file systems: never data folders."""

CONFIG_VERSION = 3

Steps = Annotated[int, Range(1, None)]
"""A positive number of steps (an interval of logging, sampling, saving)."""
Seed = Annotated[int, Range(0, 2**32 - 1)]
"""NumPy's generators take seeds below 2**32."""


class ConfigError(ValueError):
    """A config value or key is wrong; the message names the key path and what to do."""


@dataclass
class OptimConfig:
    """Adam for every optimizer the pipeline declares (the generator side at ``lr_g``, the
    discriminator side at ``lr_d``). ``fused``: one fused kernel per step for all parameters
    instead of the multi-tensor loop (the same update up to float rounding; off by default so
    that runs repeat earlier runs' trajectories; see docs/benchmarks.md for where it is faster).

    ``n_critic``: discriminator updates per generator update (WGAN's 5; 1: alternate). The
    generator's optimizer steps on every ``n_critic``-th iteration only; each iteration still
    draws a new batch for D. Two time-scales (TTUR, Heusel et al. 2017): a larger ``lr_d``
    than ``lr_g`` (e.g. 4e-4 and 1e-4) instead of, or with, ``n_critic``."""

    lr_g: Annotated[float, Range(0, 1, low_open=True)] = 2e-4
    lr_d: Annotated[float, Range(0, 1, low_open=True)] = 2e-4
    beta1: Annotated[float, Range(0, 1, high_open=True)] = 0.5
    beta2: Annotated[float, Range(0, 1, high_open=True)] = 0.999
    weight_decay: Annotated[float, Range(0, 1)] = 0.0
    fused: bool = False
    n_critic: Annotated[int, Range(1, 100)] = 1


@dataclass
class ScheduleConfig:
    """Learning-rate schedule: the rate of each step is a function of the step
    (:func:`i2i.engine.schedule.lr_factor`).

    ``linear``: constant for ``decay_start`` then linear to zero at the end of training;
    ``step``: times ``gamma`` every ``step_size``; ``cosine``: cosine to zero;
    ``constant``. ``decay_start`` and ``step_size`` count epochs when ``train.epochs`` is
    set, else steps."""

    policy: Literal["constant", "linear", "step", "cosine"] = "linear"
    decay_start: Annotated[int, Range(0, None)] = 100
    step_size: Annotated[int, Range(1, None)] = 50
    gamma: Annotated[float, Range(0, 1, low_open=True)] = 0.1


@dataclass
class TrainConfig:
    """Training length is ``epochs`` or ``steps`` (exactly one). ``amp`` applies on CUDA
    (``bf16`` also on CPU); ``fp16`` uses a gradient scaler. ``ema_decay`` > 0 keeps an
    exponential moving average of the generator's weights (its half-life ramps up as 5 % of
    the steps so far, up to ``ema_decay``), saved in checkpoints and used for
    inference and sampling when present. ``bn_recalibration_batches``: before every save,
    the batch-norm statistics of the inference generators (and their EMA copies) are
    re-estimated for the current weights over this many training batches (0: keep the
    running averages, which lag the weights). ``horizontal_batching``: where a step runs one net
    on several inputs (CycleGAN: each generator on its source domain and, for the identity
    term, on its target domain; each discriminator on real and fake images), run it once on
    them all, concatenated, if the net treats the samples of a batch independently (no batch
    norm, minibatch std, dropout or spectral norm); equal within float rounding, fewer and
    larger kernel launches. Nets that mix samples always keep separate calls. ``tf32`` (CUDA,
    Ampere and newer): TensorFloat-32 products in fp32 convolutions and matrix products (10-bit
    mantissa inputs, fp32 accumulation; false: full fp32). On CUDA, cuDNN picks the fastest
    convolution algorithms by timing them (``cudnn.benchmark``) unless ``deterministic``.
    ``cuda_graphs`` (CUDA only): after 3 eager steps the whole training step is captured once
    into a CUDA graph and replayed (one launch per step; see :mod:`i2i.engine.graphs`); refused
    with fp16, ``optim.n_critic`` > 1, torchrun and on other devices, naming the key.

    Validation: every ``val_every`` steps (0: never) and at the end, the pipeline's own
    metrics (its evaluation's metric list: paired translation L1 / PSNR / SSIM against
    targets; super-resolution PSNR / SSIM on Y and RGB; generation FID / KID / IS and the
    mode-collapse diagnostics on ``val_features``, with class coverage by the ONNX classifier
    ``val_classifier``; with ``val_lpips: alex`` or ``vgg``, paired LPIPS too, from local weights)
    are measured on up to ``val_limit`` items (null: all) of
    ``data.val_root`` for the inference generators (EMA when kept), logged, and
    ``checkpoints/best.pt`` keeps the best step by ``val_metric`` (default: the evaluation's
    first metric, e.g. PSNR or FID).

    Trackers (rank 0, see :mod:`i2i.engine.trackers`): ``tensorboard`` writes ``RUN/tensorboard``;
    ``wandb`` logs to the Weights & Biases project ``wandb_project`` (``WANDB_MODE=offline``
    keeps it local). Both get grouped scalars, sample grids, the config and hyper-parameters."""

    epochs: Annotated[int, Range(1, 10**7)] | None = 200
    steps: Annotated[int, Range(1, 10**10)] | None = None
    device: str = "auto"
    amp: Amp = "none"
    compile: bool = False
    channels_last: bool = False
    horizontal_batching: bool = True
    tf32: bool = True
    cuda_graphs: bool = False
    log_every: Steps = 50
    sample_every: Steps = 500
    checkpoint_every: Steps = 1000
    keep_checkpoints: Annotated[int, Range(0, 10**6)] = 0
    tensorboard: bool = False
    wandb: bool = False
    wandb_project: str = "i2i"
    progress: bool = True
    deterministic: bool = False
    ema_decay: Annotated[float, Range(0, 1, high_open=True)] = 0.0
    bn_recalibration_batches: Annotated[int, Range(0, 10**5)] = 32
    val_every: Annotated[int, Range(0, None)] = 0
    val_metric: str | None = None
    val_limit: Annotated[int, Range(1, None)] | None = 100
    val_features: str = "fid-inception"
    val_classifier: str | None = None
    val_lpips: Literal["alex", "vgg"] | None = None

    def problems(self) -> list[str]:
        """Training length given once; a device i2i trains on."""
        out = []
        if (self.epochs is None) == (self.steps is None):
            out.append("set exactly one of 'train.epochs' and 'train.steps' (the other to null)")
        if self.device != "auto":
            try:
                kind = torch.device(self.device).type
            except (RuntimeError, ValueError):
                kind = None
            if kind not in ("cpu", "cuda"):
                out.append(f"'train.device' {show(self.device)} is not a device i2i trains on; use auto, cpu, cuda or "
                           "cuda:N")
        return out


@dataclass
class TestConfig:
    """``mode``: ``eval`` (running statistics, no dropout) or ``paper`` (pix2pix test time:
    batch statistics and dropout on, as in the paper)."""

    __test__ = False  # not a test class (pytest collects Test* names from modules that import it)

    mode: TestMode = "eval"


@dataclass
class DataConfig:
    """What every pipeline's data section has; pipelines declare subclasses with their own keys.
    ``val_root``: held-out data for the preview grid (the training folder otherwise) and
    for validation (``train.val_every``). ``cache: memory`` decodes every training image once,
    before training, and keeps the pixels in memory (refused, naming the size, when they would
    take more than half of the memory available); augmentation still runs per item, from the
    same ``(seed, epoch, index)`` draws, so batches are identical either way. ``cache: device``
    keeps them on the training device and augments whole batches there (same crops and flips,
    resized pixels within one level of the loader's; no loader workers). ``auto``: ``device`` on
    CUDA when the images fit a quarter of the free GPU memory, else ``memory`` when they fit a
    quarter of the RAM available, else ``none``; the banner says what was chosen and why.
    ``max_items`` (the reference's ``max_dataset_size``): train on the first N items of the
    sorted file list only (class folders: spread evenly over the classes; unpaired data: N per
    domain); validation and evaluation still read their folders whole. Null: every item."""

    root: str = ""
    val_root: str | None = None
    batch_size: Annotated[int, Range(1, 65536)] = 1
    num_workers: Annotated[int, Range(0, 256)] = 2
    cache: Literal["auto", "none", "memory", "device"] = "auto"
    max_items: Annotated[int, Range(1, None)] | None = None

    def problems(self) -> list[str]:
        """Checks across this section's keys (none here; a dataset kind's section adds its own)."""
        return []


@dataclass
class TemporalRegularised:
    """A loss section's ``temporal_reg``: weight of the single-frame temporal regularisation
    (after Eilertsen et al., CVPR 2019; :func:`i2i.losses.shift_consistency`): ``|G(S x) - S G(x)|``
    for a random whole-pixel shift ``S``, with ``S G(x)`` a fixed target, so that the generator's
    output on video follows the input's motion instead of flickering, learned from images alone.
    Costs one more generator pass per step and direction; 0: off."""

    temporal_reg: LossWeight = 0.0


@dataclass
class LossConfig:
    """What every adversarial objective has; pipelines declare subclasses with their terms.

    ``gan_mode``: vanilla (non-saturating BCE on logits), lsgan, hinge, wgangp (with the
    gradient penalty weighted ``gp_weight``). ``r1_weight``: gamma of the R1 penalty on real
    images, in any mode (0: off; Mescheder et al. 2018 use 10, StyleGAN2 0.01-100 by
    resolution; see :func:`i2i.losses.r1_penalty`).

    Discriminator augmentation (:mod:`i2i.augment`; DiffAugment, StyleGAN2-ADA): with
    ``augment_policy`` (comma-separated from color, translation, cutout, flip, rot90; '' off)
    every image D sees, real or generated, in D's step and G's, is transformed, each transform
    applied with probability ``augment_p`` (DiffAugment: 1). ``ada_target`` (e.g. 0.6, ADA's):
    ``p`` starts at 0 and adapts so that D's confidence on real images,
    E[sign(D(real))], stays near the target, moving at most from 0 to 1 in ``ada_kimg``
    thousand images; it is saved in checkpoints and logged as ``aug_p``. Helps where D
    overfits a small training set."""

    gan_mode: GANMode = "vanilla"
    gp_weight: LossWeight = 10.0
    r1_weight: LossWeight = 0.0
    augment_policy: str = ""
    augment_p: Annotated[float, Range(0.0, 1.0)] = 1.0
    ada_target: Annotated[float, Range(0.0, 1.0, low_open=True, high_open=True)] | None = None
    ada_kimg: Annotated[float, Range(0.001, 1e6)] = 500.0

    def problems(self) -> list[str]:
        """The augmentation policy names known transforms; ADA has something to adapt and a sign to read."""
        try:
            policy = parse_policy(self.augment_policy)
        except ValueError as e:
            return [f"loss.augment_policy: {e}"]
        if self.ada_target is not None and not policy:
            return ["loss.ada_target adapts the probability of loss.augment_policy, which is empty; name the "
                    "augmentations "
                    "(e.g. loss.augment_policy: color,translation,cutout)"]
        if self.ada_target is not None and self.gan_mode == "wgangp":
            return ["loss.ada_target reads the sign of D's logits, which a WGAN critic's have no fixed zero for; use a "
                    "fixed "
                    "loss.augment_p with gan_mode wgangp"]
        return []


@dataclass
class NetConfig:
    """A network: a registered ``name`` (architecture or preset), its weight ``init``, and
    ``options``: keyword arguments for the architecture's constructor (validated against it).

    ``init_from`` (generators only): a checkpoint whose generator initialises this one
    (e.g. SRGAN from a pretrained SRResNet). In YAML the options sit beside ``name``:
    ``generator: {name: unet_256, norm: instance}``."""

    name: str
    role: Literal["generator", "discriminator"] = "generator"
    init: Init = "normal"
    init_gain: Annotated[float, Range(0, 100, low_open=True)] = 0.02
    init_from: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def arg(self, key: str) -> Any:
        """The value the constructor gets for ``key``: the option, else what the preset fixes,
        else the constructor's default (KeyError when the architecture has no such argument)."""
        if key in self.options:
            return self.options[key]
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
    seed: Seed
    output_dir: str
    model: ModelConfig
    data: DataConfig
    loss: LossConfig
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    test: TestConfig = field(default_factory=TestConfig)
    version: Annotated[int, Range(1, CONFIG_VERSION)] = CONFIG_VERSION

    @property
    def run_dir(self) -> Path:
        """Folder of this run: ``output_dir/name`` (``~`` expanded, as the checks read it)."""
        return Path(self.output_dir).expanduser() / self.name

    def problems(self) -> list[str]:
        """Checks across sections (the run folder and the paths, validation's data), then each
        section's own, in the order of the config; messages name the keys."""
        out = self._path_problems()
        if self.train.val_every and not self.data.val_root:
            out.append("'train.val_every' needs 'data.val_root': a folder of held-out data the model never trains on")
        for section in (self.data, self.loss, self.train):
            out += section.problems()
        return out

    def _path_problems(self) -> list[str]:
        """The run folder is ``output_dir/name``: ``name`` is one plain folder name, and the run
        folder may not be the filesystem root or lie inside the data it trains on (samples and
        checkpoints would mix with the images); no path is longer than a path can be."""
        name = self.name
        if not name or name in (".",
                                "..") or "/" in name or "\\" in name or os.path.isabs(name) or len(name.encode()) > 255:
            return [f"'name' {show(name)} must be a plain folder name (no '/', '..' or absolute path, at most 255 "
                    "bytes): "
                    "the run folder is output_dir/name; set output_dir to choose where runs go"]
        keys = {"output_dir": self.output_dir,
                **{f"data.{k}": getattr(self.data, k, None) for k in ("root", "val_root", "lr_root")},
                "model.generator.init_from": self.model.generator.init_from,
                "train.val_features": self.train.val_features,
                "train.val_classifier": self.train.val_classifier,
                "loss.vgg_weights": getattr(self.loss, "vgg_weights", None)}
        for key, value in keys.items():
            if value and (len(value.encode()) > 4096 or any(len(part.encode()) > 255 for part in Path(value).parts)):
                return [f"'{key}' {show(value)} is longer than a path can be (4096 bytes, 255 per folder name)"]
        out = Path(self.output_dir).expanduser().resolve()
        if out == Path(out.anchor):
            return [f"'output_dir' {show(self.output_dir)} is the filesystem root; choose a folder for runs, e.g. runs"]
        run = (out / name).resolve()  # a run folder that is a symbolic link is judged by where it leads
        for key in ("root", "val_root"):
            data = getattr(self.data, key, None)
            if data:
                d = Path(data).expanduser().resolve()
                if any(d == Path(p) or Path(p) in d.parents for p in PSEUDO_FILESYSTEMS):
                    return [f"data.{key} {show(data)} is inside {', '.join(PSEUDO_FILESYSTEMS)} (the kernel's files, "
                            "not images); "
                            "point it at a folder of images"]
                if run == d or d in run.parents:
                    return [f"the run folder '{run}' (output_dir/name) is inside data.{key} '{data}': samples and "
                            "checkpoints would "
                            "land among the training images; choose an output_dir outside the data"]
        return []


TOP_LEVEL = ("version", "name", "pipeline", "seed", "output_dir", "model", "data", "loss", "optim", "schedule", "train",
             "test")

"""Experiment trackers behind one small interface: TensorBoard and Weights & Biases.

The trainer reports to every tracker the same things: the start (the config as text and
as flat hyper-parameters), logged steps as scalars grouped by kind (``loss/``, ``val/``,
``lr/``, ``progress/``), sample grids as images, and the end (final and best metrics).
Each tracker is optional (``train.tensorboard``, ``train.wandb``; extras ``i2i[tensorboard]``
and ``i2i[wandb]``) and only rank 0 starts one. A tracker that cannot start (package
missing, W&B not logged in) raises :class:`~i2i.config.ConfigError` before training begins.
"""

from __future__ import annotations

import importlib
import secrets
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Config, ConfigError, config_to_dict, dump_config


def group_scalars(record: dict[str, Any]) -> dict[str, float]:
    """A ``metrics.jsonl`` record as tracker tags: ``loss/G_L1``, ``val/PSNR``, ``lr/G``,
    ``progress/epoch`` and ``progress/it_per_s`` (``step`` is the x axis, not a value)."""
    out = {}
    for key, value in record.items():
        if key == "step" or not isinstance(value, (int, float)):
            continue
        if key in ("epoch", "it_per_s"):
            tag = f"progress/{key}"
        elif key.startswith("lr_"):
            tag = f"lr/{key[3:]}"
        elif key.startswith("val_"):
            tag = f"val/{key[4:]}"
        else:
            tag = f"loss/{key}"
        out[tag] = float(value)
    return out


def hyperparameters(cfg: Config) -> dict[str, Any]:
    """The config flattened to ``section.key`` -> scalar (what hyper-parameter tables compare):
    numbers, strings and booleans; lists and nulls as text."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, (bool, int, float, str)):
            flat[prefix] = value
        else:
            flat[prefix] = str(value)

    walk("", config_to_dict(cfg))
    return flat


def _import_extra(module: str, key: str) -> Any:
    """The tracker's package (an optional extra, imported only when asked for), or a ConfigError
    naming ``train.<key>`` and the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"train.{key} is true but the {key} package is missing; "
                          f"pip install 'i2i[{key}]' or set train.{key}: false") from None


class Tracker:
    """What a tracker implements. Every method is called on rank 0 only."""

    name = ""

    def log_scalars(self, values: dict[str, float], step: int) -> None:
        """Tagged scalars (see :func:`group_scalars`) at ``step``."""
        raise NotImplementedError

    def log_image(self, tag: str, image: np.ndarray, step: int) -> None:
        """An ``(H, W, 3)`` uint8 RGB image (a sample grid) at ``step``."""
        raise NotImplementedError

    def finish(self, summary: dict[str, float]) -> None:
        """End of this process's training: final numbers (e.g. ``best/PSNR``), then release."""
        raise NotImplementedError


class TensorBoardTracker(Tracker):
    """Event files in ``RUN/tensorboard`` (``tensorboard --logdir runs``): grouped scalars,
    sample grids under ``samples``, the config under the TEXT tab and, at the end, the
    hyper-parameters with the final numbers under HPARAMS."""

    name = "tensorboard"

    def __init__(self, cfg: Config, run_dir: Path) -> None:
        tensorboard = _import_extra("torch.utils.tensorboard", "tensorboard")
        self.cfg = cfg
        self.writer = tensorboard.SummaryWriter(str(run_dir / "tensorboard"))
        # Indented: TensorBoard renders text as Markdown, and indentation keeps YAML verbatim.
        self.writer.add_text("config", "\n".join("    " + line for line in dump_config(cfg).splitlines()))

    def log_scalars(self, values: dict[str, float], step: int) -> None:
        for tag, v in values.items():
            self.writer.add_scalar(tag, v, step)

    def log_image(self, tag: str, image: np.ndarray, step: int) -> None:
        self.writer.add_image(tag, image, step, dataformats="HWC")

    def finish(self, summary: dict[str, float]) -> None:
        if summary:
            hp = {k: v for k,
                  v in hyperparameters(self.cfg).items() if not k.startswith(("train.", "output_dir", "data.root"))}
            self.writer.add_hparams(hp, summary, run_name=".")
        self.writer.close()


class WandbTracker(Tracker):
    """A Weights & Biases run in project ``train.wandb_project``, named after the run and
    resumed across restarts (its id is kept in ``RUN/wandb_id``); files go under ``RUN/wandb``.
    ``WANDB_MODE=offline`` keeps everything local (``wandb sync`` uploads it later)."""

    name = "wandb"

    def __init__(self, cfg: Config, run_dir: Path) -> None:
        wandb = _import_extra("wandb", "wandb")
        self.wandb = wandb
        id_file = run_dir / "wandb_id"
        run_id = id_file.read_text().strip() if id_file.is_file() else secrets.token_hex(6)
        try:
            self.run = wandb.init(project=cfg.train.wandb_project, name=cfg.name, id=run_id, resume="allow",
                                  dir=str(run_dir), config=hyperparameters(cfg))
        except Exception as e:  # no login, no network in online mode, bad project name, ...
            raise ConfigError(f"train.wandb: Weights & Biases could not start ({type(e).__name__}: {e}); run 'wandb "
                              "login', "
                              "or set WANDB_MODE=offline to log locally, or set train.wandb: false") from None
        id_file.write_text(run_id + "\n")

    def log_scalars(self, values: dict[str, float], step: int) -> None:
        self.run.log(values, step=step)

    def log_image(self, tag: str, image: np.ndarray, step: int) -> None:
        self.run.log({tag: self.wandb.Image(image)}, step=step)

    def finish(self, summary: dict[str, float]) -> None:
        self.run.summary.update(summary)
        self.run.finish()


TRACKERS: dict[str, type[Tracker]] = {"tensorboard": TensorBoardTracker, "wandb": WandbTracker}


def start_trackers(cfg: Config, run_dir: Path) -> list[Tracker]:
    """Start every tracker the config asks for (``train.<name>: true``); if one cannot start,
    those already started are closed and the error is raised."""
    started: list[Tracker] = []
    try:
        for name, cls in TRACKERS.items():
            if getattr(cfg.train, name):
                started.append(cls(cfg, run_dir))
    except BaseException:
        for t in started:
            t.finish({})
        raise
    return started

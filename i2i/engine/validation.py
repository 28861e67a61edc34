"""Validation during training: the pipeline's evaluation's :class:`~i2i.evaluate.Validator` on
``data.val_root`` every ``train.val_every`` steps, and the best-so-far record ``best.pt`` follows.

``train.val_metric`` is checked here, when training starts and before anything is written: the
metric lists belong to :mod:`i2i.evaluate`, above the config layer that reads the key."""

from __future__ import annotations

from typing import Any

from torch import nn

from ..config import Config, ConfigError
from ..evaluate import ValidationError, evaluation
from ..hints import did_you_mean, show


def check_val_metric(cfg: Config, pipeline: type) -> None:
    """A :class:`ConfigError` naming ``train.val_metric`` when the pipeline's evaluation does not measure it."""
    metric = cfg.train.val_metric
    if metric is None:
        return
    names = evaluation(pipeline.evaluation).metric_names(cfg)
    if metric not in names:
        raise ConfigError(f"'train.val_metric' {show(metric)} is not measured for {cfg.pipeline}"
                          f"{did_you_mean(metric[:100], list(names))}; choose one of {', '.join(names)}")


class Validation:
    """``metric`` (``train.val_metric`` or the evaluation's default) and which way is ``better``;
    ``best``: ``{"metric", "value", "step"}``, part of the training state. Rank 0 builds the
    validator (decoding the data once); a missing or empty folder stops training before it
    starts. ``enabled`` is False without ``train.val_every``."""

    def __init__(self, cfg: Config, pipeline: type, nets: dict[str | None, nn.Module], *, build: bool) -> None:
        t = cfg.train
        self.validator = None
        self.metric: str | None = None
        self.best: dict[str, Any] = {"metric": None, "value": None, "step": None}
        if not t.val_every:
            return
        ev = evaluation(pipeline.evaluation)
        self.metric = t.val_metric or ev.default_metric
        self.better = ev.metric_names(cfg)[self.metric]
        self.best["metric"] = self.metric
        if build:
            try:
                self.validator = ev.validator(cfg, cfg.data.val_root, nets, limit=t.val_limit, features=t.val_features)
            except (ValidationError, FileNotFoundError) as e:
                raise ConfigError(f"train.val_every={t.val_every}: {e}") from None

    @property
    def enabled(self) -> bool:
        return self.metric is not None

    def measure(self, nets: dict[str | None, nn.Module], step: int) -> tuple[dict[str, float], bool]:
        """The metrics of ``nets`` and whether they are the best so far (then recorded as such)."""
        values = self.validator(nets)
        v, best = values[self.metric], self.best["value"]
        improved = best is None or (v > best if self.better == "max" else v < best)
        if improved:
            self.best.update(value=v, step=step)
        return values, improved

    def restore(self, best: dict[str, Any] | None) -> None:
        """The best-so-far of a checkpoint; a different metric (or none before) starts its own record."""
        if self.enabled and (best or {}).get("metric") == self.metric:
            self.best = dict(best)

    def gain(self, value: float) -> str:
        """`` (PSNR_Y +1.69 dB over bicubic)``: ``value`` of the metric against the validator's baseline ('' without
        one)."""
        named = self.validator.baseline() if self.validator is not None else None
        if named is None or self.metric not in named[1]:
            return ""
        unit = " dB" if self.metric.startswith("PSNR") else ""
        return f" ({self.metric} {value - named[1][self.metric]:+.2f}{unit} over {named[0]})"

    def line(self, values: dict[str, float], step: int) -> str:
        """``validation at step 200: PSNR 26.1 L1 0.0412 SSIM 0.812 | best PSNR 26.1 (step 200)``, with the
        metric's gain over the validator's baseline where it has one (super-resolution: bicubic)."""
        shown = " ".join(f"{k} {v:.4g}" for k, v in values.items()) + self.gain(values[self.metric])
        b = self.best
        tail = (
            " (new best: checkpoints/best.pt)"
            if b["step"] == step
            else f" | best {b['metric']} {b['value']:.4g} (step {b['step']})"
        )
        return f"validation at step {step}: {shown}{tail}"

    def describe(self, every: int) -> str:
        """The banner line."""
        way = "higher" if self.better == "max" else "lower"
        return (
            f"validation every {every} steps: {self.validator.describe()}; best.pt by {self.metric} ({way} is better)"
        )

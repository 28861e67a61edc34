"""The evaluation framework: :class:`Metric` records, the :class:`Evaluation` a pipeline declares
(``i2i eval``) and the :class:`Validator` training runs every ``train.val_every`` steps.

Each evaluation declares its metric list once (:attr:`Evaluation.metrics`). The validator's
scores, the ``val_*`` records, ``train.val_metric`` checking, ``best.pt`` selection, the printed
table and the results page all read that list, so a new metric is one :class:`Metric` line plus
its function.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import torch

from ..checkpoint import CheckpointError
from ..config import Config
from ..options import Range, Runtime, TestMode, check_fields, option
from ..translator import MIN_TILE, Translator
from .lpips import LPIPS


@dataclass(frozen=True)
class Metric:
    """One number an evaluation reports.

    ``name``: how validation records (``val_<name>``), ``train.val_metric`` and tables call it;
    ``fn``: computes it from what the evaluation passes (paired: ``(pred, target)`` image batches
    in [-1, 1] -> ``(N,)``; super-resolution: ``(pred, target, scale)``; generation: a
    :class:`~i2i.evaluate.generation.Samples`); ``better``: ``"max"`` or ``"min"``; ``fmt``: how
    tables print it; ``key``: its key in ``i2i eval`` results when that differs from ``name``;
    ``label``: a table heading other than ``name``; ``description``: one phrase for the results
    page; ``needs``: inputs that must be present for it to apply (e.g. class labels)."""

    name: str
    fn: Callable[..., Any]
    better: Literal["max", "min"]
    fmt: str = ".4f"
    key: str | None = None
    label: str | None = None
    description: str = ""
    needs: tuple[str, ...] = ()

    @property
    def result_key(self) -> str:
        return self.key or self.name

    @property
    def heading(self) -> str:
        return self.label or self.name

    def explain(self) -> str:
        """``PSNR: dB over RGB (higher is better)`` for the results page."""
        way = "higher" if self.better == "max" else "lower"
        return (
            f"{self.name}: {self.description} ({way} is better)"
            if self.description
            else f"{self.name} ({way} is better)"
        )


class ValidationError(ValueError):
    """The validation data cannot be used (missing, empty, unpaired); the message names it."""


class Validator:
    """What the trainer measures every ``train.val_every`` steps on ``data.val_root``: the
    evaluation's own metrics for the generators inference would use, on held-out data that is
    decoded once (and kept on the CPU) when training starts.

    Built with ``(cfg, root, nets, limit=, features=)`` where ``nets`` maps each direction
    (``None`` for generation) to its inference generator, only read for its shapes; called
    with the same mapping, it returns ``{metric name: value}``. It never changes the nets it is
    given (it measures copies) nor the global random generators, so exact resume holds.
    ``evaluation`` is set by the :class:`Evaluation` that names the validator. Besides its
    metrics it may return ``diagnostics``: values training health reads (logged as ``val_*``
    too), which are not metrics to select by.
    """

    evaluation: ClassVar[Evaluation]
    diagnostics: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def metrics(cls, cfg: Config) -> tuple[Metric, ...]:
        """The evaluation's metrics that apply to ``cfg`` (all of them unless a subclass filters)."""
        return tuple(cls.evaluation.metrics)

    @classmethod
    def metric_names(cls, cfg: Config) -> dict[str, str]:
        """Every metric it reports for ``cfg`` -> ``"max"`` or ``"min"`` (which way is better)."""
        return {m.name: m.better for m in cls.metrics(cfg)}

    def describe(self) -> str:
        """One banner line: the data and the baselines to beat."""
        raise NotImplementedError

    def baseline(self) -> tuple[str, dict[str, float]] | None:
        """The trivial answer the validation lines measure gains against, by name, with its scores
        (super-resolution: bicubic); None where there is none to name."""
        return None

    def __call__(self, nets: dict[str | None, torch.nn.Module]) -> dict[str, float]:
        raise NotImplementedError


@dataclass(frozen=True)
class EvalOptions:
    """The options of ``i2i eval``, declared once: the command line's flags are made from these
    fields, and an evaluation takes those its ``run`` function has parameters for
    (:attr:`Evaluation.options`); a flag given to an evaluation that does not take it is refused."""

    mode: TestMode | None = option(None, help="test-time behaviour (None: the config's test.mode)")
    direction: str | None = option(None, help="a_to_b or b_to_a for two-way models (default: the trained direction)")
    limit: Annotated[int, Range(1, None)] | None = option(None,
                                                          help="evaluate at most this many pairs or images (None: all)")
    tile: Annotated[int, Range(MIN_TILE, None)] | None = option(None, metavar="PIXELS", help="SR: tiled inference")
    n: Annotated[int, Range(1, None)] | None = option(None,
                                                      help="generation: samples, and at most this many real images "
                                                           "(None: 1000)")
    features: str | None = option(None,
                                  help="generation: fid-inception (the standard FID network, comparable with papers; "
                                       "local "
                                       "weights, see 'i2i download weights fid-inception'; the default), inception "
                                       "(torchvision's ImageNet weights), pixels, or PATH to an ONNX feature model "
                                       "(.pt2 / "
                                       "TorchScript are refused: they can run code when opened)")
    classifier: str | None = option(None, metavar="ONNX",
                                    help="generation: an ONNX classifier of your domain ((N, C, H, W) in "
                                         "[-1, 1] -> (N, K) logits, classes in the order of the class folders) "
                                         "for class coverage and, for conditional models, label accuracy")
    lpips: Literal["auto", "alex", "vgg", "none"] | None = option(None,
                                                                  help="paired and SR: LPIPS to the target (paired: "
                                                                       "and to "
                                                                      "the input) with this backbone (local "
                                                                      "weights: 'i2i "
                                                                      "download weights lpips-alex'); auto (the "
                                                                      "default): "
                                                                      "alex when its weights are there")

    classical: Literal["nlm", "none"] | None = option(None,
                                                      help="paired: one more baseline row, a classical method at "
                                                           "its best strength on these pairs: nlm (OpenCV's "
                                                           "non-local-means denoiser, for restoration)")
    runtime: Runtime | None = option(None, help="paired and SR: what runs the generator (torch, the default; compile; "
                                                "onnxruntime or openvino on the CPU)")

    def __post_init__(self) -> None:
        check_fields(self)

    def given(self) -> dict[str, Any]:
        """The options set (not None), by name."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) is not None}


@dataclass
class Evaluation:
    """What ``i2i eval`` runs for a pipeline: ``run(checkpoint, data, **options)`` returning a
    result dict (the :class:`EvalOptions` it takes are its parameters: :attr:`options`; all take
    ``out_dir`` and ``device``), ``report(result)``: the text printed, ``validator``: what training
    measures every ``train.val_every`` steps (see :class:`Validator`), ``metrics``: the one metric
    list all of them read, and ``default_metric``: what ``best.pt`` follows unless
    ``train.val_metric`` says."""

    name: str
    description: str
    run: Callable[..., dict[str, Any]]
    report: Callable[[dict[str, Any]], str]
    validator: type[Validator]
    metrics: tuple[Metric, ...]
    default_metric: str

    def __post_init__(self) -> None:
        self.validator.evaluation = self

    @property
    def options(self) -> tuple[str, ...]:
        """The :class:`EvalOptions` this evaluation takes: those ``run`` has a parameter for."""
        params = inspect.signature(self.run).parameters
        return tuple(f.name for f in dataclasses.fields(EvalOptions) if f.name in params)

    def metric_names(self, cfg: Config) -> dict[str, str]:
        """Every metric validation reports for ``cfg`` -> which way is better."""
        return self.validator.metric_names(cfg)

    def better(self) -> dict[str, str]:
        """Result key -> ``"max"`` / ``"min"``: the results page marks each column's best."""
        return {m.result_key: m.better for m in self.metrics}

    def formats(self) -> dict[str, str]:
        """Result key and name -> format spec: the results page prints each metric as the tables do."""
        return {**{m.name: m.fmt for m in self.metrics}, **{m.result_key: m.fmt for m in self.metrics}}

    def __call__(self, checkpoint: str | Path, data: str | Path, **options: Any) -> dict[str, Any]:
        unknown = sorted(set(options) - {*self.options, "out_dir", "device"})
        if unknown:
            raise ValueError(f"{', '.join(unknown)} do not apply to {self.description}; its options: "
                             f"{', '.join(self.options)}")
        return self.run(checkpoint, data, **options)


# ----------------------------------------------------------------------------- shared helpers
def limited(available: int, limit: int | None) -> int:
    """How many of ``available`` items to evaluate: all, or at most ``limit``."""
    return available if limit is None else min(limit, available)


def quantize(x: torch.Tensor) -> torch.Tensor:
    """Round [-1, 1] values to the 8-bit levels an image file would hold."""
    return torch.round((x.clamp(-1, 1) + 1) * 127.5) / 127.5 - 1


def mean_scores(scores: list[dict[str, float]]) -> dict[str, float]:
    """Per-key means of equally keyed score dicts."""
    return {k: sum(s[k] for s in scores) / len(scores) for k in scores[0]}


def format_values(values: dict[str, float]) -> str:
    """``PSNR 26.1 L1 0.0412`` for banners and log lines."""
    return " ".join(f"{k} {v:.4g}" for k, v in values.items())


def format_table(rows: list[dict[str, Any]], metrics: Iterable[Metric], first: str = "model") -> str:
    """A plain-text table: one line per row dict (``first`` names it), one column per metric
    (read by its result key, printed with its format)."""
    metrics = [m for m in metrics if any(m.result_key in r for r in rows)]
    width = max([len(first), *(len(str(r[first])) for r in rows)])
    cols = [max(len(m.heading), 8) for m in metrics]
    lines = [f"{first:<{width}} " + " ".join(f"{m.heading:>{w}}" for m, w in zip(metrics, cols))]
    for r in rows:
        cells = [format(r[m.result_key], m.fmt) if m.result_key in r else "-" for m in metrics]
        lines.append(f"{r[first]!s:<{width}} " + " ".join(f"{c:>{w}}" for c, w in zip(cells, cols)))
    return "\n".join(lines)


def validation_lpips(cfg: Config) -> LPIPS | None:
    """The LPIPS network ``train.val_lpips`` asks for (None when unset); missing or damaged
    weights are a :class:`ValidationError` naming the key."""
    if not cfg.train.val_lpips:
        return None
    try:
        return LPIPS(cfg.train.val_lpips)
    except (FileNotFoundError, CheckpointError) as e:
        raise ValidationError(f"train.val_lpips: {cfg.train.val_lpips}: {e}") from None


def device_of(net: torch.nn.Module) -> torch.device:
    return next(iter(net.parameters())).device


def inference_copy(net: torch.nn.Module, cfg: Config, direction: str) -> Translator:
    """A translator around a copy of ``net`` (the trained net is never switched to eval mode)."""
    return Translator(copy.deepcopy(net), cfg, direction=direction, mode=cfg.test.mode, device=device_of(net))

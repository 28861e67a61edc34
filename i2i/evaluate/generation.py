"""Generation evaluation: FID / KID / IS of samples against real images and the mode-collapse
diagnostics (diversity, class diversity, class coverage and label accuracy by a user's ONNX
classifier), beside the untrained generator and the mean image, with a results page; and its
validator for training.

The metrics are :data:`GENERATION.metrics <GENERATION>`: functions of a :class:`Samples` record
(features of the samples and of the real images, plus what a metric ``needs``).
"""

from __future__ import annotations

import copy
import json
import math
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from .. import metrics, report
from ..config import Config
from ..data.base import DataError
from ..data.generation import GenerationDataConfig, ImageDataset
from ..generate import Generator
from ..loading import untrained_generator
from .base import Evaluation, Metric, ValidationError, Validator, device_of, limited, quantize
from .features import extract_features, extract_features_and_logits, feature_extractor, load_classifier

INCEPTION_FEATURES = ("fid-inception", "inception")
"""Feature networks with class logits, so the Inception Score can be measured."""
DIAGNOSTICS = ("diversity", "class_diversity", "coverage", "label_accuracy")


@dataclass
class Samples:
    """What generation metrics read. ``features`` ``(N, D)`` of the (8-bit) samples and
    ``real_features`` ``(M, D)`` of the real images; ``seed`` for KID's subsets; ``logits`` the
    feature network's class logits of the samples (Inception networks); ``labels`` ``(N,)`` the
    classes the samples were drawn for (conditional models); ``predicted`` / ``real_predicted``
    the user classifier's classes of the samples and of the real images, of ``num_classes``."""

    features: torch.Tensor
    real_features: torch.Tensor
    seed: int = 0
    logits: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    predicted: torch.Tensor | None = None
    real_predicted: torch.Tensor | None = None
    num_classes: int = 0


def samples_of(images: torch.Tensor, labels: torch.Tensor | None, extractor: torch.nn.Module,
               real_features: torch.Tensor, *,
               classifier: torch.nn.Module | None = None, real_logits: torch.Tensor | None = None,
               device: torch.device | str = "cpu", seed: int = 0) -> Samples:
    """The :class:`Samples` of ``(N, C, S, S)`` images in [-1, 1] (and the classes they were
    drawn for): features and logits by ``extractor``, classes by ``classifier`` against the
    real images' ``(M, K)`` classifier logits ``real_logits`` (computed once by the caller)."""
    features, logits = extract_features_and_logits(extractor, images, device)
    s = Samples(features, real_features, seed, logits, labels.cpu() if labels is not None else None)
    if classifier is not None:
        if real_logits is None:
            raise ValueError("class coverage needs the classifier's logits of the real images (real_logits)")
        s.predicted = extract_features(classifier, images, device).argmax(1)
        s.real_predicted, s.num_classes = real_logits.argmax(1), real_logits.shape[1]
    return s


def score(s: Samples, names: tuple[str, ...] | None = None) -> dict[str, float]:
    """Every generation metric (or those in ``names``) whose inputs ``s`` has, by metric name."""
    out = {}
    with warnings.catch_warnings():  # identical samples (the mean image, a collapse): a singular covariance
        warnings.simplefilter("ignore")
        for m in GENERATION.metrics:
            if (names is None or m.name in names) and all(getattr(s, need) is not None for need in m.needs):
                out[m.name] = float(m.fn(s))
    return out


def keyed(scores: dict[str, float]) -> dict[str, float]:
    """Scores by metric name -> by result key (``FID`` -> ``fid``), as ``i2i eval`` reports them."""
    return {m.result_key: scores[m.name] for m in GENERATION.metrics if m.name in scores}


@torch.inference_mode()
def generation_diagnostics(fake: torch.Tensor, fake_features: torch.Tensor, real_features: torch.Tensor, *,
                           classifier: torch.nn.Module | None = None, real_logits: torch.Tensor | None = None,
                           fake_labels: torch.Tensor | None = None, device: torch.device | str = "cpu") -> dict[str,
                                                                                                                float]:
    """Signs of mode collapse in ``(N, C, S, S)`` samples ``fake`` against real images:
    ``diversity`` (mean pairwise feature distance of the samples over the real images'; about
    1 is healthy, toward 0 is collapse, see :func:`i2i.metrics.diversity`); for a conditional
    model (``fake_labels``, the ``(N,)`` classes the samples were drawn for) ``class_diversity``,
    the same within each class (one image per class scores about 0 there, however varied the
    classes); with a ``classifier`` (:func:`~i2i.evaluate.features.load_classifier`) and its
    ``(M, K)`` logits of the real images (``real_logits``), ``coverage`` (share of the classes
    found in the real images that the samples cover) and, for a conditional model,
    ``label_accuracy``: the share of samples the classifier puts in the class they were drawn for."""
    s = Samples(fake_features, real_features, labels=fake_labels.cpu() if fake_labels is not None else None)
    if classifier is not None:
        if real_logits is None:
            raise ValueError("class coverage needs the classifier's logits of the real images (real_logits)")
        s.predicted = extract_features(classifier, fake, device).argmax(1)
        s.real_predicted, s.num_classes = real_logits.argmax(1), real_logits.shape[1]
    return score(s, DIAGNOSTICS)


def folder_of(data: GenerationDataConfig) -> GenerationDataConfig:
    """The training data's section for a folder of real images (their size and fit; no torchvision dataset)."""
    return replace(data, dataset="folder", download=False)


def evaluate_generation(
    checkpoint: str | Path,
    real_root: str | Path,
    *,
    n: int = 1000,
    features: str = "fid-inception",
    classifier: str | None = None,
    seed: int = 0,
    device: str = "auto",
    out_dir: str | Path | None = None,
) -> dict[str, Any]:
    """The generation metrics of ``n`` samples of a generation checkpoint against up to ``n`` real
    images from ``real_root`` (an image folder, resized like the training data): FID and KID;
    with an Inception network the Inception Score of the samples (and of the real images, the
    reference point); the mode-collapse diagnostics (``diversity``; for conditional models
    ``class_diversity``; with an ONNX ``classifier``, ``coverage`` and ``label_accuracy``).
    Samples are rounded to 8 bits first, as saved files would be. The same numbers for two
    baselines go in ``models``: the architecture ``untrained`` (the run's initial weights) and
    the ``mean image`` (every sample the mean real image: the strongest constant, and a fully
    collapsed generator). Returns and, with ``out_dir``, saves the trained model's scores by
    result key (``fid``, ``kid``, ``is``, ``diversity``, ...) plus ``is_std``, ``is_real``,
    ``models``, ``n_fake``, ``n_real``, ``features``, ``feature_network``, ``page``; ``out_dir``
    also gets ``index.html``: the table, the run's curves, and sample grids beside real images."""
    gen = Generator.from_checkpoint(checkpoint, device=device)
    extractor = feature_extractor(features).to(gen.device)
    clf = load_classifier(classifier) if classifier else None
    cfg = gen.cfg
    real_ds = ImageDataset(real_root, folder_of(cfg.data), channels=gen.net.out_channels, train=False)
    idx = torch.randperm(len(real_ds), generator=torch.Generator().manual_seed(seed))[:n].tolist()
    real = torch.stack([real_ds[i]["image"] for i in idx])
    real_features, real_inception_logits = extract_features_and_logits(extractor, real, gen.device)
    real_logits = extract_features(clf, real, gen.device) if clf is not None else None

    def scores_of(fake: torch.Tensor, labels: torch.Tensor | None) -> tuple[dict[str, float], Samples]:
        s = samples_of(fake, labels, extractor, real_features, classifier=clf, real_logits=real_logits,
                       device=gen.device, seed=seed)
        return keyed(score(s)), s

    fake, labels = gen.sample_labelled(n, seed=seed)
    fake = quantize(fake)
    trained, s = scores_of(fake, labels)
    result: dict[str, Any] = dict(trained)
    if s.logits is not None:
        result["is_std"] = metrics.inception_score(s.logits)[1]
        result["is_real"] = metrics.inception_score(real_inception_logits)[0]
    untrained = Generator(untrained_generator(cfg)[0], cfg, device=gen.device, weights="untrained")
    base_fake, base_labels = untrained.sample_labelled(n, seed=seed)
    base_fake = quantize(base_fake)
    mean_image = quantize(real.mean(0, keepdim=True).expand(n, -1, -1, -1).contiguous())
    models = [{"model": "trained", **trained}, {"model": "untrained", **scores_of(base_fake, base_labels)[0]},
              {"model": "mean image", **scores_of(mean_image, labels)[0]}]
    result.update({"models": models, "n_fake": n, "n_real": len(idx), "features": features,
                   "feature_network": extractor.description, "checkpoint": str(checkpoint), "weights": gen.weights,
                   "page": None})
    if out_dir is not None:
        result["page"] = str(_generation_page(Path(out_dir), result, cfg, fake, labels, real, base_fake, checkpoint))
        (Path(out_dir) / "metrics.json").write_text(json.dumps(result, indent=2))
    return result


def _grid(out: Path, name: str, x: torch.Tensor, labels: torch.Tensor | None = None) -> Path:
    """An 8 x 8 grid of ``x`` (a conditional model's samples: one class per column)."""
    if labels is None:
        x = x[:64]
        columns = [x[c::8] for c in range(min(8, x.shape[0]))]
        columns = [c[: columns[-1].shape[0]] for c in columns]
    else:
        per_class = [x[labels == c] for c in range(int(labels.max()) + 1)][:8]
        rows = min(8, *(len(c) for c in per_class))
        columns = [c[:rows] for c in per_class if rows]
    return report.save_grid(out / "images" / f"{name}.png", columns)


def _generation_page(out: Path, r: dict[str, Any], cfg: Config, fake: torch.Tensor, labels: torch.Tensor | None,
                     real: torch.Tensor, untrained: torch.Tensor, checkpoint: str | Path) -> Path:
    """The results page of a generation model: the metric table with its baselines, the run's
    curves (losses, and validation FID / diversity / coverage), and 8x8 grids of samples,
    untrained samples and real images (a conditional model: one class per column)."""
    rows = [{"name": "samples (trained)" + (", one class per column" if labels is not None else ""),
             "images": [_grid(out, "samples", fake, labels)], "metrics": {}},
            {"name": "samples (untrained)", "images": [_grid(out, "untrained", untrained)], "metrics": {}},
            {"name": "real images", "images": [_grid(out, "real", real)], "metrics": {}}]
    is_text = f" Inception Score of the real images {r['is_real']:.3f}." if "is_real" in r else ""
    return report.write_results_page(
        out, title=f"{cfg.name}: {cfg.pipeline} samples vs {r['n_real']} real images", columns=["8 x 8 grid"],
        rows=rows,
        summary=r["models"], better=GENERATION.better(), formats=GENERATION.formats(),
        records=report.read_metrics(Path(checkpoint).resolve().parent.parent / "metrics.jsonl"),
        notes=f"checkpoint {checkpoint} ({r['weights']} weights); {r['n_fake']} samples on {r['feature_network']}. "
              + "; ".join(m.explain() for m in GENERATION.metrics) + ". "
              "Baselines: 'untrained' is the run's initial generator; 'mean image' draws the mean real image every "
              "time (the "
              f"best constant: a fully collapsed generator).{is_text}")


def _generation_report(r: dict[str, Any]) -> str:
    shown = [m for m in GENERATION.metrics if m.result_key in r]
    quality = "  ".join(f"{m.name} {format(r[m.result_key], m.fmt)}" for m in shown if m.name not in DIAGNOSTICS)
    if "is_std" in r:
        quality += f" ± {r['is_std']:.3f} (real images: {r['is_real']:.3f})"
    diagnostics = "  ".join(f"{m.name} {format(r[m.result_key], m.fmt)}" for m in shown if m.name in DIAGNOSTICS)
    alike = (
        " (nan: the real images are all alike, so no diversity ratio means anything)"
        if math.isnan(r["diversity"])
        else ""
    )
    return (f"{quality}  ({r['n_fake']} samples vs {r['n_real']} real images, {r['weights']} weights)"
            f"\n{diagnostics} (diversity 1: as varied as the real images; toward 0: mode collapse){alike}"
            f"\nfeatures: {r['feature_network']}")


class GenerationValidator(Validator):
    """The generation metrics of as many samples as real images (up to ``limit``) from
    ``val_root``, on ``train.val_features`` (``fid-inception``, ``inception``, ``pixels`` or a
    feature model file; see :func:`~i2i.evaluate.features.feature_extractor`); the Inception
    Score with an Inception network; class metrics for conditional models and with
    ``train.val_classifier``; ``memorisation`` (:func:`i2i.metrics.memorisation`, against up to
    twice as many training images, when the training folder is not ``val_root``). The latents
    are the same at every validation (from ``cfg.seed``); the real features are computed once."""

    diagnostics = ("memorisation",)

    @classmethod
    def metrics(cls, cfg: Config) -> tuple[Metric, ...]:
        present = {"labels"} if cfg.model.generator.arg("num_classes") else set()
        if cfg.train.val_features in INCEPTION_FEATURES:
            present.add("logits")
        if cfg.train.val_classifier:
            present.add("predicted")
        return tuple(m for m in cls.evaluation.metrics if set(m.needs) <= present)

    def __init__(self, cfg: Config, root: str | Path, nets: dict[str | None, torch.nn.Module], *,
                 limit: int | None = None,
                 features: str = "fid-inception") -> None:
        net = nets[None]
        self.cfg, self.root, self.features = cfg, Path(root), features
        self.device = device_of(net)
        self.extractor = feature_extractor(features, option="train.val_features").to(self.device)
        try:
            ds = ImageDataset(root, folder_of(cfg.data), channels=net.out_channels, train=False)
        except DataError as e:
            raise ValidationError(f"data.val_root: {e}") from None
        n = limited(len(ds), limit)
        if n < 2:
            raise ValidationError(f"data.val_root '{root}': FID needs at least 2 real images, found {n}")
        self.classifier = None
        if cfg.train.val_classifier:
            try:
                self.classifier = load_classifier(cfg.train.val_classifier, option="train.val_classifier")
            except (ValueError, ImportError) as e:
                raise ValidationError(str(e)) from None
        real = torch.stack([ds[i]["image"] for i in range(n)])
        self.real = extract_features(self.extractor, real, self.device)
        self.real_logits = extract_features(self.classifier, real, self.device) if self.classifier is not None else None
        self.n = n
        self.train_features = self._training_features(cfg, net.out_channels, 2 * n)

    def _training_features(self, cfg: Config, channels: int, most: int) -> torch.Tensor | None:
        """Features of up to ``most`` training images spread over the sorted list, for
        ``memorisation``: only for a training folder other than ``val_root`` (else no image is
        held out)."""
        d = cfg.data
        if (
            d.dataset != "folder"
            or not d.root
            or Path(d.root).expanduser().resolve() == self.root.expanduser().resolve()
        ):
            return None
        try:
            ds = ImageDataset(d.root, folder_of(d), channels=channels, train=False)
        except DataError:
            return None
        idx = torch.linspace(0, len(ds) - 1, min(len(ds), most)).round().long().unique().tolist()
        return extract_features(self.extractor, torch.stack([ds[i]["image"] for i in idx]), self.device)

    def describe(self) -> str:
        extra = f"; classes by {self.classifier.description}" if self.classifier is not None else ""
        on = self.extractor.description
        return f"{self.n} real images in {self.root} vs {self.n} samples, FID / KID / diversity on {on}{extra}"

    def __call__(self, nets: dict[str | None, torch.nn.Module]) -> dict[str, float]:
        gen = Generator(copy.deepcopy(nets[None]), self.cfg, device=self.device)
        images, labels = gen.sample_labelled(self.n, seed=self.cfg.seed)
        s = samples_of(quantize(images), labels, self.extractor, self.real, classifier=self.classifier,
                       real_logits=self.real_logits, device=self.device, seed=self.cfg.seed)
        out = score(s)
        if self.train_features is not None:  # for training health: not a metric of its own
            out["memorisation"] = metrics.memorisation(s.features, self.real, self.train_features)
        return out


GENERATION = Evaluation(
    "generation", "generation (FID / KID / diversity of samples against real images)",
    evaluate_generation, _generation_report, GenerationValidator,
    metrics=(
        Metric("FID", lambda s: metrics.frechet_distance(s.features, s.real_features), "min", ".3f", key="fid",
               description="Fréchet distance to the real images' features"),
        Metric("KID", lambda s: metrics.kernel_distance(s.features, s.real_features, seed=s.seed), "min", ".5f",
               key="kid",
               description="kernel distance to the real images' features"),
        Metric("IS", lambda s: metrics.inception_score(s.logits)[0], "max", ".3f", key="is", needs=("logits",),
               description="Inception Score of the samples"),
        Metric("diversity", lambda s: metrics.diversity(s.features, s.real_features), "max", ".3f",
               description="mean pairwise feature distance of the samples over the real images' (toward 0: mode "
                           "collapse)"),
        Metric("class_diversity", lambda s: metrics.class_diversity(s.features, s.labels, s.real_features), "max",
               ".3f",
               needs=("labels",), description="the same within each class (toward 0: one image per class)"),
        Metric("coverage", lambda s: metrics.class_coverage(s.predicted, s.real_predicted, s.num_classes), "max", ".3f",
               needs=("predicted",),
               description="share of the real images' classes (by the classifier) the samples cover"),
        Metric("label_accuracy", lambda s: float((s.predicted == s.labels).double().mean()), "max", ".3f",
               needs=("predicted", "labels"), description="share of samples drawn in the class asked for"),
    ),
    default_metric="FID",
)

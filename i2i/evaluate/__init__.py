"""Evaluations a pipeline can declare (``Pipeline.evaluation``, a name in :data:`EVALUATIONS`),
each with its one metric list:

- ``paired`` (:mod:`.paired`): a translator against targets, beside untrained, identity and
  mean-colour baselines, as numbers and as an HTML results page;
- ``super_resolution`` (:mod:`.super_resolution`): PSNR / SSIM of the model and of bicubic,
  Y and RGB conventions;
- ``generation`` (:mod:`.generation`): FID / KID / IS and mode-collapse diagnostics of samples
  against real images, on the feature networks of :mod:`.features`.

The framework (:class:`Metric`, :class:`Evaluation`, :class:`Validator`) is in :mod:`.base`.
"""

from .base import EvalOptions, Evaluation, Metric, ValidationError, Validator, format_table, quantize
from .features import (
    FEATURES,
    FID_INCEPTION_FILE,
    FID_INCEPTION_URL,
    INCEPTION_FILE,
    FIDInception,
    extract_features,
    extract_features_and_logits,
    feature_extractor,
    load_classifier,
)
from .generation import GENERATION, GenerationValidator, Samples, evaluate_generation, generation_diagnostics
from .paired import PAIRED, PairedValidator, evaluate_paired, paired_dataset
from .super_resolution import SUPER_RESOLUTION, SuperResolutionValidator, evaluate_sr

EVALUATIONS: dict[str, Evaluation] = {"paired": PAIRED, "super_resolution": SUPER_RESOLUTION, "generation": GENERATION}
"""The evaluation a pipeline declares by name (``Pipeline.evaluation``) -> the evaluation itself."""


def evaluation(name: str) -> Evaluation:
    """The :class:`Evaluation` a pipeline declares by ``name`` (a ``ValueError`` naming the known ones otherwise)."""
    if name not in EVALUATIONS:
        raise ValueError(f"unknown evaluation {name!r}; known: {', '.join(EVALUATIONS)}")
    return EVALUATIONS[name]


__all__ = [
    "EVALUATIONS",
    "FEATURES",
    "FID_INCEPTION_FILE",
    "FID_INCEPTION_URL",
    "GENERATION",
    "INCEPTION_FILE",
    "PAIRED",
    "SUPER_RESOLUTION",
    "EvalOptions",
    "Evaluation",
    "FIDInception",
    "GenerationValidator",
    "Metric",
    "PairedValidator",
    "Samples",
    "SuperResolutionValidator",
    "ValidationError",
    "Validator",
    "evaluate_generation",
    "evaluate_paired",
    "evaluate_sr",
    "evaluation",
    "extract_features",
    "extract_features_and_logits",
    "feature_extractor",
    "format_table",
    "generation_diagnostics",
    "load_classifier",
    "paired_dataset",
    "quantize",
]

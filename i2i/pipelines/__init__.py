"""Training pipelines: one file per method; they never import each other."""

from .base import Pipeline, StepContext

__all__ = ["Pipeline", "StepContext"]

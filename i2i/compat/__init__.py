"""Loaders for checkpoints published by other projects."""

from .reference import ImportErrorDetail, import_reference_generator, inspect_reference_state

__all__ = ["ImportErrorDetail", "import_reference_generator", "inspect_reference_state"]

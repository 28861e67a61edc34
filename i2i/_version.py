"""The package version (its own module, so no i2i module imports the package root for it)."""

__version__ = "0.1.0"

"""Data: image I/O, datasets, transforms."""

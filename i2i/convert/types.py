"""The one thing conversion needs of a model, as a type: a function from a batch of same-size
arrays to their translations."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

TranslateArrays = Callable[[list[np.ndarray]], list[np.ndarray]]
"""Same-size ``(H, W[, C])`` uint8/uint16 arrays (RGB order; videos give 3-channel frames) in, their
translations out, as many and in order (e.g. :meth:`i2i.Translator.translate_arrays`)."""

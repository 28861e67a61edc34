"""argparse types shared by the commands."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def int_at_least(low: int) -> Callable[[str], int]:
    """argparse type: an integer >= ``low``; the parser names the flag when it is not."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} must be {low} or more")
        return value

    return parse


positive_int = int_at_least(1)
positive_int.__doc__ = "argparse type: an integer >= 1 (``--n 0`` is refused by the parser, with the flag named)."
non_negative_int = int_at_least(0)
non_negative_int.__doc__ = "argparse type: an integer >= 0."

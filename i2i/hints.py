"""Small helpers for error messages that teach (no torch, no nets: cheap to import)."""

from __future__ import annotations

import difflib
import reprlib
from typing import Any


def did_you_mean(value: str, choices: list[str] | tuple[str, ...]) -> str:
    """``" (did you mean 'x'?)"`` when ``value`` is close to one of ``choices``, else ``""``."""
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def first_line(error: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message, shortened (``""`` for an empty message)."""
    lines = str(error).splitlines()
    return lines[0][:limit] if lines else ""


class _Short(reprlib.Repr):
    def repr_int(self, x: int, level: int) -> str:
        return number(x)


def number(x: int | float) -> str:
    """A number for a message: huge integers (which Python will not even print past 4,300 digits)
    as their size in digits."""
    if isinstance(x, int) and not isinstance(x, bool) and x.bit_length() > 200:
        return f"a {int(x.bit_length() * 0.30103) + 1}-digit integer"
    return repr(x)


def show(value: Any) -> str:
    """A short repr of a value for messages (a huge or deeply nested value is cut)."""
    r = _Short()
    r.maxstring, r.maxother, r.maxlist, r.maxdict, r.maxlevel = 60, 60, 6, 6, 3
    return r.repr(value)

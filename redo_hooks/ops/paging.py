"""Page cursors: ``<score>:<key>``, the last row's position in a sorted index."""

from __future__ import annotations

import math

from ..errors import ConfigurationError


def split_cursor(cursor: str) -> tuple[float, str]:
    """The score and key of a cursor a page gave; ``ConfigurationError`` for anything else.

    Cursors come back from a browser's address bar or a script: a mangled one
    is the caller's mistake, said as such, never an error of ours.
    """
    at, _, key = cursor.partition(":")
    try:
        score = float(at)
    except ValueError:
        score = math.nan
    if math.isnan(score):
        raise ConfigurationError(f"not a cursor this list gave: {cursor[:80]!r}")
    return score, key

"""The one backoff formula: exponential, capped, with "equal jitter".

Handler retries, the Redo API client and the worker's reconnects all wait
this long before their next attempt, so they are tuned and reasoned about
once. Pure: no I/O.
"""

from __future__ import annotations

import random


def exponential(attempt: int, base: float, cap: float, *, jitter: bool = True) -> float:
    """Seconds to wait before attempt ``attempt + 1`` (``attempt`` is 1-based).

    ``min(cap, base * 2 ** (attempt - 1))``; with ``jitter``, a random point in
    its upper half, so that many clients failing together do not retry
    together, yet none retries sooner than half the nominal wait.
    """
    if base <= 0:
        return 0.0
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    if not jitter:
        return float(ceiling)
    return float(ceiling / 2 + random.uniform(0, ceiling / 2))

"""Aligned plain-text tables for the commands' output."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime


def cell(value: object, width: int | None = None) -> str:
    """``value`` on one line: the first line of a multi-line text, cut to ``width``."""
    text = "-" if value is None else str(value)
    lines = text.strip().splitlines() or [""]
    first = lines[0].replace("\t", " ")
    if len(lines) > 1:
        first += " …"
    if width is not None and len(first) > width:
        first = first[: max(width - 1, 0)] + "…"
    return first


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    widths: Sequence[int | None] | None = None,
) -> str:
    """Columns padded to their widest cell; a multi-line cell shows its first line.

    ``widths`` caps columns (``None``: no cap); the last column is never padded.
    """
    cells = [
        [cell(v, (widths or [None] * len(headers))[i]) for i, v in enumerate(row)] for row in rows
    ]
    sizes = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    out = []
    for row in [list(headers), *cells]:
        padded = [v.ljust(sizes[i]) for i, v in enumerate(row[:-1])] + [row[-1]]
        out.append("  ".join(padded).rstrip())
    return "\n".join(out)


def local_time(epoch: float) -> str:
    """``epoch`` as this machine's local time, with its UTC offset."""
    return datetime.fromtimestamp(epoch).astimezone().strftime("%Y-%m-%d %H:%M:%S %z")

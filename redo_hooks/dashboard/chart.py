"""The overview's per-minute chart, as bar geometry for an inline SVG (no script).

Pure: numbers in, rectangles out.
"""

from __future__ import annotations

from dataclasses import dataclass

WIDTH, HEIGHT = 600, 120


@dataclass(frozen=True, slots=True)
class Bar:
    """One minute: its received and failed bars (x, width, heights in px)."""

    x: float
    width: float
    received: int
    failed: int
    received_h: float
    failed_h: float


@dataclass(frozen=True, slots=True)
class Chart:
    """Bars of a per-minute series and the figure they are scaled to."""

    bars: list[Bar]
    peak: int
    width: int = WIDTH
    height: int = HEIGHT


def bars(received: list[int], failed: list[int]) -> Chart:
    """Bars for ``received`` and ``failed`` per minute, scaled to the busiest minute."""
    peak = max([1, *received, *failed])
    step = WIDTH / max(1, len(received))
    out = [
        Bar(
            x=round(n * step, 2),
            width=round(max(1.0, step - 1), 2),
            received=r,
            failed=f,
            received_h=round(HEIGHT * r / peak, 2),
            failed_h=round(HEIGHT * f / peak, 2),
        )
        for n, (r, f) in enumerate(zip(received, failed, strict=True))
    ]
    return Chart(out, peak)

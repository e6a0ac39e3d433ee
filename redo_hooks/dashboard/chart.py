"""The overview's per-minute chart, as bar geometry for an inline SVG (no script).

Pure: numbers in, rectangles out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

WIDTH, HEIGHT = 600, 120
#: Room under the bars for the time axis' labels.
AXIS = 16
#: Minutes between two labelled ticks.
TICK_MINUTES = 10


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
class Tick:
    """A labelled minute on the time axis (x in px, the minute as ``HH:MM`` UTC)."""

    x: float
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    """Bars of a per-minute series and the figure they are scaled to."""

    bars: list[Bar]
    peak: int
    width: int = WIDTH
    height: int = HEIGHT
    #: The time axis, every ``TICK_MINUTES`` on the clock.
    ticks: list[Tick] = field(default_factory=list)
    axis: int = AXIS


def bars(received: list[int], failed: list[int], start: float | None = None) -> Chart:
    """Bars for ``received`` and ``failed`` per minute, scaled to the busiest minute.

    ``start``: the epoch second of the first minute, for the time axis.
    """
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
    ticks = []
    if start is not None:
        for n in range(len(received)):
            minute = int(start) // 60 + n
            if minute % TICK_MINUTES == 0:
                at = datetime.fromtimestamp(minute * 60, UTC).strftime("%H:%M")
                ticks.append(Tick(round(n * step + step / 2, 2), at))
    return Chart(out, peak, ticks=ticks)

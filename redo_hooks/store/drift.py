"""Schema-drift findings in Redis: recorded by receivers, read by status and /metrics.

A finding is stored as ``kind|path|value`` (``field|return.items[].newField|``
or ``enum|return.status|teleported``), with its count, first and last seen
times and one return id it was seen in; at most ``drift_max_findings`` are
tracked, the rest only counted (``drift_record.lua``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .keys import Keys
from .replies import text

PARTS = ("count", "first", "last", "sample")


@dataclass(frozen=True, slots=True)
class DriftFinding:
    """One thing Redo sent that the models do not know, and how often."""

    kind: str
    path: str
    value: str
    count: int
    first_seen: float
    last_seen: float
    sample_return: str

    def to_dict(self) -> dict[str, Any]:
        """As plain data (``status --json``)."""
        return {name: getattr(self, name) for name in self.__slots__}


def encode(finding: Sequence[str]) -> str:
    """``(kind, path, value)`` as stored."""
    return "|".join(finding)


def split(stored: Any) -> tuple[str, str, str]:
    """A stored finding (``str`` or ``bytes``) back as ``(kind, path, value)``."""
    kind, path, value = [*text(stored).split("|", 2), "", ""][:3]
    return kind, path, value


def record_args(
    keys: Keys, findings: Sequence[Sequence[str]], subject: str, now: float, cap: int
) -> tuple[list[str], list[Any]]:
    """``(keys, args)`` of ``drift_record.lua`` for one body's findings."""
    names = [keys.drift(part) for part in (*PARTS, "untracked")]
    return names, [now, cap, subject, *(encode(f) for f in findings)]


def decode(replies: Sequence[Any]) -> list[DriftFinding]:
    """``HGETALL`` of count, first, last and sample (in that order) as findings, most seen first."""
    count, first, last, sample = ({text(k): v for k, v in reply.items()} for reply in replies)
    found = []
    for name, seen in count.items():
        kind, path, value = split(name)
        found.append(
            DriftFinding(
                kind=kind,
                path=path,
                value=value,
                count=int(seen),
                first_seen=float(first.get(name, 0)),
                last_seen=float(last.get(name, 0)),
                sample_return=text(sample.get(name, b"")),
            )
        )
    return sorted(found, key=lambda f: (-f.count, f.kind, f.path, f.value))

"""The Lua scripts that make each multi-step Redis update atomic.

Each script's ``KEYS``/``ARGV`` are documented at the top of its file in
``redo_hooks/store/lua/``. Scripts are registered per client; redis-py sends
``EVALSHA`` and falls back to ``EVAL`` when the server does not know them.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

NAMES = (
    "ingest",
    "job_claim",
    "lane_next",
    "lane_fail",
    "lane_dead",
    "lanes_transfer",
    "dead_drop",
    "lane_park",
    "lane_unpark",
    "permit_take",
    "parked_index",
    "lanes_orphaned",
    "drift_record",
    "jobs_promote",
    "dead_forget",
    "issue_index",
)


INCLUDE = "-- @include "


@cache
def source(name: str) -> str:
    """The Lua source of script ``name``, with its ``-- @include <part>`` lines expanded.

    A part is ``lua/_<part>.lua``: Lua helpers several scripts share.
    """
    if name not in NAMES:
        raise KeyError(name)
    lines = []
    for line in _read(name).splitlines():
        if line.startswith(INCLUDE):
            lines.append(_read("_" + line[len(INCLUDE) :].strip()))
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


def _read(name: str) -> str:
    return (files("redo_hooks.store") / "lua" / f"{name}.lua").read_text()

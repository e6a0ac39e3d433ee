"""The chaos benchmark, briefly: every fault at once; no acknowledged event lost or reordered.

With a poison pill (dead-lettered alone) and a handler whose threads run
past its timeout (never two attempts of a return at once).
"""

from __future__ import annotations

import pytest

from benchmarks import chaos
from redo_hooks.dev.redis_server import free_port

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("chaos")]


def test_a_short_chaos_run_loses_nothing_and_keeps_order() -> None:
    outcome = chaos.main(
        [
            "--duration", "12", "--rate", "30", "--kill-every", "3", "--gil-events", "1",
            "--gil-seconds", "4", "--squeeze", "2", "--drain", "120", "--slow-events", "2",
            "--port", str(free_port()),
        ]
    )  # fmt: skip
    assert outcome["acknowledged"] > 100
    assert outcome["lost"] == 0
    assert outcome["violations"] == 0
    assert outcome["processed"] == outcome["acknowledged"]
    # The poison pill dead-lettered alone; the timed-out threads never overlapped.
    assert outcome["poisoned"] == 2
    assert outcome["innocent_crashed"] == 0
    assert outcome["overlaps"] == 0
    assert outcome["threaded_violations"] == 0

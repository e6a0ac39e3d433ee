"""The chaos benchmark, briefly: every fault at once; no acknowledged event lost or reordered."""

from __future__ import annotations

import pytest

from benchmarks import chaos
from redo_hooks.dev.redis_server import free_port

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("chaos")]


def test_a_short_chaos_run_loses_nothing_and_keeps_order() -> None:
    outcome = chaos.main(
        [
            "--duration", "12", "--rate", "30", "--kill-every", "3", "--gil-events", "1",
            "--gil-seconds", "4", "--squeeze", "2", "--drain", "90", "--port", str(free_port()),
        ]
    )  # fmt: skip
    assert outcome["acknowledged"] > 100
    assert outcome["lost"] == 0
    assert outcome["violations"] == 0
    assert outcome["processed"] == outcome["acknowledged"]

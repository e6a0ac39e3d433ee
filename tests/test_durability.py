"""An acknowledged event survives a Redis restart (AOF on) and is then processed."""

from __future__ import annotations

from collections import defaultdict

from starlette.testclient import TestClient

from redo_hooks import RedoHooks, ReturnEvent
from redo_hooks.testing import RedisServer, drain, sample_body

from .conftest import SECRET


def test_events_acknowledged_before_a_redis_restart_are_all_processed() -> None:
    seen: dict[str, list[int]] = defaultdict(list)
    with RedisServer(appendonly=True) as server:
        hooks = RedoHooks(redis_url=server.url, secrets=[SECRET])

        @hooks.on("return", name="recorder")
        def record(event: ReturnEvent) -> None:
            seen[event.subject].append(int(event.raw["seq"]))

        acknowledged = 0
        with TestClient(hooks.asgi()) as client:
            for n in range(30):
                body = sample_body(subject=f"ret-{n % 3}", seq=n)
                response = client.post(
                    "/", content=body, headers={"Authorization": f"Bearer {SECRET}"}
                )
                acknowledged += response.status_code == 202
        assert acknowledged == 30
        server.stop()  # a clean shutdown flushes the AOF
        server.start()
        drain(hooks)
    assert {s: v for s, v in seen.items()} == {
        f"ret-{r}": [n for n in range(30) if n % 3 == r] for r in range(3)
    }

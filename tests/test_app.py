"""The receiver over HTTP: every status code of guarantee 2, and what each writes.

Every refused request is checked to have written nothing to Redis.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import httpx2 as httpx
import orjson
import pytest
from redis import Redis
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from redo_hooks import RedoHooks, ReturnEvent
from redo_hooks.store.events import event_key, unpack_body
from redo_hooks.store.keys import Keys
from redo_hooks.testing import sample_body

from .conftest import SECOND_SECRET, SECRET, MakeHooks, as_bytes, snapshot

AUTH = {"Authorization": f"Bearer {SECRET}"}


def handler(event: ReturnEvent) -> None: ...


@pytest.fixture
def hooks(make_hooks: MakeHooks) -> RedoHooks:
    hooks = make_hooks(max_body_bytes=64 * 1024)
    hooks.add(handler, "return.created", "return.updated")
    return hooks


@pytest.fixture
def client(hooks: RedoHooks) -> Iterator[TestClient]:
    with TestClient(hooks.asgi()) as client:
        yield client


def test_an_event_is_stored_routed_and_acknowledged_with_202(
    client: TestClient, redis: Redis
) -> None:
    body = sample_body("return.created", return_id="ret-1")
    response = client.post("/", content=body, headers=AUTH)
    assert response.status_code == 202
    key = event_key(body)
    assert response.json() == {"status": "accepted", "event": key}
    keys = Keys()
    assert unpack_body(as_bytes(redis.get(keys.body(key)))) == body
    assert redis.ttl(keys.body(key)) == redis.ttl(keys.event(key)) == -1  # kept while waiting
    assert redis.lrange(keys.lane(f"{__name__}.handler", "ret-1"), 0, -1) == [key.encode()]
    owner = redis.hget(keys.lane_state(f"{__name__}.handler", "ret-1"), "owner")
    assert owner is not None and redis.lrange("rq:queue:redo-hooks", 0, -1) == [owner]
    # The stored body is the dedupe mark: no key of its own for it.
    assert not redis.exists(keys.seen(key))


def test_the_second_accepted_secret_works(client: TestClient) -> None:
    response = client.post(
        "/", content=sample_body(), headers={"Authorization": f"Bearer {SECOND_SECRET}"}
    )
    assert response.status_code == 202


def test_a_redelivery_is_a_200_duplicate_and_is_not_routed_again(
    client: TestClient, redis: Redis
) -> None:
    body = sample_body("return.created", return_id="ret-2")
    assert client.post("/", content=body, headers=AUTH).status_code == 202
    before = snapshot(redis)
    again = client.post("/", content=body, headers=AUTH)
    assert again.status_code == 200
    assert again.headers["Redo-Hooks-Duplicate"] == "true"
    assert again.json()["status"] == "duplicate"
    assert snapshot(redis) == before


def test_an_event_type_no_handler_wants_is_acknowledged_and_kept_but_not_queued(
    client: TestClient, redis: Redis
) -> None:
    body = sample_body("return.backfill", return_id="ret-3")
    response = client.post("/", content=body, headers=AUTH)
    assert response.status_code == 202 and response.json()["status"] == "unhandled"
    stored = Keys().event(event_key(body))
    assert redis.hget(stored, "type") == b"backfill"
    assert 0 < redis.ttl(stored) <= 7 * 86_400
    assert redis.llen("rq:queue:redo-hooks") == 0
    assert list(redis.scan_iter("rh:lane*")) == []


def test_unknown_event_types_new_fields_and_nulls_are_accepted(client: TestClient) -> None:
    raw = orjson.loads(sample_body(return_id="ret-4"))
    raw["type"] = "archived"
    raw["return"]["status"] = "vaporised"
    raw["return"]["source"] = None
    raw["somethingNew"] = {"deep": [1, 2]}
    response = client.post("/", content=orjson.dumps(raw), headers=AUTH)
    assert response.status_code == 202 and response.json()["status"] == "unhandled"


def test_an_off_schema_but_routable_event_is_accepted_not_lost(client: TestClient) -> None:
    raw = orjson.loads(sample_body(return_id="ret-5"))
    raw["return"]["items"] = "not a list"
    response = client.post("/", content=orjson.dumps(raw), headers=AUTH)
    assert response.status_code == 202 and response.json()["status"] == "accepted"


REFUSED = [
    ({}, sample_body(), 401, "missing-bearer"),
    ({"Authorization": "Bearer wrong"}, sample_body(), 401, "wrong-bearer"),
    ({"Authorization": f"Basic {SECRET}"}, sample_body(), 401, "malformed-bearer"),
    (AUTH, sample_body()[:-10], 400, "malformed-json"),  # truncated
    (AUTH, b'{"type":"created","return":{"id":"r"},"x":NaN}', 400, "malformed-json"),
    (AUTH, b"[" + sample_body() + b"]", 400, "not-an-object"),
    (AUTH, b"", 400, "empty-body"),
    (AUTH, b'{"type":"created","return":{"status":"open"}}', 422, "invalid-event"),
    (AUTH, b'{"return":{"id":"r1"}}', 422, "invalid-event"),
    (AUTH, sample_body().replace(b'"type":"created"', b'"type":1'), 422, "invalid-event"),
    (AUTH, b'{"type":"created","return":{"id":7}}', 422, "invalid-event"),
    (AUTH, b"x" * (64 * 1024 + 1), 413, "too-large"),
]


@pytest.mark.parametrize(("headers", "body", "status", "problem"), REFUSED)
def test_refused_requests_get_a_problem_document_and_write_nothing(  # noqa: PLR0917
    client: TestClient,
    redis: Redis,
    headers: dict[str, str],
    body: bytes,
    status: int,
    problem: str,
) -> None:
    response = client.post("/", content=body, headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    document = response.json()
    assert document["status"] == status
    assert document["type"] == f"urn:redo-hooks:problem:{problem}"
    assert document["title"] and document["detail"]
    assert SECRET not in response.text
    assert snapshot(redis) == {}


def test_a_chunked_body_over_the_limit_is_cut_off_with_413(
    client: TestClient, redis: Redis
) -> None:
    sent = []

    def chunks() -> Iterator[bytes]:
        for _ in range(100):
            sent.append(1)
            yield b"x" * 4096

    response = client.post("/", content=chunks(), headers=AUTH)
    assert response.status_code == 413
    assert snapshot(redis) == {}


def test_auth_is_checked_before_the_body_is_read(client: TestClient) -> None:
    response = client.post("/", content=b"x" * (64 * 1024 + 1), headers={})
    assert response.status_code == 401


def test_redis_down_gives_503_with_retry_after_and_no_ack() -> None:
    hooks = RedoHooks(redis_url="redis://127.0.0.1:1/0", secrets=[SECRET], redis_timeout=0.5)
    hooks.add(handler, "return")
    with TestClient(hooks.asgi()) as client:
        response = client.post("/", content=sample_body(), headers=AUTH)
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
        assert response.json()["type"] == "urn:redo-hooks:problem:store-unavailable"
        assert client.get("/readyz").status_code == 503
        assert client.get("/healthz").status_code == 200


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


def test_the_receiver_refuses_to_start_without_a_secret(redis_url: str) -> None:
    app = RedoHooks(redis_url=redis_url).asgi()
    with pytest.raises(Exception, match="REDO_HOOKS_SECRETS"), TestClient(app):
        pass


def test_mounted_without_a_secret_it_answers_503_never_2xx(redis_url: str, redis: Redis) -> None:
    outer = Starlette(routes=[Mount("/hooks", RedoHooks(redis_url=redis_url).asgi())])
    with TestClient(outer) as client:
        response = client.post("/hooks/", content=sample_body(), headers=AUTH)
    assert response.status_code == 503
    assert snapshot(redis) == {}


def test_concurrent_requests_are_group_committed_each_with_its_own_answer(
    hooks: RedoHooks, redis: Redis
) -> None:
    bodies = [sample_body("return.created", return_id=f"ret-{i % 7}") for i in range(60)]
    bodies += bodies[:10]  # redeliveries inside the same bursts
    statuses: list[int] = []

    app = hooks.asgi()

    async def main() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:

            async def post(body: bytes) -> None:
                statuses.append((await http.post("/", content=body, headers=AUTH)).status_code)

            async with anyio.create_task_group() as group:
                for body in bodies:
                    group.start_soon(post, body)
        await app.state.receiver.close()  # no lifespan runs under ASGITransport

    anyio.run(main)
    assert sorted(statuses) == [200] * 10 + [202] * 60
    lanes = sum(redis.llen(k) for k in redis.scan_iter("rh:lane:*"))
    assert lanes == 60
    # No worker started: one queued job gathered all 7 returns' lanes.
    (job_id,) = redis.lrange("rq:queue:redo-hooks", 0, -1)
    assert sorted(redis.lrange(b"rh:joblanes:" + as_bytes(job_id), 0, -1)) == sorted(
        f"ret-{i}".encode() for i in range(7)
    )


def test_a_stalled_redis_gets_an_answer_within_redis_timeout(redis_url: str, redis: Redis) -> None:
    """One budget per request: the memory check and the write share redis_timeout."""
    hooks = RedoHooks(redis_url=redis_url, secrets=[SECRET], redis_timeout=1)
    hooks.add(handler, "return")
    with TestClient(hooks.asgi()) as client:
        assert client.post("/", content=sample_body(), headers=AUTH).status_code == 202
        # Redis stalls far longer than the test may take: a receiver that waited
        # for it would answer 202 once it resumed, not 503 while it stalls.
        # (CLIENT UNPAUSE would wait in the pause too: the test waits it out.)
        redis.client_pause(8_000)
        for n in range(2):  # the second finds the memory reading stale: both steps wait
            response = client.post("/", content=sample_body(seq=n), headers=AUTH)
            assert response.status_code == 503, response.text
            assert response.headers["Retry-After"] == "5"
        with Redis.from_url(redis_url, socket_timeout=30) as patient:
            assert patient.ping()  # answered once the pause is over


def test_middleware_added_to_the_receiver_runs_for_webhooks_too(hooks: RedoHooks) -> None:
    """Before: ``POST /`` skipped Starlette's stack, so a user's middleware never saw it."""
    seen: list[tuple[str, str]] = []

    class Audit:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                seen.append((scope["method"], scope["path"]))

                async def stamped(message: Any) -> None:
                    if message["type"] == "http.response.start":
                        message["headers"] = [*message["headers"], (b"x-audited", b"yes")]
                    await send(message)

                await self.app(scope, receive, stamped)
                return
            await self.app(scope, receive, send)

    app = hooks.asgi()
    app.add_middleware(Audit)
    with TestClient(app) as client:
        accepted = client.post("/", content=sample_body(return_id="ret-mw"), headers=AUTH)
        refused = client.post("/", content=b"{", headers=AUTH)
        health = client.get("/healthz")
    assert accepted.status_code == 202 and accepted.headers["x-audited"] == "yes"
    assert refused.status_code == 400 and refused.headers["x-audited"] == "yes"
    assert health.headers["x-audited"] == "yes"
    assert seen == [("POST", "/"), ("POST", "/"), ("GET", "/healthz")]

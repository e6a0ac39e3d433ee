"""Secrets labelled by store, rotation, and the cached secret resolver."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis import Redis
from starlette.testclient import TestClient

from redo_hooks import ReturnEvent
from redo_hooks.errors import ConfigurationError, StoreUnavailable
from redo_hooks.ops.replay import Selection, replay
from redo_hooks.receiver.auth import BearerVerifier, CachedResolver, parse_entry
from redo_hooks.testing import drain, sample_body

from .conftest import MakeHooks, snapshot

SECRETS = ["store-a=token-a-0123456789", "store-b=token-b-0123456789", "plain-token-0123456789"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_entries_are_store_labelled_or_plain() -> None:
    assert parse_entry("store-a=tok") == parse_entry("store-a=tok")
    assert (parse_entry("store-a=tok").store, parse_entry("store-a=tok").token) == (
        "store-a",
        b"tok",
    )
    assert parse_entry("tok").store is None
    # Base64 padding is not a label separator; nor is '=' after a non-label.
    assert parse_entry("dGVzdA==").store is None
    assert parse_entry("dGVzdA==").token == b"dGVzdA=="
    assert parse_entry("a b=c").store is None
    assert parse_entry("s=dGVzdA==").token == b"dGVzdA=="
    assert "s3cr3t" not in repr(parse_entry("store-a=s3cr3t"))


@given(
    label=st.from_regex(r"[A-Za-z0-9_.:-]{1,20}", fullmatch=True),
    token=st.from_regex(r"[A-Za-z0-9_-]{1,40}", fullmatch=True),
)
def test_a_labelled_entry_verifies_to_its_store(label: str, token: str) -> None:
    verifier = BearerVerifier([f"{label}={token}", "other-secret"])
    assert verifier.verify(f"Bearer {token}".encode()) == label
    assert verifier.verify(b"Bearer other-secret") is None


@pytest.fixture
def seen() -> list[tuple[str | None, str]]:
    return []


def test_the_handler_sees_the_store_whose_secret_came_with_the_event(
    make_hooks: MakeHooks, seen: list[tuple[str | None, str]], redis: Redis
) -> None:
    hooks = make_hooks(secrets=SECRETS)

    @hooks.on("return", name="record")
    def record(event: ReturnEvent) -> None:
        seen.append((event.store, event.return_id))

    body = sample_body("return.created", return_id="r1")
    with TestClient(hooks.asgi()) as client:
        statuses = [
            client.post("/", content=body, headers=bearer("token-a-0123456789")).status_code,
            client.post("/", content=body, headers=bearer("token-b-0123456789")).status_code,
            client.post("/", content=body, headers=bearer("token-a-0123456789")).status_code,
            client.post("/", content=body, headers=bearer("plain-token-0123456789")).status_code,
        ]
    # The same bytes from two stores are two events; again from one store, a duplicate.
    assert statuses == [202, 202, 200, 202]
    drain(hooks)
    assert sorted(seen, key=str) == sorted(
        [("store-a", "r1"), ("store-b", "r1"), (None, "r1")], key=str
    )
    # The store is stored with the event: a replay still knows it.
    seen.clear()
    replay(redis, hooks.settings, hooks.registry, Selection())
    drain(hooks)
    assert sorted(seen, key=str) == sorted(
        [("store-a", "r1"), ("store-b", "r1"), (None, "r1")], key=str
    )


def test_two_secrets_of_one_store_during_rotation(make_hooks: MakeHooks) -> None:
    hooks = make_hooks(secrets=["store-a=old-secret-0123456789", "store-a=new-secret-0123456789"])
    stores: list[str | None] = []
    hooks.on("return", name="stores")(lambda event: stores.append(event.store))
    with TestClient(hooks.asgi()) as client:
        for token in ("old-secret-0123456789", "new-secret-0123456789"):
            body = sample_body("return.created")
            assert client.post("/", content=body, headers=bearer(token)).status_code == 202
        assert client.post("/", content=sample_body(), headers=bearer("gone")).status_code == 401
    drain(hooks)
    assert stores == ["store-a", "store-a"]


class Directory:
    """A stand-in for a platform's database of per-store secrets."""

    def __init__(self) -> None:
        self.secrets = {"db-token-1": "store-1", "db-token-2": "store-2"}
        self.calls: list[str] = []
        self.fail: Exception | None = None
        self.delay = 0.0

    async def __call__(self, token: str) -> str | None:
        self.calls.append(token)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        return self.secrets.get(token)


@pytest.fixture
def directory() -> Directory:
    return Directory()


@pytest.fixture
def resolved_client(make_hooks: MakeHooks, directory: Directory) -> Iterator[TestClient]:
    hooks = make_hooks(secrets=[], secret_resolver=directory)
    hooks.on("return", name="noop")(lambda event: None)
    with TestClient(hooks.asgi()) as client:
        yield client


def test_a_resolver_is_enough_to_start_and_its_answers_are_cached(
    resolved_client: TestClient, directory: Directory
) -> None:
    for _ in range(5):
        response = resolved_client.post("/", content=sample_body(), headers=bearer("db-token-1"))
        assert response.status_code == 202
    assert directory.calls == ["db-token-1"]
    for _ in range(3):
        refused = resolved_client.post("/", content=sample_body(), headers=bearer("guess"))
        assert refused.status_code == 401
    assert directory.calls == ["db-token-1", "guess"]


@pytest.mark.parametrize("failure", ["raises", "times out"])
def test_a_failing_resolver_is_a_503_not_a_401_and_writes_nothing(
    make_hooks: MakeHooks, directory: Directory, redis: Redis, failure: str
) -> None:
    hooks = make_hooks(secrets=[], secret_resolver=directory, secret_resolver_timeout=0.05)
    hooks.on("return", name="noop")(lambda event: None)
    if failure == "raises":
        directory.fail = RuntimeError("database password=hunter2 is wrong")
    else:
        directory.delay = 1.0
    with TestClient(hooks.asgi()) as client:
        response = client.post("/", content=sample_body(), headers=bearer("db-token-1"))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "hunter2" not in response.text
    assert snapshot(redis) == {}


def test_the_cache_expires_and_coalesces_concurrent_lookups(directory: Directory) -> None:
    now = [0.0]
    resolver = CachedResolver(directory, ttl=60, clock=lambda: now[0])
    directory.delay = 0.01

    async def scenario() -> None:
        stores = await asyncio.gather(*(resolver.store_for(b"db-token-2") for _ in range(20)))
        assert stores == ["store-2"] * 20
        assert directory.calls == ["db-token-2"]
        now[0] = 59.0
        assert await resolver.store_for(b"db-token-2") == "store-2"
        assert len(directory.calls) == 1
        now[0] = 61.0
        del directory.secrets["db-token-2"]  # revoked in the database
        assert await resolver.store_for(b"db-token-2") is None
        assert len(directory.calls) == 2
        # Unknown tokens are remembered for at most 5 s.
        directory.secrets["db-token-2"] = "store-2"
        now[0] = 65.0
        assert await resolver.store_for(b"db-token-2") is None
        now[0] = 66.5
        assert await resolver.store_for(b"db-token-2") == "store-2"

    asyncio.run(scenario())


def test_concurrent_waiters_all_see_a_resolver_failure(directory: Directory) -> None:
    resolver = CachedResolver(directory, ttl=60)
    directory.fail = RuntimeError("down")
    directory.delay = 0.01

    async def scenario() -> list[BaseException | str | None]:
        return await asyncio.gather(
            *(resolver.store_for(b"db-token-1") for _ in range(5)), return_exceptions=True
        )

    results = asyncio.run(scenario())
    assert all(isinstance(r, StoreUnavailable) for r in results)
    assert len(directory.calls) == 1
    directory.fail = None
    assert asyncio.run(resolver.store_for(b"db-token-1")) == "store-1"  # failures are not cached


def test_without_secrets_or_resolver_the_receiver_refuses_to_start(make_hooks: MakeHooks) -> None:
    hooks = make_hooks(secrets=[])
    with pytest.raises(ConfigurationError, match="REDO_HOOKS_SECRETS"), TestClient(hooks.asgi()):
        pass

"""Stored bodies: zstd with the shipped dictionary; every earlier format stays readable."""

from __future__ import annotations

import zlib
from collections.abc import Callable

import orjson
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from redis import Redis

from redo_hooks import ReturnEvent
from redo_hooks.admin import Admin
from redo_hooks.store.compression import CURRENT, decompress, dictionaries
from redo_hooks.store.events import event_key, pack_body, unpack_body
from redo_hooks.store.keys import Keys
from redo_hooks.testing import deliver, drain, sample_body, wait_for

from .conftest import MakeHooks, as_bytes


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=20_000) | st.just(sample_body()))
def test_a_body_comes_back_byte_for_byte(body: bytes) -> None:
    assert unpack_body(pack_body(body)) == body


def test_the_spec_example_is_stored_in_under_a_third_of_its_bytes() -> None:
    body = sample_body()
    stored = pack_body(body)
    assert len(stored) < len(body) / 3
    assert len(stored) < len(zlib.compress(body, 1))  # what the previous release stored


def test_frames_name_the_shipped_dictionary_they_need() -> None:
    (known,) = dictionaries()  # one version shipped so far
    assert CURRENT == "bodies-v1.zdict"
    assert zstandard.get_frame_parameters(pack_body(b"{}")).dict_id == known


def test_bodies_the_previous_release_stored_with_zlib_are_read() -> None:
    body = sample_body()
    assert unpack_body(zlib.compress(body, 1)) == body


def test_a_frame_needing_a_dictionary_not_shipped_is_a_clear_error() -> None:
    other = zstandard.train_dictionary(4096, [sample_body(seq=n) for n in range(200)])
    stored = zstandard.ZstdCompressor(dict_data=other).compress(b'{"type": "created"}')
    with pytest.raises(ValueError, match=f"dictionary {other.dict_id()}, not shipped"):
        decompress(stored)


def as_release_0_2(redis: Redis, repack: Callable[[bytes], bytes] = pack_body) -> list[str]:
    """Rewrite every stored event as releases up to 0.2 left it; their keys.

    The body (``repack``ed) in the event's hash, no body key, a dedupe mark
    per event, and no ``<p>:dedupe`` (a Redis this release never wrote to).
    """
    keys = Keys()
    found = []
    for member in redis.zrange(keys.events, 0, -1):
        key = as_bytes(member).decode()
        stored = redis.get(keys.body(key))
        assert stored is not None
        redis.hset(keys.event(key), "body", repack(unpack_body(stored)))
        redis.delete(keys.body(key))
        redis.set(keys.seen(key), 1, ex=86_400)
        found.append(key)
    redis.delete(keys.dedupe)
    return found


def test_a_worker_runs_events_stored_by_the_zlib_release(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    hooks = make_hooks()
    seen: list[str] = []

    @hooks.on("return", name="h")
    def note(event: ReturnEvent) -> None:
        seen.append(event.raw["return"]["id"])

    bodies = [sample_body(return_id=f"old-{n}") for n in range(3)]
    for body in bodies:
        assert deliver(hooks, body)
    as_release_0_2(redis, lambda body: zlib.compress(body, 1))
    drain(hooks)
    assert sorted(seen) == sorted(orjson.loads(b)["return"]["id"] for b in bodies)


def test_events_stored_by_release_0_2_run_expire_and_still_dedupe(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    """Upgrading with events waiting: they run, their dedupe marks still count,
    the operator API reads their bodies, and they expire with nothing left."""
    hooks = make_hooks(retention=2)
    seen: list[str] = []
    hooks.add(lambda event: seen.append(event.raw["return"]["id"]), "return", name="h")
    bodies = [sample_body(return_id=f"old-{n}") for n in range(3)]
    for body in bodies:
        assert deliver(hooks, body)
    keys = Keys()
    old = as_release_0_2(redis)
    assert not any(deliver(hooks, body) for body in bodies)  # marks read: duplicates
    # For a window after the upgrade new events are marked too: receivers of
    # the release before, still running in a rolling upgrade, find them.
    new = sample_body(return_id="new-0")
    assert deliver(hooks, new)
    assert 0 < redis.ttl(keys.seen(event_key(new))) <= 86_400
    detail = Admin(hooks).event(old[0])
    assert detail is not None and detail.body in bodies
    drain(hooks)
    assert sorted(seen) == ["new-0"] + [f"old-{n}" for n in range(3)]
    assert all(0 < redis.ttl(keys.event(key)) <= 2 for key in old)  # retained, then gone
    wait_for(
        lambda: not any(redis.exists(keys.event(key)) for key in old), 10, "the events to expire"
    )
    assert not list(redis.scan_iter("rh:body:*"))

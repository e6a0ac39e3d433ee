"""Stored bodies: zstd with the shipped dictionary; every earlier format stays readable."""

from __future__ import annotations

import zlib

import orjson
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from redis import Redis

from redo_hooks import ReturnEvent
from redo_hooks.store.compression import CURRENT, decompress, dictionaries
from redo_hooks.store.events import pack_body, unpack_body
from redo_hooks.store.keys import Keys
from redo_hooks.testing import deliver, drain, sample_body

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


def test_a_worker_runs_events_stored_by_the_previous_release(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    hooks = make_hooks()
    seen: list[str] = []

    @hooks.on("return", name="h")
    def note(event: ReturnEvent) -> None:
        seen.append(event.raw["return"]["id"])

    keys = Keys()
    bodies = [sample_body(subject=f"old-{n}") for n in range(3)]
    for body in bodies:
        assert deliver(hooks, body)
    # Rewrite them as the zlib release left them in Redis, then upgrade.
    for member in redis.zrange(keys.events, 0, -1):
        event = keys.event(as_bytes(member).decode())
        stored = redis.hget(event, "body")
        assert stored is not None
        redis.hset(event, "body", zlib.compress(unpack_body(stored), 1))
    drain(hooks)
    assert sorted(seen) == sorted(orjson.loads(b)["return"]["id"] for b in bodies)

"""Fuzzing the receiver: arbitrary bytes, arbitrary JSON, mutated real events, arbitrary headers.

The property, for every input: the answer is never a 5xx, no exception
escapes the app, and a non-2xx answer wrote nothing at all to Redis. Inputs
include deep nesting and numbers of thousands of digits inside real events,
and header values (cookies, hosts, secrets) with any Latin-1 character.
``tests/test_fuzz.py`` runs it with a small budget in CI; a longer run::

    .venv/bin/python -m tests.fuzz_receiver --examples 20000

starts its own Redis and prints what it tried and what it found.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis import Redis
from starlette.testclient import TestClient

from redo_hooks import RedoHooks, logs
from redo_hooks.testing import RedisServer, sample_event

SECRET = "fuzz-secret-0123456789abcdef"

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5)
    ),
    max_leaves=30,
)


@st.composite
def mutated_events(draw: st.DrawFn) -> bytes:
    """A real event with a few random changes: deleted, replaced or retyped fields."""
    event: Any = sample_event()
    event["type"] = draw(st.sampled_from(["created", "updated", "backfill", "new"]))
    for _ in range(draw(st.integers(0, 4))):
        path: list[Any] = []
        node = event
        while isinstance(node, dict | list) and node and draw(st.booleans()):
            key = draw(
                st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node)))
            )
            path.append(key)
            node = node[key]
        if not path:
            continue
        parent = event
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(json_values)
    raw = json.dumps(event).encode()
    cut = draw(st.sampled_from([None, None, None, "truncate", "flip"]))
    if cut == "truncate" and raw:
        raw = raw[: draw(st.integers(0, len(raw) - 1))]
    elif cut == "flip" and raw:
        at = draw(st.integers(0, len(raw) - 1))
        raw = raw[:at] + bytes([draw(st.integers(0, 255))]) + raw[at + 1 :]
    return raw


def nested(depth: int) -> bytes:
    """A real event with ``depth`` levels of arrays under a field the models do not know."""
    return json.dumps(sample_event()).encode()[:-1] + b',"x":' + b"[" * depth + b"]" * depth + b"}"


def huge_number(digits: int) -> bytes:
    """A real event whose return carries a number of ``digits`` digits (beyond a double)."""
    event: Any = sample_event()
    event["return"]["amount_x"] = 0
    return json.dumps(event).encode().replace(b'"amount_x": 0', b'"amount_x": ' + b"9" * digits)


bodies = st.one_of(
    st.binary(max_size=2048),
    json_values.map(lambda v: json.dumps(v).encode()),
    mutated_events(),
    st.just(b"{" * 100 + b"}" * 100),
    st.integers(33, 5000).map(nested),
    st.integers(300, 6000).map(huge_number),
)

header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=60,
)
authorizations = st.one_of(
    st.just(f"Bearer {SECRET}"),
    st.just(f"Bearer {SECRET}"),
    st.none(),
    header_text,
    header_text.map(lambda t: "Bearer " + t),
    st.just(f"Basic {SECRET}"),
)
extra_headers = st.dictionaries(
    st.sampled_from(["content-type", "content-encoding", "x-forwarded-for", "transfer-encoding",
                     "expect", "x-redo-anything", "content-length", "cookie", "host"]),
    header_text,
    max_size=3,
)  # fmt: skip


def snapshot(client: Redis) -> set[bytes]:
    """The keys in Redis, but schema-drift records.

    A drift finding of an earlier, accepted body is recorded beside its
    request and may land after its answer, during the next input's check
    (a body with a 5,000-digit number under an unknown field does so); the
    receiver checks only bodies it accepted, so a refusal never writes one.
    """
    return {k for k in client.scan_iter(count=1000) if not k.startswith(b"rh:drift:")}


class Fuzzer:
    """One receiver on one Redis; :meth:`check` is the property for one input."""

    def __init__(self, redis_url: str) -> None:
        self.hooks = RedoHooks(redis_url=redis_url, secrets=[SECRET], max_body_bytes=16 * 1024)
        self.hooks.on("return", name="fuzz")(lambda event: None)
        self.redis = Redis.from_url(redis_url)
        self.client = TestClient(self.hooks.asgi(), raise_server_exceptions=True).__enter__()
        self.statuses: Counter[int] = Counter()
        self.tried = 0

    def close(self) -> None:
        self.client.__exit__(None, None, None)
        self.redis.close()

    def check(self, body: bytes, authorization: str | None, headers: dict[str, str]) -> None:
        self.redis.flushall()
        sent = dict(headers)
        if authorization is not None:
            sent["authorization"] = authorization
        sent.pop("content-length", None)  # httpx sets the true one; a false one is a client bug
        raw = {name.encode(): value.encode("latin-1") for name, value in sent.items()}
        response = self.client.post("/", content=body, headers=raw)
        self.tried += 1
        self.statuses[response.status_code] += 1
        assert response.status_code < 500, (response.status_code, response.text)
        if not 200 <= response.status_code < 300:
            assert snapshot(self.redis) == set(), (response.status_code, "wrote to Redis")


def property_test(fuzzer: Fuzzer, examples: int) -> None:
    """Run the property ``examples`` times."""

    @given(body=bodies, authorization=authorizations, headers=extra_headers)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(body: bytes, authorization: str | None, headers: dict[str, str]) -> None:
        fuzzer.check(body, authorization, headers)

    run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20_000)
    args = parser.parse_args()
    logs.configure("CRITICAL")  # a refusal per input would drown the report
    started = time.monotonic()
    with RedisServer() as server:
        fuzzer = Fuzzer(server.url)
        try:
            property_test(fuzzer, args.examples)
            finding = "none: every answer < 500, nothing written for any non-2xx"
        except AssertionError as exc:
            finding = f"FAILED: {exc}"
        finally:
            fuzzer.close()
    print(f"inputs tried: {fuzzer.tried} in {time.monotonic() - started:.0f} s")
    print("answers:", ", ".join(f"{s}: {n}" for s, n in sorted(fuzzer.statuses.items())))
    print("findings:", finding)


if __name__ == "__main__":
    main()

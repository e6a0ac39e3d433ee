"""``/metrics`` counts exactly what a scripted sequence of requests and handler runs did."""

from __future__ import annotations

from collections import Counter

from prometheus_client.parser import text_string_to_metric_families
from redis import Redis
from starlette.testclient import TestClient

from redo_hooks import ReturnEvent
from redo_hooks.testing import drain, sample_body

from .conftest import SECRET, MakeHooks

AUTH = {"Authorization": f"Bearer {SECRET}"}


def scrape(
    client: TestClient, path: str = "/metrics"
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_follow_a_scripted_sequence(make_hooks: MakeHooks, redis: Redis) -> None:
    hooks = make_hooks(max_body_bytes=64 * 1024)
    tries: Counter[str] = Counter()

    @hooks.on("return.created", name="steady")
    def steady(event: ReturnEvent) -> None: ...

    @hooks.on("return.updated", name="flaky", retries=2)
    def flaky(event: ReturnEvent) -> None:
        tries[event.key] += 1
        if tries[event.key] == 1:
            raise RuntimeError("first try fails")

    @hooks.on("return.backfill", name="doomed", retries=1)
    def doomed(event: ReturnEvent) -> None:
        raise RuntimeError("always fails")

    created = [sample_body("return.created", return_id=f"r{n}") for n in range(3)]
    with TestClient(hooks.asgi()) as client:
        statuses = [client.post("/", content=body, headers=AUTH).status_code for body in created]
        statuses.append(client.post("/", content=created[0], headers=AUTH).status_code)
        statuses.append(
            client.post(
                "/", content=sample_body("return.updated", return_id="r4"), headers=AUTH
            ).status_code
        )
        statuses.append(
            client.post(
                "/", content=sample_body("return.backfill", return_id="r5"), headers=AUTH
            ).status_code
        )
        statuses.append(
            client.post(
                "/", content=created[1], headers={"Authorization": "Bearer nope"}
            ).status_code
        )
        statuses.append(client.post("/", content=b"{not json", headers=AUTH).status_code)
        statuses.append(client.post("/", content=b"x" * 70_000, headers=AUTH).status_code)
        assert statuses == [202, 202, 202, 200, 202, 202, 401, 400, 413]

        before = scrape(client)
        assert value(before, "redo_hooks_requests_total", outcome="accepted", reason="") == 5
        assert value(before, "redo_hooks_requests_total", outcome="duplicate", reason="") == 1
        assert (
            value(before, "redo_hooks_requests_total", outcome="rejected", reason="wrong_bearer")
            == 1
        )
        assert (
            value(before, "redo_hooks_requests_total", outcome="rejected", reason="malformed_json")
            == 1
        )
        assert (
            value(before, "redo_hooks_requests_total", outcome="rejected", reason="too_large") == 1
        )
        assert value(before, "redo_hooks_ingest_duration_seconds_count") == 6
        assert value(before, "redo_hooks_redis_up") == 1
        assert value(before, "redo_hooks_events_waiting") == 5
        assert value(before, "redo_hooks_lanes_waiting") == 5
        assert value(before, "redo_hooks_queued_jobs") >= 1
        assert value(before, "redo_hooks_oldest_waiting_seconds") >= 0
        assert value(before, "redo_hooks_handler_runs_total", handler="steady", outcome="ok") == 0

        drain(hooks, raise_on_dead=False)
        after = scrape(client)

    runs = "redo_hooks_handler_runs_total"
    assert value(after, runs, handler="steady", outcome="ok") == 3
    assert value(after, runs, handler="flaky", outcome="error") == 1
    assert value(after, runs, handler="flaky", outcome="ok") == 1
    assert value(after, runs, handler="doomed", outcome="error") == 2
    assert value(after, "redo_hooks_retries_total", handler="flaky") == 1
    assert value(after, "redo_hooks_retries_total", handler="doomed") == 1
    assert value(after, "redo_hooks_dead_lettered_total", handler="doomed") == 1
    assert value(after, "redo_hooks_dead_lettered_total", handler="flaky") == 0
    assert value(after, "redo_hooks_dead_letters") == 1
    assert value(after, "redo_hooks_handler_duration_seconds_count", handler="steady") == 3
    assert (
        value(after, "redo_hooks_handler_duration_seconds_bucket", handler="doomed", le="+Inf") == 2
    )
    assert value(after, "redo_hooks_events_waiting") == 0
    assert value(after, "redo_hooks_lanes_waiting") == 0
    assert value(after, "redo_hooks_oldest_waiting_seconds") == 0
    # The receiver's counters did not move meanwhile.
    assert value(after, "redo_hooks_requests_total", outcome="accepted", reason="") == 5


def test_metrics_can_move_or_be_turned_off(make_hooks: MakeHooks) -> None:
    with TestClient(make_hooks(metrics_path="/internal/metrics").asgi()) as client:
        assert client.get("/metrics").status_code == 404
        assert value(scrape(client, "/internal/metrics"), "redo_hooks_redis_up") == 1
    with TestClient(make_hooks(metrics_path="").asgi()) as client:
        assert client.get("/metrics").status_code == 404


def test_metrics_still_answer_when_redis_does_not(make_hooks: MakeHooks) -> None:
    hooks = make_hooks(redis_url="redis://127.0.0.1:9/0", redis_timeout=0.2)
    with TestClient(hooks.asgi()) as client:
        client.post("/", content=sample_body(), headers=AUTH)
        samples = scrape(client)
    assert value(samples, "redo_hooks_redis_up") == 0
    assert (
        value(samples, "redo_hooks_requests_total", outcome="deferred", reason="store_unavailable")
        == 1
    )

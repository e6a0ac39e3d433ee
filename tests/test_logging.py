"""Logs: one JSON shape for ours and the stdlib's, reasons for refusals, no secrets."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import orjson
import pytest
import structlog
from starlette.testclient import TestClient

from redo_hooks import RedoHooks, logs
from redo_hooks.testing import sample_body

CONFIGURED = "configured-secret-abcdef123456"
PRESENTED = "presented-by-caller-zyx987"


@pytest.fixture
def json_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    # Configured by each test itself: the handler must bind the sys.stderr
    # that capsys installs for the test's call phase.
    yield capsys
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


def test_a_scripted_session_never_logs_or_answers_with_a_secret(
    json_logs: pytest.CaptureFixture[str], redis_url: str
) -> None:
    logs.configure("DEBUG", json=True)
    hooks = RedoHooks(redis_url=f"redis://:{CONFIGURED}x@127.0.0.1:1/0", secrets=[CONFIGURED])
    hooks.add(lambda event: None, "return", name="h")
    bodies = []
    with TestClient(hooks.asgi()) as client:
        for auth in (f"Bearer {CONFIGURED}", f"Bearer {PRESENTED}", PRESENTED, ""):
            response = client.post("/", content=sample_body(), headers={"Authorization": auth})
            bodies.append(response.text)
        bodies.append(client.get("/readyz").text)
    output = json_logs.readouterr()
    everything = output.err + output.out + "".join(bodies) + repr(hooks)
    assert CONFIGURED not in everything
    assert PRESENTED not in everything
    lines = [orjson.loads(line) for line in output.err.splitlines() if line.startswith("{")]
    reasons = [line.get("reason") for line in lines if line.get("event") == "request_rejected"]
    assert reasons == ["wrong_bearer", "malformed_bearer", "missing_bearer"]
    assert any(line.get("event") == "request_deferred" for line in lines)


def test_stdlib_loggers_go_through_the_same_json_pipeline(
    json_logs: pytest.CaptureFixture[str],
) -> None:
    logs.configure("DEBUG", json=True)
    logging.getLogger("rq.worker").warning("from rq %s", "itself")
    structlog.get_logger("redo_hooks.x").info("ours", return_id="ret-1")
    err = [line for line in json_logs.readouterr().err.splitlines() if line.startswith("{")]
    rq_line, our_line = (orjson.loads(line) for line in err[-2:])
    assert rq_line["event"] == "from rq itself" and rq_line["logger"] == "rq.worker"
    assert rq_line["level"] == "warning" and "timestamp" in rq_line
    assert our_line["event"] == "ours" and our_line["return_id"] == "ret-1"

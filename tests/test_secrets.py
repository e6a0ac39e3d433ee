"""No secret leaks: every log line, response and CLI output of a scripted session is searched."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx2 as httpx
import pytest
from click.testing import CliRunner
from redis import Redis

from redo_hooks import RedoHooks, Settings
from redo_hooks.cli import main
from redo_hooks.receiver.auth import weakness
from redo_hooks.testing import RedisServer, sample_body, wait_for

from .conftest import as_bytes
from .processes import CLI, ROOT, env, start_server, start_workers, stop

STRONG_A = "kP3v9QzL7wXc2RmT8yBn4HsJ6dFg1Ue5"
STRONG_B = "Vt7Yq2Wn9Lr4Xk8Mz3Pc6Hb1Jd5Gs0Fa"
WEAK = "letmein"
REDIS_PASSWORD = "rEd1s-pa55w0rd-Zx9Qv7"
SECRETS = (STRONG_A, STRONG_B, WEAK, REDIS_PASSWORD)
APP = "tests.dead_app:hooks"


def test_weakness() -> None:
    assert weakness(b"letmein") is not None
    assert weakness(b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa") is not None  # long, one character
    assert weakness(STRONG_A.encode()) is None
    assert weakness(b"test-secret-0123456789") is None


@pytest.mark.slow
def test_a_scripted_session_never_shows_a_secret(tmp_path: Path) -> None:
    captured: list[str] = []
    with RedisServer(password=REDIS_PASSWORD) as redis_server:
        environ = env(
            redis_server.url,
            f"store-a={STRONG_A},{STRONG_B},store-c={WEAK}",
            REDO_HOOKS_RETRIES="1",
            REDO_HOOKS_BACKOFF="0",
        )
        redis = Redis.from_url(redis_server.url)
        redis.set("dead:broken", 1)  # the handlers fail: tracebacks, dead letters
        server_log = (tmp_path / "server.log").open("wb")
        worker_log = (tmp_path / "worker.log").open("wb")
        server, url = start_server(APP, environ, stderr=server_log)
        workers = start_workers(APP, environ, stderr=worker_log)
        try:
            requests = [
                {"Authorization": f"Bearer {STRONG_A}"},
                {"Authorization": f"Bearer {STRONG_B}"},
                {"Authorization": f"Bearer {STRONG_A[:-1]}x"},  # a near miss
                {"Authorization": f"Basic {STRONG_A}"},
                {"Authorization": f"bearer {STRONG_B} trailing"},
                {},
            ]
            for n, headers in enumerate(requests):
                response = httpx.post(url + "/", content=sample_body(seq=n), headers=headers)
                captured.append(f"{response.status_code} {response.headers} {response.text}")
            bad = {"Authorization": f"Bearer {STRONG_A}"}
            for body in (b"{", b"[]", b'{"type": "created"}', b"x" * (2 << 20)):
                response = httpx.post(url + "/", content=body, headers=bad)
                captured.append(f"{response.status_code} {response.headers} {response.text}")
            for path in ("/metrics", "/healthz", "/readyz", "/nope"):
                response = httpx.get(url + path)
                captured.append(f"{response.status_code} {response.headers} {response.text}")
            wait_for(lambda: redis.zcard("rh:dead:ids") >= 2, 60, "the dead letters")
            dead_id = as_bytes(redis.zrange("rh:dead:ids", 0, 0)[0]).decode()
            for args in (
                ["status", APP],
                ["dead", APP, "list"],
                ["dead", APP, "show", dead_id],
                ["dead", APP, "list", "--json"],
                ["routes", APP],
                ["replay", APP, "--dry-run"],
                ["serve", "tests.nothere:hooks"],
            ):
                result = subprocess.run(
                    [*CLI, *args], env=environ, cwd=ROOT, capture_output=True, timeout=60,
                    check=False,
                )  # fmt: skip
                captured.append(result.stdout.decode() + result.stderr.decode())
        finally:
            stop(server)
            stop(workers)
            server_log.close()
            worker_log.close()
            redis.close()
        captured.append((tmp_path / "server.log").read_text())
        captured.append((tmp_path / "worker.log").read_text())
        settings = Settings.load({}, redis_url=redis_server.url, secrets=[STRONG_A, WEAK])
        hooks = RedoHooks(settings)
        captured += [repr(settings), str(settings), repr(hooks), repr(hooks.asgi().state)]
        runner = CliRunner(env={"REDO_HOOKS_SECRETS": STRONG_A})
        captured.append(runner.invoke(main, ["routes", "examples.shop.hooks:hooks"]).output)

    text = "\n".join(captured)
    # The session did what it meant to: refusals, a failing handler, dead letters.
    for expected in ("wrong_bearer", "malformed_bearer", "too_large", "event_dead_lettered",
                     "RuntimeError", "weak_secret", "redo_hooks_requests_total"):  # fmt: skip
        assert expected in text, expected
    assert '"store":"store-c"' in text  # the weak secret is named by its store only
    for secret in SECRETS:
        assert secret not in text, f"a secret leaked: {secret[:3]}…"

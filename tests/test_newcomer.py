"""A newcomer follows docs/install.md, outside this repository, command by command.

A fresh virtualenv in a temporary HOME gets redo-hooks installed as the page
says (from a checkout: here, this one); a package with a handler is written;
`redo-hooks dev` runs, and `trigger`, `status`, `dead list` and `mypy
--strict` run as written. The only liberties: the clone is a symlink to this
checkout, and `dev` gets a free `--port` (8000 may be taken on a shared
machine; `trigger` finds the port in `.redo-hooks/dev.json` either way).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from pathlib import Path

import pytest
from redis import Redis
from redis.exceptions import RedisError

from redo_hooks.testing import RedisServer, env_without_redo_hooks, wait_for

from .processes import ROOT, free_port
from .test_docs import pytest_snippet

pytestmark = pytest.mark.slow

INSTALL = ROOT / "docs" / "install.md"

#: A newcomer's app for the documented pytest pattern: worker resources, and a
#: handler whose first attempt fails, with a backoff of its own.
REFUNDS_APP = """\
import time
from collections.abc import AsyncIterator

from redo_hooks import Failure, HandlerContext, RedoHooks, ReturnEvent

hooks = RedoHooks()
TIMES: dict[str, float] = {}


@hooks.on_worker
async def payments() -> AsyncIterator[dict[str, list[str]]]:
    yield {"refunded": []}


@hooks.on("return.created", retries=3, backoff=5)
def refund(event: ReturnEvent, ctx: HandlerContext[dict[str, list[str]]]) -> None:
    if ctx.attempt == 1:
        raise ConnectionError("payments offline")
    ctx.state["refunded"].append(event.return_id)
    TIMES["succeeded"] = time.time()


@hooks.on_failure
def scheduled(failure: Failure) -> None:
    assert failure.retry_in is not None
    TIMES["due"] = time.time() + failure.retry_in
"""

#: Its test, below testing.md's fixtures (given the overrides).
REFUNDS_TEST = """

from shop.refunds import TIMES


def test_a_failed_refund_is_retried_at_once_with_the_workers_state(tester: HookTester) -> None:
    tester.post(sample_event("return.created", return_id="ret-1"))
    ran = tester.run(raise_on_error=False)
    assert [(r.handler, r.outcome) for r in ran] == [
        ("shop.refunds.refund", "error"),
        ("shop.refunds.refund", "ok"),
    ]
    assert TIMES["succeeded"] < TIMES["due"]  # the backoff of 5 s was not waited for
"""


def blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", INSTALL.read_text(), re.S)


def commands(block: str) -> list[str]:
    """The block's commands, one per line, without trailing comments."""
    lines = (re.sub(r"\s+#.*$", "", line).strip() for line in block.splitlines())
    return [line for line in lines if line]


def default_redis_keys() -> int | None:
    """Keys redo-hooks would write at redis://localhost:6379/0; None if none runs there."""
    try:
        with Redis.from_url("redis://localhost:6379/0", socket_connect_timeout=1) as client:
            return len(list(client.scan_iter("rh:*")))
    except RedisError:
        return None


def test_a_newcomer_follows_install_md_outside_this_repository(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "src").mkdir(parents=True)
    (home / "src" / "redo-hooks").symlink_to(ROOT)
    shop = home / "myshop"
    env = {**env_without_redo_hooks(), "HOME": str(home)}
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)

    def bash(command: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", command],
            cwd=shop if shop.exists() else home,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    install, layout, dev, then, production = blocks("sh")
    install_commands = commands(install)
    assert "pip wheel" in install_commands[2] and ".whl[testing,otel]" in install_commands[3]
    done = bash(" && ".join(install_commands))
    assert done.returncode == 0, done.stdout + done.stderr
    assert (shop / ".venv" / "bin" / "redo-hooks").exists()
    # The wheel, not the checkout: nothing of the venv points back at this repository.
    installed = bash(
        ".venv/bin/python -c 'import redo_hooks, opentelemetry.trace; print(redo_hooks.__file__)'"
    )
    assert installed.returncode == 0, installed.stderr
    assert str(shop / ".venv") in installed.stdout and str(ROOT) not in installed.stdout
    assert not list((shop / ".venv").rglob("*.pth")) or not any(
        str(ROOT) in pth.read_text() for pth in (shop / ".venv").rglob("*.pth")
    )

    [made] = commands(layout)
    assert bash(made).returncode == 0
    [code] = blocks("python")
    assert code.startswith("# shop/hooks.py\n")
    (shop / "shop" / "hooks.py").write_text(code)

    [dev_command] = commands(dev)
    keys_before = default_redis_keys()
    output: list[str] = []
    process = subprocess.Popen(
        ["bash", "-c", f"exec {dev_command} --port {free_port()}"],
        cwd=shop,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: output.extend(process.stdout or []), daemon=True)
    reader.start()
    try:
        wait_for(lambda: "receiver ready on" in "".join(output), 60, "redo-hooks dev to start")
        trigger, status, dead, mypy = commands(then)

        sent = bash(trigger, timeout=60)
        assert sent.returncode == 0, sent.stderr
        subject = re.search(r"for return (\w+)", sent.stdout)[1]  # type: ignore[index]
        wait_for(
            lambda: f"warehouse: return {subject} brings 1 item(s)" in "".join(output),
            30,
            "the handler to run",
        )

        for command, expected in ((status, "events waiting"), (dead, "no dead letters")):
            answer = bash(command, timeout=60)
            assert answer.returncode == 0, answer.stderr
            assert expected in answer.stdout
            assert "(the private Redis of `redo-hooks dev`" in answer.stderr
            assert "localhost:6379" not in answer.stderr

        checked = bash(mypy, timeout=300)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "Success: no issues found in 2 source files" in checked.stdout
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=60)
        reader.join(timeout=10)
        process.stdout.close()
    assert default_redis_keys() == keys_before  # the default Redis was never written

    # Without dev: serve, an event posted with the Bearer header, worker --burst.
    with RedisServer() as redis_server:
        port = str(free_port())
        script = "\n".join(commands(production))
        script = script.replace("redis://127.0.0.1:6390/0", redis_server.url).replace("8010", port)
        ran = bash(f"set -e\n{script}\nkill $!; wait", timeout=120)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert '"status":"accepted"' in ran.stdout, ran.stdout
        assert re.search(r"warehouse: return \w+ brings 1 item\(s\)", ran.stdout + ran.stderr)

    # testing.md's pytest pattern, from the wheel: an app with @hooks.on_worker and a
    # handler with backoff=5 passes without waiting for the backoff.
    fixtures = pytest_snippet().split("\n\ndef test_a_completed_return_is_booked")[0]
    fixtures = fixtures.replace("examples.shop.hooks import", "shop.refunds import")
    (shop / "shop" / "refunds.py").write_text(REFUNDS_APP)
    (shop / "test_refunds.py").write_text(fixtures + REFUNDS_TEST)
    tested = bash(
        ".venv/bin/pip install -q pytest && .venv/bin/python -m pytest -q -p no:cacheprovider"
        " -W error test_refunds.py",
        timeout=300,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "1 passed" in tested.stdout

    # Every extra installs from the wheel and does what it is for.
    wheel = re.search(r"([\w./-]+\.whl)", install_commands[3])[1]  # type: ignore[index]
    extras = bash(f'.venv/bin/pip install -q "{wheel}[dashboard,spec]"', timeout=300)
    assert extras.returncode == 0, extras.stdout + extras.stderr
    used = bash(
        ".venv/bin/python -c 'from redo_hooks.dashboard import create_dashboard; import yaml'"
        " && .venv/bin/redo-hooks check-spec --help && .venv/bin/redo-hooks dashboard --help"
    )
    assert used.returncode == 0, used.stdout + used.stderr

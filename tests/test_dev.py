"""`redo-hooks dev` + `redo-hooks trigger`, as the README tells a new user to run them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from redo_hooks.testing import env_without_redo_hooks, wait_for

from .processes import CLI, ROOT, STARTED, free_port

pytestmark = pytest.mark.slow


class Dev:
    """A `redo-hooks dev` process, its output collected line by line."""

    def __init__(self, app: str, cwd: Path, port: int) -> None:
        self.cwd = cwd
        self.env = {**env_without_redo_hooks(), "PYTHONPATH": f"{cwd}:{ROOT}"}
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [*CLI, "dev", app, "--port", str(port)],
            cwd=cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        STARTED.append(self.process)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            self.lines.append(raw.decode(errors="replace"))

    def text(self) -> str:
        return "".join(self.lines)

    def wait_for_output(self, pattern: str, timeout: float = 30, after: int = 0) -> re.Match[str]:
        found: list[re.Match[str]] = []

        def seen() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"dev exited {self.process.returncode}:\n{self.text()}")
            match = re.search(pattern, "".join(self.lines[after:]))
            if match:
                found.append(match)
            return bool(match)

        try:
            wait_for(seen, timeout, f"{pattern!r} in the output of redo-hooks dev")
        except TimeoutError as error:  # say what dev did print
            raise TimeoutError(f"{error}; it printed:\n{self.text()}") from None
        return found[0]

    def trigger(self, *args: str) -> str:
        result = subprocess.run(
            [*CLI, "trigger", *args],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, result.stderr.decode()
        return result.stdout.decode()

    def stop(self, *, whole_group: bool = False) -> int:
        """SIGINT dev, or (``whole_group``) every process of its group, as Ctrl-C does."""
        if whole_group:
            os.killpg(self.process.pid, signal.SIGINT)
        else:
            self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=60)
        self.reader.join(timeout=10)
        assert self.process.stdout is not None
        self.process.stdout.close()
        return code


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def dev_example(tmp_path: Path, port: int) -> Iterator[Dev]:
    dev = Dev("examples.shop.hooks:hooks", tmp_path, port)
    yield dev
    if dev.process.poll() is None:
        dev.stop()


def test_dev_and_trigger_run_the_example_handler_on_a_sample_event(dev_example: Dev) -> None:
    redis_url = dev_example.wait_for_output(r"at (redis://\S+)")[1]
    dev_example.wait_for_output(r"receiver ready on http://127\.0\.0\.1:\d+/")
    answer = dev_example.trigger("return.created")
    match = re.match(r"202 accepted: return\.created for return (\w+)", answer)
    assert match, answer
    dev_example.wait_for_output(rf"warehouse_notified .*return_id={match[1]}")
    # Successes show at INFO in dev (before: nothing, they were DEBUG).
    dev_example.wait_for_output(rf"\[info\s*\] handler_succeeded .*return_id={match[1]}")
    dev_example.wait_for_output(rf"\[info\s*\] event_accepted .*return_id={match[1]}")
    # The operator commands run here read dev's Redis, and say so.
    status = subprocess.run(
        [*CLI, "status", "examples.shop.hooks:hooks"],
        cwd=dev_example.cwd,
        env=dev_example.env,
        capture_output=True,
        timeout=60,
        check=True,
    )
    assert f"Redis {redis_url} (the private Redis of `redo-hooks dev`" in status.stderr.decode()
    # The private Redis keeps its data in the project folder, and stops on exit.
    assert (dev_example.cwd / ".redo-hooks" / "redis" / "appendonlydir").is_dir()
    # Ctrl-C reaches every process in the terminal's group: the receiver and the
    # worker finish with Redis still there (before: it died first, and the
    # workers' shutdown printed connection-refused tracebacks).
    mark = len(dev_example.lines)
    assert dev_example.stop(whole_group=True) == 0
    assert "Traceback" not in "".join(dev_example.lines[mark:])
    with pytest.raises(RedisConnectionError):
        Redis.from_url(redis_url, socket_connect_timeout=0.5).ping()


APP = """
from redo_hooks import RedoHooks, ReturnEvent

hooks = RedoHooks()


@hooks.on("return")
def handle(event: ReturnEvent) -> None:
    # One string: dev's other processes log to the same terminal, and a print of
    # several arguments can be split by their lines.
    print("handled {version} " + event.return_id, flush=True)
"""


def test_dev_reloads_the_receiver_and_the_worker_on_a_code_change(
    tmp_path: Path, port: int
) -> None:
    (tmp_path / "devapp.py").write_text(APP.format(version="v1"))
    dev = Dev("devapp:hooks", tmp_path, port)
    try:
        dev.wait_for_output(r"receiver ready on ")
        dev.trigger("return.created", "--return", "ret-1")
        dev.wait_for_output(r"handled v1 ret-1")
        mark = len(dev.lines)
        (tmp_path / "devapp.py").write_text(APP.format(version="v2"))
        dev.wait_for_output(r"devapp\.py changed: restarting", after=mark)
        dev.wait_for_output(r"receiver ready on ", after=mark)
        dev.trigger("return.updated", "--return", "ret-1", "--status", "complete")
        dev.wait_for_output(r"handled v2 ret-1", after=mark)
    finally:
        assert dev.stop() == 0
    # One shape for every line (before: watchfiles' "1 change detected" was JSON).
    assert [line for line in dev.lines if line.lstrip().startswith("{")] == []


def test_trigger_without_a_receiver_says_so(tmp_path: Path, port: int) -> None:
    result = subprocess.run(
        [*CLI, "trigger", "--url", f"http://127.0.0.1:{port}/", "--secret", "s"],
        cwd=tmp_path,
        env=env_without_redo_hooks(),
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert b"no answer from" in result.stderr

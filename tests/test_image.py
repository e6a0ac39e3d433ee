"""deploy/Dockerfile, built and run for a user's app where no Docker engine runs.

``tests/imagerun.py`` runs the Dockerfile's own steps in chroots (what it
does and does not reproduce is said there): the install by default from the
wheel in ``wheels/``, or from ``--build-arg REDO_HOOKS`` (a git URL here), a
clear failure without either, and the one HEALTHCHECK that fits the receiver
and the workers under a plain ``docker run``. Where a Docker daemon runs,
``test_deploy.py`` also builds the image with Docker itself.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx2 as httpx
import pytest
from redis import Redis

from redo_hooks.testing import sample_body, wait_for

from .conftest import SECRET
from .imagerun import BuildFailed, Container, Image, ImageBuilder, available
from .processes import ROOT, free_port

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("image")]

DOCKERFILE = ROOT / "deploy" / "Dockerfile"

#: A merchant's project: a package with its hooks, and nothing else.
HOOKS = """\
import os

import redis

from redo_hooks import RedoHooks

hooks = RedoHooks()


@hooks.on("return.created")
def ship(event):
    redis.Redis.from_url(os.environ["REDO_HOOKS_REDIS_URL"]).rpush("image:shipped", event.key)
"""


@pytest.fixture(scope="module", autouse=True)
def _runner_available() -> None:
    why = available()
    if why is not None:
        pytest.skip(f"the Dockerfile runner cannot work here: {why}")


def project(at: Path) -> Path:
    (at / "shop").mkdir(parents=True)
    (at / "shop" / "__init__.py").write_text("")
    (at / "shop" / "hooks.py").write_text(HOOKS)
    return at


def build_wheel(into: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(into), str(ROOT)],
        capture_output=True,
        timeout=300,
        check=True,
    )
    (wheel,) = into.glob("redo_hooks-*-py3-none-any.whl")
    return wheel


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    """The user's project with the redo-hooks wheel in wheels/, built with only APP given."""
    where = tmp_path_factory.mktemp("image")
    context = project(where / "context")
    build_wheel(context / "wheels")
    builder = ImageBuilder(DOCKERFILE, context, where / "build", {"APP": "shop.hooks:hooks"})
    try:
        return builder.build()
    except BuildFailed as failed:
        pytest.fail(str(failed)[-3000:])


def test_the_wheel_in_wheels_is_installed_by_default_and_runs_as_non_root(image: Image) -> None:
    """Before: the image installed only what requirements.txt named: without it, no
    redo-hooks at all."""
    box = image.container(image.stage.root.parent / "tmp-routes")
    routes = box.exec(image.command(["routes"]))
    assert routes.returncode == 0, routes.stderr
    assert "shop.hooks.ship" in routes.stdout
    # With its [dashboard] extra: the image serves every command.
    extra = box.exec(["python", "-c", "import jinja2, redo_hooks.dashboard"])
    assert extra.returncode == 0, extra.stderr
    assert box.exec(["id", "-u"]).stdout.strip() == "10001"


def test_without_a_wheel_or_a_requirement_the_build_fails_saying_what_to_do(
    tmp_path: Path,
) -> None:
    context = project(tmp_path / "context")
    builder = ImageBuilder(DOCKERFILE, context, tmp_path / "build", {"APP": "shop.hooks:hooks"})
    with pytest.raises(BuildFailed) as failed:
        builder.build()
    message = str(failed.value)
    assert "redo-hooks is not installed: put its wheel in wheels/" in message
    assert "--build-arg REDO_HOOKS=" in message
    # Nothing looked redo-hooks up on a package index (none publishes it).
    assert "Collecting redo-hooks" not in message


def test_a_git_url_given_as_redo_hooks_is_installed(tmp_path: Path) -> None:
    """``--build-arg REDO_HOOKS='redo-hooks[dashboard] @ git+https://…'``: pip clones the
    checkout's committed state inside the build (here from a git server of the test's own,
    over HTTP)."""
    context = project(tmp_path / "context")
    served = tmp_path / "git"
    subprocess.run(
        ["git", "clone", "-q", "--bare", f"file://{ROOT}", str(served / "redo-hooks.git")],
        capture_output=True,
        timeout=120,
        check=True,
    )
    subprocess.run(
        ["git", "update-server-info"], cwd=served / "redo-hooks.git", timeout=60, check=True
    )
    handler = functools.partial(QuietFiles, directory=str(served))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"git+http://127.0.0.1:{server.server_address[1]}/redo-hooks.git"
        builder = ImageBuilder(
            DOCKERFILE,
            context,
            tmp_path / "build",
            {"APP": "shop.hooks:hooks", "REDO_HOOKS": f"redo-hooks[dashboard] @ {url}"},
        )
        try:
            built = builder.build()
        except BuildFailed as failed:
            pytest.fail(str(failed)[-3000:])
        finally:
            server.shutdown()
    assert any(f"Cloning {url.removeprefix('git+')}" in line for line in builder.log)
    routes = built.container(tmp_path / "tmp").exec(built.command(["routes"]))
    assert routes.returncode == 0, routes.stderr
    assert "shop.hooks.ship" in routes.stdout


class QuietFiles(SimpleHTTPRequestHandler):
    """A dumb-HTTP git server's files, without a log line per request."""

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:  # each its own group: a worker's children included
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def healthy(box: Container) -> bool:
    return box.health().returncode == 0


def test_one_healthcheck_fits_the_receiver_and_the_workers_under_plain_docker_run(
    image: Image,
    redis_url: str,
    redis: Redis,
    tmp_path: Path,
    started: list[subprocess.Popen[bytes]],
) -> None:
    """Before: the HEALTHCHECK probed port 8000, so `docker run IMAGE worker` was marked
    unhealthy for good (a worker has no port), and restarted by whatever watched it."""
    env = {"REDO_HOOKS_REDIS_URL": redis_url, "REDO_HOOKS_SECRETS": SECRET}
    port = free_port()
    receiver = image.container(tmp_path / "receiver-tmp")
    workers = image.container(tmp_path / "worker-tmp")
    with (tmp_path / "receiver.log").open("wb") as log:
        command = ["serve", "--host", "0.0.0.0", "--port", str(port)]  # noqa: S104
        started.append(receiver.start(command, env, stderr=log, start_new_session=True))
    with (tmp_path / "worker.log").open("wb") as log:
        started.append(workers.start(["worker"], env, stderr=log, start_new_session=True))
    wait_for(lambda: healthy(receiver), 60, "the receiver's container to be healthy")
    wait_for(lambda: healthy(workers), 60, "the worker's container to be healthy")

    answer = httpx.post(
        f"http://127.0.0.1:{port}/",
        content=sample_body(return_id="ret-image", seq=1),
        headers={"Authorization": f"Bearer {SECRET}"},
    )
    assert answer.status_code == 202, answer.text
    wait_for(lambda: redis.llen("image:shipped") == 1, 60, "the image's worker to run the handler")

    # A worker whose parent stopped looping is unhealthy; alive again once it turns.
    serve, work = started
    work.send_signal(signal.SIGSTOP)
    stale = time.time() - 120
    os.utime(tmp_path / "worker-tmp" / "redo-hooks-alive", (stale, stale))
    probe = workers.health()
    assert probe.returncode == 1 and "last touched" in probe.stderr
    work.send_signal(signal.SIGCONT)
    wait_for(lambda: healthy(workers), 30, "the worker to touch its file again")

    # A receiver that does not answer is unhealthy.
    serve.send_signal(signal.SIGSTOP)
    probe = receiver.health()
    assert probe.returncode == 1 and "did not answer" in probe.stderr
    serve.send_signal(signal.SIGCONT)
    assert healthy(receiver)

    for process in started:
        process.send_signal(signal.SIGTERM)
    # (uvicorn raises the signal again once it stopped serving: Docker's 143.)
    assert serve.wait(timeout=60) in (0, -signal.SIGTERM)
    assert work.wait(timeout=60) == 0

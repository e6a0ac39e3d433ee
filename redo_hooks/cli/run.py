"""``redo-hooks run APP``: the receiver and its workers in one command, for a small shop.

One dyno or one VM: the receiver (uvicorn, in this process) and a worker
service (``redo-hooks worker --concurrency N``, a child process that
supervises its own worker processes). One SIGTERM stops both cleanly: the
receiver finishes its requests in flight, the workers the handler calls in
flight (``--grace-period``), then it exits. If the worker service exits on
its own, the receiver stops too and the command exits 1, so the platform
restarts the whole: a receiver that acknowledges events nothing runs is
never left up alone.

Its limits: one machine's CPU for both (the receiver's ingest and the
handlers compete), one receiver process, and a restart of either restarts
both. Past a few hundred events a second, or when handlers are heavy, run
``serve`` and ``worker`` as separate services (docs/deployment.md).
"""

from __future__ import annotations

import contextlib
import gc
import signal
import subprocess
import sys
import threading
from typing import Any

import click

from .. import logs
from ..errors import RedoHooksError
from .alive import announce, local_url
from .common import fail, load_app, set_up_tracing

log = logs.get_logger("redo_hooks.cli.run")


def run_together(
    asgi: Any,
    app: str,
    *,
    host: str,
    port: int,
    uvicorn_options: dict[str, Any],
    worker_args: list[str],
    log_args: list[str],
) -> int:
    """Serve ``asgi`` here and run the worker service beside it; the exit status."""
    import uvicorn

    command = [sys.executable, "-m", "redo_hooks.cli", *log_args, "worker", app, *worker_args]
    workers = subprocess.Popen(command)  # noqa: S603 - our own argv
    server = uvicorn.Server(uvicorn.Config(asgi, host=host, port=port, **uvicorn_options))
    lost = threading.Event()

    def watch() -> None:
        workers.wait()
        if not server.should_exit:  # not asked to stop: it died
            lost.set()
            log.error("run_workers_exited", code=workers.returncode)
            server.should_exit = True

    threading.Thread(target=watch, name="redo-hooks-run-watch", daemon=True).start()

    def stop(signum: int, frame: Any) -> None:
        # uvicorn handles the signal while it serves, then raises it again
        # once it stopped: here, where it must not end the process before
        # the workers have stopped too. Passed on to them at once.
        server.should_exit = True
        if workers.poll() is None:
            workers.send_signal(signal.SIGTERM)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    log.info("run_started", workers=workers.pid, port=port)
    try:
        server.run()  # returns after SIGTERM/SIGINT (uvicorn's handlers), or should_exit
    finally:
        if workers.poll() is None:
            workers.send_signal(signal.SIGTERM)  # the handlers in flight finish first
            with contextlib.suppress(KeyboardInterrupt):
                workers.wait()
    log.info("run_stopped", workers_code=workers.returncode)
    return 1 if lost.is_set() else (0 if workers.returncode in (0, None) else 1)


@click.command("run")
@click.argument("app", envvar="APP")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int, envvar="PORT")
@click.option(
    "--concurrency",
    default=1,
    show_default=True,
    type=click.IntRange(1),
    help="Worker processes beside the receiver.",
)
@click.option(
    "--grace-period",
    type=click.FloatRange(0),
    help="Seconds running handlers may take to finish after SIGTERM. Default: wait for them.",
)
@click.pass_context
def run_command(
    ctx: click.Context,
    app: str,
    *,
    host: str,
    port: int,
    concurrency: int,
    grace_period: float | None,
) -> None:
    """Run the receiver and N worker processes together: one dyno or VM (see its limits in
    docs/deployment.md). One SIGTERM stops both; if the workers die, so does the receiver."""
    from ..receiver.server import ServerLimits

    try:
        hooks = load_app(app)
        asgi = hooks.asgi()
        asgi.state.receiver.authenticator()  # refuse to start without a secret
    except RedoHooksError as error:
        fail(error)
        return
    set_up_tracing(hooks.settings, "redo-hooks-receiver")  # (the workers: their own)
    group = ctx.parent.params if ctx.parent else {}
    log_args = [
        "--log-level",
        group.get("log_level", "INFO"),
        "--log-format",
        group.get("log_format", "auto"),
    ]
    worker_args = ["--concurrency", str(concurrency)]
    if grace_period is not None:
        worker_args += ["--grace-period", str(grace_period)]
    announce(ctx, local_url(host, port, "/healthz"))  # (the workers stop it if they die)
    gc.freeze()
    code = run_together(
        asgi,
        app,
        host=host,
        port=port,
        uvicorn_options=ServerLimits().uvicorn_options(),
        worker_args=worker_args,
        log_args=log_args,
    )
    sys.exit(code)

"""``--concurrency N``: N worker processes under one parent.

The parent forks the children, forwards SIGTERM/SIGINT to them and exits
with the first non-zero exit code once all have ended.
"""

from __future__ import annotations

import multiprocessing
import os
import signal

from .runtime import App
from .worker import WorkerOptions, work


def run(hooks: App, options: WorkerOptions) -> int:
    """Run ``options.concurrency`` worker processes; return the exit code."""
    if options.concurrency <= 1:
        return work(hooks, options)
    context = multiprocessing.get_context("fork")
    children = [
        context.Process(target=_child, args=(hooks, options), name=f"redo-hooks-worker-{i}")
        for i in range(options.concurrency)
    ]
    for child in children:
        child.start()

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.pid is not None and child.is_alive():
                os.kill(child.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = 0
    for child in children:
        child.join()
        code = code or (child.exitcode or 0)
    return code


def _child(hooks: App, options: WorkerOptions) -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise SystemExit(work(hooks, options))

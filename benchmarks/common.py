"""Shared pieces of the benchmarks: processes, wrk, tables."""

from __future__ import annotations

import importlib.util
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx2 as httpx

from redo_hooks.testing import env_without_redo_hooks, wait_for

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret-0123456789abcdef"


def child_env(**extra: str) -> dict[str, str]:
    env = env_without_redo_hooks()
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def start(
    argv: Sequence[str], env: dict[str, str], health_url: str | None
) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        list(argv), env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    if health_url:

        def up() -> bool:
            if process.poll() is not None:
                raise SystemExit(f"{argv} exited with {process.returncode}")
            try:
                return httpx.get(health_url, timeout=0.5).status_code < 500
            except httpx.TransportError:
                return False

        wait_for(up, 30, " ".join(argv))
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def need(binary: str, install: str) -> str:
    path = shutil.which(binary)
    if not path:
        raise SystemExit(f"{binary} is not installed: {install}")
    return path


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def parse_wrk(output: str) -> dict[str, float]:
    """Requests/s and latency percentiles (ms) from ``wrk --latency`` output."""
    result: dict[str, float] = {}
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if not match:
        raise SystemExit(f"could not read wrk output:\n{output}")
    result["rps"] = float(match.group(1))
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        if m:
            result[f"p{pct}"] = float(m.group(1)) * _UNITS[m.group(2)]
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    result["non2xx"] = float(m.group(1)) if m else 0.0
    m = re.search(r"(\d+) requests in", output)
    result["requests"] = float(m.group(1)) if m else 0.0
    return result


def run_wrk(wrk: str, script: Path, url: str, connections: int, seconds: float) -> str:
    """One wrk run of ``script`` against ``url`` (one thread); its output, latencies included."""
    return subprocess.run(
        [wrk, "-t1", f"-c{connections}", "--timeout", "5s", "-s", str(script), "--latency",
         f"-d{seconds:g}s", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout  # fmt: skip


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append(
            "| "
            + " | ".join(c.rjust(w) if n else c.ljust(w) for c, w in zip(row, widths, strict=True))
            + " |"
        )
        if n == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def python() -> str:
    return sys.executable


def outcome(sent: dict[str, list[int]], ran: dict[str, list[int]]) -> dict[str, int]:
    """What happened to the events sent, per return, from the order they ran in.

    ``sent``: each return's acknowledged seqs; ``ran``: each return's seqs in
    the order the handler recorded them. Processed: acknowledged and run;
    lost: acknowledged, never run; duplicates: runs beyond the first (allowed:
    at-least-once); violations: a run after a later event of its return had run.
    """
    processed = duplicates = violations = lost = 0
    for subject, seqs in sent.items():
        runs = ran.get(subject, [])
        counts = Counter(runs)
        processed += sum(1 for s in seqs if s in counts)
        duplicates += sum(c - 1 for c in counts.values())
        lost += sum(1 for s in seqs if s not in counts)
        newest = -1
        for s in runs:
            if s < newest:
                violations += 1
            newest = max(newest, s)
    return {
        "processed": processed,
        "duplicates": duplicates,
        "violations": violations,
        "lost": lost,
    }


def drain(done: Callable[[], bool], seconds: float) -> float:
    """Poll ``done`` once a second, for up to ``seconds``; how long it took.

    The workers' bounded drain after posting stops (soak, chaos): ``done``
    says that nothing acknowledged is still unhandled.
    """
    began = time.monotonic()
    while time.monotonic() < began + seconds and not done():
        time.sleep(1)
    return time.monotonic() - began


def start_posters(
    url: str,
    subjects: Sequence[str],
    *,
    posters: int,
    rate: float,
    until: float,
    post: Callable[[httpx.Client, str], None],
) -> list[threading.Thread]:
    """``posters`` threads calling ``post(client, subject)`` at ``rate`` in all until ``until``.

    Each thread owns a share of the returns (so a return's events go one
    after another, as Redo sends them) and paces itself to its share of the
    rate; ``until`` is a ``time.monotonic()`` deadline. Join the threads.
    """

    def loop(index: int) -> None:
        mine = [s for n, s in enumerate(subjects) if n % posters == index]
        interval = posters / rate
        next_at = time.monotonic() + interval * index / posters
        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {SECRET}"}, timeout=10
        ) as client:
            while time.monotonic() < until:
                post(client, random.choice(mine))
                next_at += interval
                time.sleep(max(0.0, next_at - time.monotonic()))

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(posters)]
    for thread in threads:
        thread.start()
    return threads


#: The fixed ruler the ingest benchmarks compare with (``BENCH_YARDSTICK`` overrides).
YARDSTICK = Path(
    os.environ.get("BENCH_YARDSTICK", ROOT / "benchmarks/yardstick/reference_model.py")
)


def yardstick_model(path: Path = YARDSTICK) -> Any:
    """The yardstick's ``ReturnEvent`` class, or ``None`` where its file is absent."""
    spec = importlib.util.spec_from_file_location("reference_model", path)
    if spec is None or spec.loader is None or not path.exists():
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves its annotations there
    spec.loader.exec_module(module)
    return module.ReturnEvent

"""Liveness by a file, for containers: ``redo-hooks --alive-file F CMD`` and ``alive F``.

A container's health probe cannot tell by itself which command its image
runs: the receiver and the dashboard answer HTTP on their ports, the workers
have no port at all. So the running command says how to probe it, in one
file given before the command (``redo-hooks --alive-file F worker``; the
image's entrypoint gives it):

- a worker's parent touches the file every few seconds: it is alive while
  the file is recent;
- ``serve``, ``run`` and ``dashboard`` write into it the local URL that
  answers 200 while they serve (``/healthz``, or the dashboard's login page).

``redo-hooks alive F`` reads the file and probes accordingly, so one
HEALTHCHECK line fits every command of the image, under a plain
``docker run`` as under compose or Kubernetes.
"""

from __future__ import annotations

import ipaddress
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import click

from .. import logs

log = logs.get_logger("redo_hooks.cli.alive")

#: The key of ``--alive-file``'s value in the command group's ``ctx.meta``.
ALIVE_FILE = "redo_hooks.alive_file"


def given_alive_file(ctx: click.Context) -> str | None:
    """The ``--alive-file`` given before the command (``redo-hooks --alive-file F …``)."""
    value = ctx.meta.get(ALIVE_FILE)
    return str(value) if value else None


def local_url(host: str, port: int, path: str) -> str:
    """The URL this machine reaches a server bound to ``host:port`` at.

    A wildcard bind (``0.0.0.0``, ``::``) is reached on loopback.
    """
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:  # a name
        return f"http://{host}:{port}{path}"
    if address.is_unspecified:
        address = ipaddress.ip_address("::1" if address.version == 6 else "127.0.0.1")
    shown = f"[{address}]" if address.version == 6 else str(address)
    return f"http://{shown}:{port}{path}"


def announce(ctx: click.Context, url: str) -> None:
    """Write ``url`` into the ``--alive-file``, if one was given, for ``redo-hooks alive``."""
    path = given_alive_file(ctx)
    if path is None:
        return
    try:
        Path(path).write_text(url + "\n")
    except OSError as exc:  # the server still serves: the probe will say so
        log.warning("alive_file_not_written", path=path, error=type(exc).__name__)


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--within",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="For a worker: seconds since the last touch that still count as alive.",
)
@click.option(
    "--timeout",
    default=2.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="For a server: seconds its URL may take to answer.",
)
def alive(file: Path, within: float, timeout: float) -> None:
    """Exit 0 if the command that keeps FILE (its --alive-file) is alive, else 1.

    A worker touched FILE within --within seconds; a server (serve, run,
    dashboard) answers 200 at the URL it wrote in FILE. Needs no Redis:
    restarting a process cannot bring Redis back.
    """
    try:
        stat = file.stat()
        url = file.read_text().strip()
    except OSError:
        click.echo(f"redo-hooks: {file} does not exist (nothing wrote it yet)", err=True)
        sys.exit(1)
    if url.startswith("http://"):
        try:
            with urllib.request.urlopen(url, timeout=timeout) as reply:  # noqa: S310 - http only
                status = reply.status
        except urllib.error.HTTPError as error:  # it answered, with an error status
            status = error.code
            error.close()
        except OSError as exc:  # (URLError among them)
            click.echo(f"redo-hooks: {url} did not answer: {exc}", err=True)
            sys.exit(1)
        if status != 200:
            click.echo(f"redo-hooks: {url} answered {status}", err=True)
            sys.exit(1)
        return
    age = time.time() - stat.st_mtime
    if age > within:
        click.echo(f"redo-hooks: {file} last touched {age:.0f} s ago", err=True)
        sys.exit(1)

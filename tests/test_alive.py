"""``--alive-file`` and ``redo-hooks alive``: one probe for every command of an image."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
import uvicorn
from click.testing import CliRunner, Result
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from redo_hooks.cli import main
from redo_hooks.cli.alive import local_url

from .conftest import SECRET
from .processes import free_port
from .servers import serve_in_thread


def probe(file: Path, *options: str) -> Result:
    return CliRunner().invoke(main, ["alive", str(file), *options])


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("0.0.0.0", "http://127.0.0.1:8000/healthz"),  # noqa: S104 - what a container binds
        ("::", "http://[::1]:8000/healthz"),
        ("127.0.0.1", "http://127.0.0.1:8000/healthz"),
        ("10.1.2.3", "http://10.1.2.3:8000/healthz"),
        ("::1", "http://[::1]:8000/healthz"),
        ("[::1]", "http://[::1]:8000/healthz"),
        ("localhost", "http://localhost:8000/healthz"),
    ],
)
def test_the_local_url_of_a_bind_address(host: str, url: str) -> None:
    assert local_url(host, 8000, "/healthz") == url


def test_a_file_nothing_wrote_is_not_alive(tmp_path: Path) -> None:
    result = probe(tmp_path / "missing")
    assert result.exit_code == 1
    assert "does not exist" in result.stderr


def test_a_touched_file_is_alive_until_it_is_older_than_within(tmp_path: Path) -> None:
    file = tmp_path / "alive"
    file.touch()
    assert probe(file).exit_code == 0
    old = time.time() - 40
    os.utime(file, (old, old))
    assert probe(file, "--within", "60").exit_code == 0
    result = probe(file)  # 30 s by default
    assert result.exit_code == 1 and "last touched 40 s ago" in result.stderr


def test_a_url_in_the_file_is_probed_whatever_the_files_age(tmp_path: Path) -> None:
    statuses = iter([200, 503])

    async def healthz(request: object) -> PlainTextResponse:
        return PlainTextResponse("", status_code=next(statuses))

    file = tmp_path / "alive"
    with serve_in_thread(Starlette(routes=[Route("/healthz", healthz)])) as url:
        file.write_text(url + "/healthz\n")
        old = time.time() - 3600  # a server writes its URL once: the age says nothing
        os.utime(file, (old, old))
        assert probe(file).exit_code == 0
        refused = probe(file)
        assert refused.exit_code == 1 and "503" in refused.stderr
    file.write_text(f"http://127.0.0.1:{free_port()}/healthz\n")  # nothing listens
    result = probe(file)
    assert result.exit_code == 1 and "did not answer" in result.stderr


def test_serve_and_the_dashboard_write_their_url_into_the_alive_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each before it serves (uvicorn's run is replaced: what it was given is checked)."""
    ran: list[int] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: ran.append(options["port"]))
    # An app of its own: one imported with a secret stays in sys.modules for other tests.
    (tmp_path / "alive_probe_app.py").write_text(
        f"from redo_hooks import RedoHooks\nhooks = RedoHooks(secrets=[{SECRET!r}])\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "alive_probe_app", raising=False)
    file = tmp_path / "alive"
    for command, path in (("serve", "/healthz"), ("dashboard", "/login")):
        args = ["--alive-file", str(file), command, "alive_probe_app:hooks", "--port", "8123"]
        if command == "dashboard":
            args += ["--no-token"]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        assert file.read_text() == f"http://127.0.0.1:8123{path}\n"
        file.unlink()
    assert ran == [8123, 8123]

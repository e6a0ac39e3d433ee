"""Redis over TLS (``rediss://``): receiver, workers, CLI and dashboard, with a throwaway CA.

Managed Redis (ElastiCache, Upstash, Heroku Redis…) speaks TLS, often with
the provider's own CA and sometimes with client certificates. redo-hooks
passes ``rediss://`` URLs to redis-py as they are, so the query string
carries the TLS options: ``ssl_ca_certs``, ``ssl_certfile``/``ssl_keyfile``,
``ssl_cert_reqs=none``. A real ``redis-server --tls-port``, certificates made
here with ``openssl``, and every process redo-hooks runs.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from redis.exceptions import ConnectionError as RedisConnectionError
from starlette.testclient import TestClient

from redo_hooks import RedoHooks
from redo_hooks.cli import main
from redo_hooks.dev.redis_server import RedisServer, free_port
from redo_hooks.store.connections import redis_client
from redo_hooks.testing import sample_body

from .conftest import SECRET
from .processes import env, start_workers, stop

pytestmark = pytest.mark.slow

APP = "tests.tls_app:hooks"


@dataclass(frozen=True)
class Tls:
    port: int
    ca: Path
    client_cert: Path
    client_key: Path

    def url(self, **options: str) -> str:
        query = "&".join(f"{k}={quote(v, safe='/')}" for k, v in options.items())
        return f"rediss://127.0.0.1:{self.port}/0" + (f"?{query}" if query else "")

    @property
    def verified(self) -> str:
        """The URL a production app would use: the CA, and a client certificate."""
        return self.url(
            ssl_ca_certs=str(self.ca),
            ssl_certfile=str(self.client_cert),
            ssl_keyfile=str(self.client_key),
        )


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certificates(where: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by it."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
            "/CN=redo-hooks test CA", "-keyout", "ca.key", "-out", "ca.crt", cwd=where)  # fmt: skip
    (where / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=where)  # fmt: skip
        extension = ["-extfile", "server.ext"] if name == "server" else []
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "1", "-out", f"{name}.crt", *extension,
                cwd=where)  # fmt: skip


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tls]:
    where = tmp_path_factory.mktemp("tls")
    make_certificates(where)
    port = free_port()
    options = (
        "--tls-port", str(port),
        "--tls-cert-file", str(where / "server.crt"),
        "--tls-key-file", str(where / "server.key"),
        "--tls-ca-cert-file", str(where / "ca.crt"),
        "--tls-auth-clients", "optional",
    )  # fmt: skip
    with RedisServer(options=options) as server:
        yield Tls(port, where / "ca.crt", where / "client.crt", where / "client.key")
        redis_client(server.url).flushall()


def test_the_receiver_a_worker_the_cli_and_the_dashboard_work_over_tls(tls: Tls) -> None:
    url = tls.verified
    hooks = RedoHooks(redis_url=url, secrets=[SECRET], dashboard_token=["admin:ops=" + "t" * 24])
    hooks.add(lambda event: None, "return", name="tls.noop")
    auth = {"Authorization": f"Bearer {SECRET}"}
    with TestClient(hooks.asgi()) as client:
        answer = client.post("/", content=sample_body(return_id="ret-tls"), headers=auth)
        assert answer.status_code == 202, answer.text
        assert client.get("/readyz").status_code == 200
    worker = start_workers(APP, env(url, SECRET), "--burst")
    assert worker.wait(timeout=60) == 0
    with redis_client(url) as redis:
        assert redis.lrange("tls:handled", 0, -1) == [b"ret-tls"]
    status = CliRunner().invoke(main, ["status", APP, "--json"], env={"REDO_HOOKS_REDIS_URL": url})
    assert status.exit_code == 0, status.output
    assert '"dead_letters": 0' in status.stdout or '"dead_letters":0' in status.stdout
    with TestClient(hooks.dashboard(), base_url="http://127.0.0.1") as dashboard:
        page = dashboard.get("/events", headers={"Authorization": "Bearer " + "t" * 24})
        assert page.status_code == 200 and "ret-tls" in page.text
    stop(worker)


def test_verify_none_connects_without_the_ca_and_a_wrong_ca_is_refused(
    tls: Tls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(sys.modules, "tests.tls_app", raising=False)  # settings read afresh
    with redis_client(tls.url(ssl_cert_reqs="none")) as unverified:
        assert unverified.ping()
    other = tmp_path / "other"
    other.mkdir()
    make_certificates(other)
    wrong_ca = tls.url(ssl_ca_certs=str(other / "ca.crt"))
    with (
        redis_client(wrong_ca) as wrong,
        pytest.raises(RedisConnectionError, match="certificate verify failed"),
    ):
        wrong.ping()
    status = CliRunner().invoke(
        main,
        ["status", APP],
        env={"REDO_HOOKS_REDIS_URL": tls.url(ssl_ca_certs=str(other / "ca.crt"))},
    )
    assert status.exit_code == 1
    assert "did not answer" in status.stderr and "certificate verify failed" in status.stderr

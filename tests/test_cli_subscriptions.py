"""`redo-hooks subscribe`, `subscriptions …` and `rotate-secret` against the fake Redo API."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result
from dotenv import dotenv_values
from redis import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from redo_hooks.cli import main

from .conftest import MakeHooks, snapshot
from .fake_redo import API_SECRET, FakeRedo
from .servers import serve_in_thread

URL = "https://hooks.example.com/redo"
STORE = "store-a"


@pytest.fixture
def fake() -> FakeRedo:
    return FakeRedo()


@pytest.fixture
def api_env(fake: FakeRedo) -> Iterator[dict[str, str]]:
    with serve_in_thread(fake.app()) as url:
        yield {"REDO_API_URL": url, "REDO_API_SECRET": API_SECRET}


def run(env: dict[str, str], *args: str, stdin: str | None = None) -> Result:
    return CliRunner(env=env).invoke(main, list(args), input=stdin)


def subscribe(env: dict[str, str], *extra: str) -> tuple[str, str]:
    """Subscribe URL for STORE (no receiver to probe); return (webhook id, printed entry)."""
    result = run(env, "subscribe", "--store", STORE, "--url", URL, "--no-probe", *extra)
    assert result.exit_code == 0, result.output
    line = result.stdout.strip()
    webhook_id = re.search(r"(?:created|updated) webhook (\S+)", result.stderr)[1]  # type: ignore[index]
    return webhook_id, line


def test_subscribe_creates_then_updates_and_prints_the_secrets_entry(
    api_env: dict[str, str], fake: FakeRedo
) -> None:
    webhook_id, line = subscribe(api_env)
    token = fake.token_of(webhook_id)
    assert token is not None and len(token) >= 40
    assert line == f"{STORE}={token}"  # an entry to merge into REDO_HOOKS_SECRETS
    assert fake.webhooks[webhook_id]["externalId"] == f"redo-hooks:{STORE}"
    moved = "https://hooks.example.com/redo/v2"
    again = run(
        api_env,
        *("subscribe", "--store", STORE, "--url", moved, "--no-probe"),
        *("--secret", "given-secret-1234567890"),
    )
    assert again.exit_code == 0, again.output
    # A corrected URL updates the store's subscription instead of adding one.
    assert f"updated webhook {webhook_id}" in again.stderr
    assert again.stdout.strip() == f"{STORE}=given-secret-1234567890"
    assert list(fake.webhooks) == [webhook_id]
    assert fake.token_of(webhook_id) == "given-secret-1234567890"
    assert fake.webhooks[webhook_id]["callback"]["url"] == moved


def test_subscribe_refuses_a_plain_http_url_before_calling_redo(
    api_env: dict[str, str], fake: FakeRedo
) -> None:
    result = run(api_env, "subscribe", "--store", STORE, "--url", "http://example.com/")
    assert result.exit_code == 2
    assert "https://" in result.output
    assert fake.requests == []


def test_without_an_api_secret_the_commands_say_how_to_set_it(api_env: dict[str, str]) -> None:
    env = {**api_env, "REDO_API_SECRET": ""}
    result = run(env, "subscriptions", "list", "--store", STORE)
    assert result.exit_code == 2
    assert "REDO_API_SECRET" in result.output


def test_api_errors_are_reported_with_redos_detail(api_env: dict[str, str]) -> None:
    result = run({**api_env, "REDO_API_SECRET": "wrong"}, "subscriptions", "list", "--store", STORE)
    assert result.exit_code == 1
    assert "HTTP 401 Unauthorized: invalid API secret" in result.stderr
    missing = run(api_env, "subscriptions", "show", "nope")
    assert missing.exit_code == 1
    assert "no webhook nope" in missing.stderr


def test_list_show_replay_delete(api_env: dict[str, str], fake: FakeRedo) -> None:
    webhook_id, line = subscribe(api_env, "--backfill", "--external-id", "mine")
    token = line.rsplit("=", 1)[1]
    listed = run(api_env, "subscriptions", "list", "--store", STORE)
    assert listed.exit_code == 0
    assert webhook_id in listed.output and URL in listed.output and "mine" in listed.output
    as_json = run(api_env, "subscriptions", "list", "--store", STORE, "--json")
    assert [orjson.loads(x)["id"] for x in as_json.stdout.splitlines()] == [webhook_id]
    shown = run(api_env, "subscriptions", "show", webhook_id, "--json")
    assert orjson.loads(shown.stdout)["hasToken"] is True
    for result in (listed, as_json, shown):
        assert token not in result.output
    replayed = run(api_env, "subscriptions", "replay", webhook_id, "--since", "2h")
    assert replayed.exit_code == 0, replayed.output
    assert [w for w, _ in fake.replays] == [webhook_id]
    bad = run(api_env, "subscriptions", "replay", webhook_id, "--since", "yesterday")
    assert bad.exit_code == 1 and "cannot read the time" in bad.stderr
    assert len(fake.replays) == 1
    refused = run(api_env, "subscriptions", "delete", webhook_id, stdin="n\n")
    assert refused.exit_code == 1
    assert webhook_id in fake.webhooks
    deleted = run(api_env, "subscriptions", "delete", webhook_id, "--yes")
    assert deleted.exit_code == 0
    assert fake.webhooks == {}


def test_rotate_secret_switches_only_once_the_receiver_accepts_the_new_one(
    api_env: dict[str, str], fake: FakeRedo, make_hooks: MakeHooks, redis: Redis
) -> None:
    webhook_id, line = subscribe(api_env, "--no-label")
    old = line
    new = "brand-new-secret-0123456789abcdef"
    rotate = ["rotate-secret", webhook_id, "--new-secret", new, "--yes"]

    with serve_in_thread(make_hooks(secrets=[old]).asgi()) as receiver:
        refused = run(api_env, *rotate, "--probe-url", receiver + "/")
    assert refused.exit_code == 1
    assert "does not accept the new secret" in refused.stderr
    assert "nothing was changed at Redo" in refused.stderr
    assert fake.token_of(webhook_id) == old

    with serve_in_thread(make_hooks(secrets=[old, new]).asgi()) as receiver:
        done = run(api_env, *rotate, "--probe-url", receiver + "/")
    assert done.exit_code == 0, done.output
    assert fake.token_of(webhook_id) == new
    assert done.stdout.strip() == new
    assert "step 3 of 3" in done.stderr
    assert old not in done.output
    assert snapshot(redis) == {}  # the probes stored nothing


def test_rotate_secret_asks_before_switching(api_env: dict[str, str], fake: FakeRedo) -> None:
    webhook_id, _line = subscribe(api_env)
    old = fake.token_of(webhook_id)
    aborted = run(api_env, "rotate-secret", webhook_id, "--no-probe", stdin="n\n")
    assert aborted.exit_code == 1
    assert fake.token_of(webhook_id) == old
    done = run(api_env, "rotate-secret", webhook_id, "--no-probe", "--store", STORE, stdin="y\n")
    assert done.exit_code == 0, done.output
    entry = done.stdout.strip().splitlines()[0]
    assert entry == f"{STORE}={fake.token_of(webhook_id)}"
    assert fake.token_of(webhook_id) != old


def _impostor(status: int, content_type: str = "application/json") -> Starlette:
    """Something at the probe URL that is not the receiver: a proxy, a wrong path, another app."""

    async def answer(request: Request) -> Response:
        body = b'{"type": "about:blank", "status": %d}' % status
        return Response(body, status_code=status, media_type=content_type)

    return Starlette(routes=[Route("/", answer, methods=["POST"])])


@pytest.mark.parametrize(
    ("status", "content_type"),
    [
        (404, "application/json"),  # a wrong path
        (405, "text/plain"),  # a route that takes no POST
        (200, "text/html"),  # a proxy's or another app's page
        (422, "application/json"),  # someone else's validation error
        (422, "application/problem+json"),  # someone else's problem document
    ],
)
def test_rotate_secret_counts_only_the_receivers_own_answer(
    api_env: dict[str, str], fake: FakeRedo, status: int, content_type: str
) -> None:
    webhook_id, line = subscribe(api_env, "--no-label")
    old = line
    rotate = ["rotate-secret", webhook_id, "--new-secret", "n" * 40, "--yes", "--wait", "0"]
    with serve_in_thread(_impostor(status, content_type)) as url:
        refused = run(api_env, *rotate, "--probe-url", url + "/")
    assert refused.exit_code == 1, refused.output
    assert "nothing was changed at Redo" in refused.stderr
    assert fake.token_of(webhook_id) == old


def test_rotate_secret_probe_at_a_wrong_path_of_a_real_receiver_changes_nothing(
    api_env: dict[str, str], fake: FakeRedo, make_hooks: MakeHooks
) -> None:
    webhook_id, line = subscribe(api_env, "--no-label")
    old, new = line, "brand-new-secret-0123456789abcdef"
    rotate = ["rotate-secret", webhook_id, "--new-secret", new, "--yes", "--wait", "0"]
    with serve_in_thread(make_hooks(secrets=[old, new]).asgi()) as receiver:
        refused = run(api_env, *rotate, "--probe-url", receiver + "/wrong-path")
    assert refused.exit_code == 1, refused.output
    assert fake.token_of(webhook_id) == old


def test_subscribe_creates_nothing_until_the_receiver_accepts_the_secret(
    api_env: dict[str, str], fake: FakeRedo, make_hooks: MakeHooks, redis: Redis
) -> None:
    """Before: subscribe came first, and Redo's first events met a 401 until deployed."""
    token = "deployed-secret-0123456789abcdef"
    with serve_in_thread(make_hooks(secrets=["someone-elses-secret-012345"]).asgi()) as receiver:
        refused = run(
            api_env,
            *("subscribe", "--store", STORE, "--url", URL, "--secret", token),
            *("--probe-url", receiver + "/", "--yes"),
        )
    assert refused.exit_code == 1, refused.output
    assert "nothing was created at Redo" in refused.stderr
    assert fake.webhooks == {}

    with serve_in_thread(make_hooks(secrets=[f"{STORE}={token}"]).asgi()) as receiver:
        done = run(
            api_env,
            *("subscribe", "--store", STORE, "--url", URL, "--secret", token),
            *("--probe-url", receiver + "/"),
        )
    assert done.exit_code == 0, done.output  # deployed already: no question asked
    assert f"the receiver at {receiver}/ accepts the secret" in done.stderr
    [webhook] = fake.webhooks.values()
    assert fake.token_of(webhook["id"]) == token
    assert snapshot(redis) == {}  # the probes stored nothing


def test_subscribe_with_a_new_secret_asks_for_the_deploy_then_checks_it(
    api_env: dict[str, str], fake: FakeRedo, make_hooks: MakeHooks
) -> None:
    with serve_in_thread(make_hooks(secrets=["old-secret-0123456789abcdef"]).asgi()) as receiver:
        aborted = run(
            api_env,
            *("subscribe", "--store", STORE, "--url", URL, "--probe-url", receiver + "/"),
            stdin="n\n",
        )
    assert aborted.exit_code == 1
    assert "add this entry to its" in aborted.stderr and aborted.stdout.startswith(f"{STORE}=")
    assert fake.webhooks == {}


def test_subscribe_warns_before_adding_a_second_subscription_for_the_store(
    api_env: dict[str, str], fake: FakeRedo
) -> None:
    """Before: a corrected URL (the old default external id held the URL) subscribed twice."""
    first, _ = subscribe(api_env, "--external-id", f"redo-hooks:{URL}")
    other = ("subscribe", "--store", STORE, "--url", URL + "/v2", "--no-probe")
    declined = run(api_env, *other, stdin="n\n")
    assert declined.exit_code == 1
    assert "already has 1 webhook subscription(s)" in declined.stderr
    assert f"{first}  {URL}  (external id: redo-hooks:{URL})" in declined.stderr
    assert "--external-id <its external id>" in declined.stderr
    assert list(fake.webhooks) == [first]
    added = run(api_env, *other, "--yes")
    assert added.exit_code == 0, added.output
    assert len(fake.webhooks) == 2


def test_subscriptions_list_shows_whole_ids_in_aligned_columns(
    api_env: dict[str, str], fake: FakeRedo
) -> None:
    """Before: ids and external ids were cut at 24/30 characters: two rows looked alike."""
    long_id = "redo-hooks:https://hooks.example.com/a/very/long/path/that/goes/on"
    first, _ = subscribe(api_env, "--external-id", long_id)
    second, _ = subscribe(api_env, "--external-id", long_id + "/v2", "--yes")
    listed = run(api_env, "subscriptions", "list", "--store", STORE)
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["id", first, second]
    assert long_id in lines[1] and long_id + "/v2" in lines[2]
    assert len({line.index(URL) for line in lines[1:]}) == 1  # the url column lines up


def test_subscribe_merges_the_secret_into_an_env_files_one_line(
    api_env: dict[str, str], fake: FakeRedo, tmp_path: Path
) -> None:
    """Before: `subscribe >> .env` added a second REDO_HOOKS_SECRETS line; dotenv kept the last."""
    env_file = tmp_path / ".env"
    env_file.write_text("REDIS=x\nREDO_HOOKS_SECRETS=other-store=tok1\nREDO_HOOKS_SECRETS=b=tok2\n")
    _, entry = subscribe(api_env, "--env-file", str(env_file))
    assert env_file.read_text() == f"REDIS=x\nREDO_HOOKS_SECRETS=other-store=tok1,b=tok2,{entry}\n"
    assert dotenv_values(env_file)["REDO_HOOKS_SECRETS"] == f"other-store=tok1,b=tok2,{entry}"
    fresh = tmp_path / "new.env"
    _, entry = subscribe(api_env, "--env-file", str(fresh))
    assert fresh.read_text() == f"REDO_HOOKS_SECRETS={entry}\n"
    assert fresh.stat().st_mode & 0o777 == 0o600

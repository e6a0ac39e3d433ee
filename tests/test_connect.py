"""Redis URLs: plain and Sentinel, parsed, validated and masked."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from redo_hooks import ConfigurationError, RedoHooks, Settings
from redo_hooks.dev.redis_server import free_port
from redo_hooks.redis_url import SentinelURL, mask
from redo_hooks.store.connections import redis_client


def test_a_sentinel_url_names_the_sentinels_the_service_and_the_db() -> None:
    parsed = SentinelURL.parse(
        "redis+sentinel://:s3cret@10.0.0.1:26379,sentinel-b:26380/mymaster/2"
    )
    assert parsed == SentinelURL(
        sentinels=(("10.0.0.1", 26379), ("sentinel-b", 26380)),
        service="mymaster",
        db=2,
        password="s3cret",
    )
    assert SentinelURL.parse("redis+sentinel://h:1/svc").db == 0


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+sentinel://h1:26379,h2/mymaster/0", "not host:port"),
        ("redis+sentinel://h1:26379", "names the service"),
        ("redis+sentinel://h1:26379/mymaster/zero", "names the service"),
    ],
)
def test_a_bad_sentinel_url_is_refused_when_settings_load(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Settings.load({"REDO_HOOKS_REDIS_URL": url})


# Characters a URL's userinfo may hold unencoded (RFC 3986), ':' aside.
USERINFO = "abcXYZ0189-._~!$&'()*+,;="


@given(password=st.text(alphabet=USERINFO, min_size=1))
def test_passwords_are_masked_in_every_kind_of_url(password: str) -> None:
    for url in (
        f"redis://:{password}@host:6379/0",
        f"redis://user:{password}@host:6379/0",
        f"redis+sentinel://:{password}@h1:26379,h2:26379/mymaster/0",
    ):
        shown = mask(url)
        assert shown == url.replace(f":{password}@", ":***@", 1)
        assert Settings.load({}, redis_url=url).redis_url_safe == shown


def test_a_plain_url_gives_a_plain_client(redis_url: str) -> None:
    client = redis_client(redis_url)
    assert client.ping()
    client.close()


def start_up_warnings(hooks: RedoHooks) -> list[MutableMapping[str, Any]]:
    """The ``sentinel_without_replica_ack`` warnings of a receiver's start-up."""
    hooks.asgi()

    async def start() -> None:
        async with hooks.lifespan():
            pass

    with capture_logs() as logs:
        asyncio.run(start())
    return [e for e in logs if e["event"] == "sentinel_without_replica_ack"]


@pytest.mark.parametrize(("replicas_ack", "warned"), [(0, True), (1, False)])
def test_a_sentinel_url_without_replica_acks_warns_at_start_up_naming_the_setting(
    replicas_ack: int, warned: bool
) -> None:
    port = free_port()  # no Sentinel there: start-up must not need Redis
    hooks = RedoHooks(
        redis_url=f"redis+sentinel://127.0.0.1:{port}/mymaster",
        secrets=["a-strong-enough-secret-0123456789"],
        min_replicas_ack=replicas_ack,
        redis_timeout=0.5,
    )
    warnings = start_up_warnings(hooks)
    assert bool(warnings) == warned
    if warned:
        assert "REDO_HOOKS_MIN_REPLICAS_ACK" in str(warnings[0]["fix"])


def test_a_plain_url_never_warns_about_replica_acks(redis_url: str) -> None:
    hooks = RedoHooks(redis_url=redis_url, secrets=["a-strong-enough-secret-0123456789"])
    assert start_up_warnings(hooks) == []

"""Settings: environment, keywords, unknown names, secrets."""

from __future__ import annotations

import pytest

from redo_hooks import ConfigurationError, RedoHooks, Settings


def test_environment_variables_are_read_and_secrets_split_on_commas(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDO_HOOKS_SECRETS", " one , two ,")
    monkeypatch.setenv("REDO_HOOKS_REDIS_URL", "redis://example:6390/3")
    monkeypatch.setenv("REDO_HOOKS_DEDUPE_TTL", "60")
    settings = Settings.load()
    assert [s.get_secret_value() for s in settings.secrets] == ["one", "two"]
    assert settings.redis_url == "redis://example:6390/3"
    assert settings.dedupe_ttl == 60


def test_defaults() -> None:
    settings = Settings.load({})
    assert settings.redis_url == "redis://localhost:6379/0"
    assert settings.secrets == []
    assert settings.dedupe_ttl == 86_400
    assert settings.max_body_bytes == 1 << 20


def test_keywords_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDO_HOOKS_QUEUE", "from-env")
    assert RedoHooks(queue="from-kwarg").settings.queue == "from-kwarg"
    assert RedoHooks().settings.queue == "from-env"


def test_unknown_settings_are_errors_naming_the_valid_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match=r"REDO_HOOKS_SECRET\b.*valid settings"):
        Settings.load({"REDO_HOOKS_SECRET": "typo"})
    with pytest.raises(ConfigurationError, match="secret"):
        RedoHooks(secret="typo")  # type: ignore[call-arg]
    monkeypatch.setenv("REDO_HOOKS_REDISURL", "x")
    with pytest.raises(ConfigurationError, match="REDO_HOOKS_REDISURL"):
        RedoHooks()


def test_invalid_values_are_errors_that_do_not_echo_the_value() -> None:
    with pytest.raises(ConfigurationError, match="dedupe_ttl"):
        Settings.load({"REDO_HOOKS_DEDUPE_TTL": "-5"})
    with pytest.raises(ConfigurationError) as caught:
        Settings.load({"REDO_HOOKS_SECRETS": ","}, secrets=["ok", ""])
    assert "empty" in str(caught.value)


def test_secrets_and_redis_passwords_never_show_in_reprs() -> None:
    hooks = RedoHooks(secrets=["topsecret-1"], redis_url="redis://:hunter2@db:6379/0")
    for text in (repr(hooks), repr(hooks.settings), str(hooks.settings)):
        assert "topsecret-1" not in text
        assert "hunter2" not in text
    assert hooks.settings.redis_url_safe == "redis://:***@db:6379/0"


def test_a_settings_object_and_keyword_overrides_combine() -> None:
    base = Settings.load({}, queue="q1", dedupe_ttl=60, secrets=["s1"])
    hooks = RedoHooks(base, dedupe_ttl=120)
    assert (hooks.settings.queue, hooks.settings.dedupe_ttl) == ("q1", 120)
    assert [s.get_secret_value() for s in hooks.settings.secrets] == ["s1"]
    with pytest.raises(ConfigurationError, match="dedupe_tl"):
        RedoHooks(base, dedupe_tl=1)  # type: ignore[call-arg]


def test_redis_url_falls_back_on_the_platforms_redis_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """Heroku and Render attach Redis as REDIS_URL; REDO_HOOKS_REDIS_URL and keywords win."""
    platform = "rediss://:pw@platform.example.com:6380/0"
    assert Settings.load({"REDIS_URL": platform}).redis_url == platform
    both = {"REDIS_URL": platform, "REDO_HOOKS_REDIS_URL": "redis://ours:6379/1"}
    assert Settings.load(both).redis_url == "redis://ours:6379/1"
    assert Settings.load({"REDIS_URL": platform}, redis_url="redis://kw/2").redis_url == (
        "redis://kw/2"
    )
    monkeypatch.setenv("REDIS_URL", platform)
    assert RedoHooks().settings.redis_url == platform  # from the process environment too
    assert Settings.load({}).redis_url == "redis://localhost:6379/0"  # unset: the default

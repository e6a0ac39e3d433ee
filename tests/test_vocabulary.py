"""One vocabulary, typed settings, and the 0.2 names that still work with a warning.

Names decided once (docs/design.md, "Public API"): an event's ``name``
(``"return.created"``) beside the body's ``type``; ``return_id`` for the
return's id; ``"return"`` for every return event; ``on_worker`` and
``on_worker_lifespan``; ``redo_hooks.admin.Admin`` as the one operator entry.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from redo_hooks import EVENT_NAMES, HandlerContext, RedoHooks, ReturnEvent
from redo_hooks.admin import Admin, DeadFilter, EventFilter, Selection
from redo_hooks.cli import main
from redo_hooks.dispatch.callbacks import Failure
from redo_hooks.models import decode_event
from redo_hooks.settings import Settings, SettingsOverrides
from redo_hooks.store.connections import redis_client
from redo_hooks.testing import HookTester, deliver, drain, sample_body, sample_event

from .conftest import MakeHooks
from .processes import mypy_strict

ROOT = Path(__file__).resolve().parent.parent


def test_the_settings_overrides_are_exactly_the_settings_with_their_types() -> None:
    hints = typing.get_type_hints(SettingsOverrides)
    assert set(hints) == set(Settings.model_fields)
    for name, info in Settings.model_fields.items():
        if info.annotation in (str, int, float, bool):
            assert hints[name] is info.annotation, name
        elif typing.get_origin(info.annotation) is typing.Literal:  # a choice of values
            assert hints[name] == info.annotation, name
        else:  # the secret lists: a comma-separated string or a sequence
            assert str in typing.get_args(hints[name]), name


def test_mypy_strict_rejects_a_misspelled_and_a_mistyped_setting_in_user_code(
    tmp_path: Path,
) -> None:
    user = tmp_path / "shop_hooks.py"
    user.write_text(
        "from redo_hooks import RedoHooks\n"
        "from redo_hooks.testing import HookTester\n"
        "\n"
        "hooks = RedoHooks(retries=3, secrets=['s' * 32])\n"  # fine
        "typo = RedoHooks(retriez=3)\n"
        "wrong = RedoHooks(retries='three')\n"
        "tester = HookTester(hooks, backof=0)\n"
    )
    checked = mypy_strict(user, cwd=tmp_path)
    out = checked.stdout
    assert checked.returncode == 1, out + checked.stderr
    assert 'shop_hooks.py:5: error: Unexpected keyword argument "retriez"' in out, out
    assert 'did you mean "retries"' in out, out
    assert "shop_hooks.py:6: error: Argument" in out and '"str"' in out and '"int"' in out, out
    assert 'shop_hooks.py:7: error: Unexpected keyword argument "backof"' in out, out
    assert "shop_hooks.py:4" not in out, out
    assert "Found 3 errors in 1 file" in out, out


def test_ctx_state_is_typed_by_what_on_worker_yields(tmp_path: Path) -> None:
    user = tmp_path / "shop_state.py"
    user.write_text(
        "from collections.abc import AsyncIterator\n"
        "from dataclasses import dataclass\n"
        "from redo_hooks import HandlerContext, RedoHooks, ReturnEvent\n"
        "\n"
        "hooks = RedoHooks()\n"
        "\n"
        "@dataclass\n"
        "class Shop:\n"
        "    refunds: list[str]\n"
        "\n"
        "@hooks.on_worker\n"
        "async def resources() -> AsyncIterator[Shop]:\n"
        "    yield Shop([])\n"
        "\n"
        "@hooks.on('return.updated')\n"
        "def book(event: ReturnEvent, ctx: HandlerContext[Shop]) -> None:\n"
        "    ctx.state.refunds.append(event.return_id)\n"
        "    ctx.state.refundz.append(event.return_id)\n"  # line 18: caught
        "\n"
        "@hooks.on('return.created')\n"
        "def plain(event: ReturnEvent, ctx: HandlerContext) -> None:\n"  # bare: no error
        "    ctx.state.anything()\n"
    )
    checked = mypy_strict(user, cwd=tmp_path)
    out = checked.stdout
    assert 'shop_state.py:18: error: "Shop" has no attribute "refundz"' in out, out
    assert "Found 1 error in 1 file" in out, out


def test_event_names_type_and_return_id_read_alike_everywhere(make_hooks: MakeHooks) -> None:
    hooks = make_hooks(retries=0)
    seen: list[tuple[str, str, str, str]] = []

    @hooks.on("return", name="every")
    def every(event: ReturnEvent, ctx: HandlerContext) -> None:
        seen.append((event.name, str(event.type), event.return_id, ctx.return_id))

    assert EVENT_NAMES == ("return.created", "return.updated", "return.backfill")
    deliver(hooks, sample_body("return.updated", return_id="ret-v"))
    drain(hooks)
    assert seen == [("return.updated", "updated", "ret-v", "ret-v")]
    with Admin(hooks) as admin:
        (stored,) = admin.events(EventFilter(event_name="return.updated")).events
    assert (stored.name, stored.type, stored.return_id) == ("return.updated", "updated", "ret-v")
    assert stored.to_dict()["name"] == "return.updated"
    assert stored.to_dict()["return_id"] == "ret-v"


def test_on_worker_keeps_what_it_registered_under_a_name_alike() -> None:
    hooks = RedoHooks()

    @hooks.on_worker
    async def resources() -> Any:
        yield {"db": "conn"}

    assert hooks.on_worker_lifespan is not None
    with pytest.warns(DeprecationWarning, match="use RedoHooks.on_worker_lifespan"):
        assert hooks.worker_lifespan is hooks.on_worker_lifespan


def test_with_settings_keeps_the_whole_app_but_the_settings(redis_url: str) -> None:
    hooks = RedoHooks(retries=5)

    @hooks.on_worker
    async def resources() -> Any:
        yield {}

    @hooks.on_failure
    def page(failure: Failure) -> None: ...

    hooks.add(lambda event: None, "return", name="h")
    changed = hooks.with_settings(redis_url=redis_url, backoff=0)
    assert (changed.settings.redis_url, changed.settings.backoff) == (redis_url, 0)
    assert changed.settings.retries == 5  # what was not given is kept
    assert changed.on_worker_lifespan is hooks.on_worker_lifespan
    assert changed.registry is hooks.registry
    assert hooks.settings.redis_url != redis_url  # the original is untouched
    with HookTester(hooks, redis_url=redis_url, secrets=["s" * 32]) as tester:
        assert tester.hooks.on_worker_lifespan is hooks.on_worker_lifespan


def test_every_0_2_name_still_works_and_warns_at_the_callers_line(
    make_hooks: MakeHooks,
) -> None:
    hooks = make_hooks(retries=0)
    contexts: list[HandlerContext] = []
    failures: list[Failure] = []

    @hooks.on("return.created", name="flaky")
    def flaky(event: ReturnEvent, ctx: HandlerContext) -> None:
        contexts.append(ctx)
        raise RuntimeError("boom")

    hooks.on_failure(failures.append)
    with pytest.warns(DeprecationWarning, match="sample_event") as caught:
        body = sample_event("return.created", subject="ret-old")
    assert caught[0].filename == __file__
    assert body["return"]["id"] == "ret-old"
    deliver(hooks, orjson.dumps(body))
    drain(hooks, raise_on_dead=False)
    event = decode_event(orjson.dumps(body))
    old_names: list[tuple[Callable[[], str], str]] = [
        (lambda: event.subject, "ReturnEvent.subject"),
        (lambda: contexts[0].subject, "HandlerContext.subject"),
        (lambda: failures[-1].subject, "Failure.subject"),
    ]
    with pytest.warns(DeprecationWarning, match=r"hooks\.admin\(\)"):
        admin = hooks.admin()
    with admin:
        (letter,) = admin.dead_list(DeadFilter())
        (stored,) = admin.events().events
        old_names += [
            (lambda: letter.subject, "DeadLetter.subject"),
            (lambda: stored.subject, "StoredEvent.subject"),
        ]
        for read, name in old_names:
            with pytest.warns(DeprecationWarning, match=name):
                assert read() == "ret-old"
        with pytest.warns(DeprecationWarning, match="Selection"):
            old = Selection(subject="ret-old", event_type="return.created")
        assert old == Selection(return_id="ret-old", event_name="return.created")
        assert admin.replay(old, dry_run=True) == {"flaky": 1}
        with pytest.warns(DeprecationWarning, match="EventFilter"):
            found = admin.events(EventFilter(event_type="return.created")).events
        assert [e.return_id for e in found] == ["ret-old"]
    with pytest.warns(DeprecationWarning, match="EVENT_NAMES"):
        from redo_hooks.models import EVENT_TYPES  # noqa: PLC0415
    assert EVENT_TYPES == EVENT_NAMES


def test_the_cli_takes_event_and_still_the_deprecated_type_flag(make_hooks: MakeHooks) -> None:
    hooks = make_hooks()
    hooks.add(lambda event: None, "return", name="h")
    deliver(hooks, sample_body("return.backfill", return_id="ret-b"))
    deliver(hooks, sample_body("return.created", return_id="ret-c"))
    runner = CliRunner()
    env = {"REDO_HOOKS_REDIS_URL": hooks.settings.redis_url}
    app = "tests.vocabulary_app:hooks"
    new = runner.invoke(main, ["events", app, "--event", "return.backfill", "--json"], env=env)
    assert new.exit_code == 0, new.output
    assert [json.loads(line)["return_id"] for line in new.stdout.splitlines()] == ["ret-b"]
    old = runner.invoke(main, ["events", app, "--type", "return.backfill", "--json"], env=env)
    assert old.exit_code == 0, old.output
    assert old.stdout == new.stdout
    assert "--type is deprecated: use --event" in old.stderr
    bad = runner.invoke(main, ["events", app, "--event", "created"], env=env)
    assert bad.exit_code == 2 and "did you mean 'return.created'" in bad.output


bodies = st.fixed_dictionaries(
    {
        "seq": st.integers(-(2**70), 2**70)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text()
    },
    optional={
        "at": st.sampled_from(["2026-12-01T10:00:00Z", "not a time", None]),
        "merchantName": st.text() | st.none() | st.integers(),
        "return_": st.fixed_dictionaries(
            {},
            optional={
                "status": st.text(max_size=12) | st.none(),
                "totals": st.none() | st.just({"refund": {"amount": "12.50"}}),
                "items": st.just([{"id": 1}]) | st.none(),
            },
        ),
    },
)


@settings(max_examples=60, deadline=None)
@given(changes=bodies, store=st.none() | st.text(min_size=1, max_size=8))
def test_to_dict_is_json_and_round_trips_through_json_dumps(
    changes: dict[str, Any], store: str | None
) -> None:
    body = json.dumps(sample_event("return.created", **changes)).encode()
    event = decode_event(body, key="k-1", store=store)
    data = event.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert (data["name"], data["type"], data["key"], data["store"]) == (
        "return.created",
        "created",
        "k-1",
        store,
    )
    assert data["return"]["id"] == event.return_id
    assert data["schema_errors"] == event.schema_errors


def test_hooktester_runs_a_retry_at_once_whatever_the_handlers_backoff(redis_url: str) -> None:
    """#29's case: on_worker state, backoff=5, overrides given; the retry does not wait."""
    hooks = RedoHooks()
    due: list[float] = []
    succeeded_at: list[float] = []

    @hooks.on_worker
    async def resources() -> Any:
        yield {"books": []}

    @hooks.on("return.created", name="book", retries=3, backoff=5)
    def book(event: ReturnEvent, ctx: HandlerContext) -> None:
        if ctx.attempt == 1:
            raise ConnectionError("books offline")
        ctx.state["books"].append(event.return_id)  # the on_worker state is there
        succeeded_at.append(server_time(tester.hooks.settings.redis_url))

    @hooks.on_failure
    def scheduled(failure: Failure) -> None:
        assert failure.retry_in is not None
        due.append(server_time(tester.hooks.settings.redis_url) + failure.retry_in)

    with HookTester(hooks, redis_url=redis_url, secrets=["s" * 32]) as tester:
        tester.post(sample_event("return.created", return_id="ret-b"))
        ran = tester.run(raise_on_error=False)
    assert [(r.handler, r.outcome) for r in ran] == [("book", "error"), ("book", "ok")]
    # On Redis' clock: the retry ran before the backoff would have let it.
    assert len(due) == len(succeeded_at) == 1 and succeeded_at[0] < due[0]


def server_time(url: str) -> float:
    """Redis' clock, the one the retry schedule is kept in."""
    with redis_client(url) as client:
        seconds, micros = client.time()
    return float(seconds) + float(micros) / 1e6

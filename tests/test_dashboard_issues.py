"""The dashboard's Issues pages and confirmations, in process (the browser:
``test_dashboard_browser.py``)."""

from __future__ import annotations

from typing import Any

from redis import Redis
from starlette.testclient import TestClient

from redo_hooks import RedoHooks, ReturnEvent
from redo_hooks.admin import Admin
from redo_hooks.testing import deliver, drain, sample_body

from .conftest import MakeHooks, snapshot

ADMIN = "admin-token-0123456789abcdef"
READER = "reader-token-0123456789abcdef"
TOKENS = [f"admin:ops={ADMIN}", f"viewer={READER}"]


def client(app: Any, token: str = ADMIN) -> TestClient:
    return TestClient(app, headers={"Authorization": f"Bearer {token}"})


def failing(make_hooks: MakeHooks, returns: int, **options: Any) -> RedoHooks:
    """An app whose ``ship`` handler failed alike for ``returns`` returns."""
    hooks = make_hooks(retries=0)

    @hooks.on("return.created", name="ship", **options)
    def ship(event: ReturnEvent) -> None:
        raise ConnectionError(f"warehouse API returned 503 for {event.return_id}")

    @hooks.on("return", name="other")
    def other(event: ReturnEvent) -> None:
        if event.return_id == "ret-0":
            raise KeyError("sku")

    for n in range(returns):
        assert deliver(hooks, sample_body(return_id=f"ret-{n}"))
    drain(hooks, raise_on_dead=False)
    return hooks


def test_twelve_returns_failing_alike_show_as_one_issue_and_drop_as_one(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    hooks = failing(make_hooks, 12)
    with Admin(hooks) as admin:
        ship = next(i for i in admin.issues() if i.handler == "ship")
    with client(hooks.dashboard(tokens=TOKENS)) as browser:
        listed = browser.get("/issues").text
        assert listed.count("<tr>") == 1 + 2  # the header, ship's issue and other's
        assert "ConnectionError: warehouse API returned &lt;n&gt; for ret-&lt;n&gt;" in listed
        assert f'href="http://testserver/dead?issue={ship.fingerprint}">12</a>' in listed
        shown = browser.get(f"/issues/{ship.fingerprint}").text
        assert "Traceback" in shown and "warehouse API returned 503" in shown
        assert 'href="http://testserver/returns/ret-11"' in shown
        letters = browser.get(f"/dead?issue={ship.fingerprint}").text
        assert letters.count("ConnectionError") == 12 and "KeyError" not in letters
        asked = browser.get("/bulk", params={"action": "drop", "issue": ship.fingerprint})
        assert "Drop 12 dead letter(s)?" in asked.text
        assert f'name="issue" value="{ship.fingerprint}"' in asked.text
        done = browser.post(
            "/bulk", data={"action": "drop", "issue": ship.fingerprint, "confirm": "1"}
        )
        assert "dropped 12 dead letter(s)" in done.text
        assert ship.fingerprint not in browser.get("/issues").text
        assert browser.get(f"/issues/{ship.fingerprint}").status_code == 404
    assert redis.hlen("rh:dead") == 1  # other's letter is still there


def test_bulk_actions_count_and_act_on_the_filter_as_typed(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    """Before: the bulk form carried the last applied filter, not the one typed."""
    hooks = failing(make_hooks, 3)
    with client(hooks.dashboard(tokens=TOKENS)) as browser:
        page = browser.get("/dead").text  # no filter applied
        # The bulk buttons belong to the filter form: they send what is typed in it.
        form = page.split('class="filters"', 1)[1].split("</form>", 1)[0]
        assert 'formaction="http://testserver/bulk"' in form and 'name="handler"' in form
        before = snapshot(redis)
        asked = browser.get("/bulk", params={"action": "drop", "handler": "other"})
        assert "Drop 1 dead letter(s)?" in asked.text  # not all 4
        assert snapshot(redis) == before  # counting wrote nothing
        done = browser.post("/bulk", data={"action": "drop", "handler": "other", "confirm": "1"})
        assert "dropped 1 dead letter(s)" in done.text
    assert redis.hlen("rh:dead") == 3


def test_a_single_drop_is_confirmed_first_saying_what_waits_behind_a_parked_letter(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    hooks = failing(make_hooks, 1, park=True)
    for n in range(2):  # they wait behind the parked lane
        assert deliver(hooks, sample_body("return.updated", return_id="ret-0", seq=n))
    assert deliver(hooks, sample_body(return_id="ret-0", seq=9))
    drain(hooks, raise_on_dead=False)
    with Admin(hooks) as admin:
        (letter,) = [d for d in admin.dead_list() if d.handler == "ship"]
    with client(hooks.dashboard(tokens=TOKENS)) as browser:
        before = snapshot(redis)
        asked = browser.post(f"/dead/{letter.id}/drop")
        assert asked.status_code == 200 and "Drop this dead letter?" in asked.text
        assert "its lane is parked on it, and the 1 event(s) waiting behind it" in asked.text
        assert snapshot(redis) == before  # nothing dropped yet
        assert "Drop this dead letter?" in browser.get(f"/dead/{letter.id}/drop").text
        done = browser.post(f"/dead/{letter.id}/drop", data={"confirm": "1"})
        assert "dropped 1 dead letter(s)" in done.text
    assert not redis.hexists("rh:dead", letter.id)


def test_issue_pages_refuse_unknown_ids_and_readers_get_no_actions(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    hooks = failing(make_hooks, 2)
    with Admin(hooks) as admin:
        ship = next(i for i in admin.issues() if i.handler == "ship")
    with client(hooks.dashboard(tokens=TOKENS), READER) as reader:
        assert reader.get("/issues/0123456789abcdef").status_code == 404
        assert reader.get("/issues/<script>").status_code == 404
        page = reader.get(f"/issues/{ship.fingerprint}").text
        assert "Drop all" not in page and "Retry all" not in page
        refused = reader.post(
            "/bulk", data={"action": "drop", "issue": ship.fingerprint, "confirm": "1"}
        )
        assert refused.status_code == 403
    assert redis.hlen("rh:dead") == 3


def test_pages_link_a_parked_letter_to_the_events_waiting_behind_it(
    make_hooks: MakeHooks, redis: Redis
) -> None:
    hooks = failing(make_hooks, 1, park=True)
    assert deliver(hooks, sample_body(return_id="ret-0", seq=9))  # waits behind the parked one
    drain(hooks, raise_on_dead=False)
    with Admin(hooks) as admin:
        (letter,) = [d for d in admin.dead_list() if d.handler == "ship"]
    with client(hooks.dashboard(tokens=TOKENS)) as browser:
        timeline = browser.get("/returns/ret-0").text
        assert "its lane is parked on this event" in timeline
        assert f'waits behind <a href="#{letter.event_key}">an earlier event</a>' in timeline
        assert f"/dead/{letter.id}" in timeline
        dead = browser.get("/dead").text
        assert "(parked: 1 event(s) wait behind it)" in dead
        events = browser.get("/events").text
        assert "ship: ConnectionError: warehouse API returned 503 for ret-0" in events
        assert 'href="http://testserver/dead?return_id=ret-0&amp;handler=ship"' in events
        assert 'href="http://testserver/events?order=%231234">#1234</a>' in events  # its order
        assert browser.get("/dead", params={"before": "1h"}).text.count("ConnectionError") == 0
        assert browser.get("/dead", params={"before": "0s"}).text.count("<tr>") == 1 + 3
        bad = browser.get("/dead", params={"before": "yesterday"})
        assert bad.status_code == 400 and "cannot read the time" in bad.text


def test_times_show_in_utc_or_in_the_zone_the_viewer_chose(make_hooks: MakeHooks) -> None:
    hooks = failing(make_hooks, 1)
    app = hooks.dashboard(tokens=TOKENS)
    with TestClient(app, follow_redirects=False) as browser:
        browser.post("/login", data={"token": READER})  # a reader may choose too
        page = browser.get("/dead").text
        assert " UTC</a>" in page
        csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        assert "Asia/Kolkata" in browser.get("/timezone", params={"next": "/dead"}).text
        chosen = browser.post(
            "/timezone", data={"csrf": csrf, "zone": "Asia/Kolkata", "next": "/dead"}
        )
        assert chosen.status_code == 303 and chosen.headers["location"] == "/dead"
        shown = browser.get("/dead").text
        assert " IST</a>" in shown and " UTC</a>" not in shown
        for bad_next in ("//evil.example/", "https://evil.example/", "/dead\r\nX: y"):
            moved = browser.post("/timezone", data={"csrf": csrf, "zone": "UTC", "next": bad_next})
            assert moved.headers["location"] == "/", bad_next
        browser.post("/timezone", data={"csrf": csrf, "zone": "Mars/Olympus_Mons", "next": "/"})
        assert " UTC</a>" in browser.get("/dead").text  # an unknown zone: UTC
        refused = browser.post("/timezone", data={"zone": "Asia/Kolkata"})  # no CSRF token
        assert refused.status_code == 403

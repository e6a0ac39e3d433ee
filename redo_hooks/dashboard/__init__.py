"""The web dashboard: the run log, dead letters and replay, in a browser.

``redo-hooks dashboard APP`` serves it; ``hooks.dashboard()`` returns it as
an ASGI app to mount under a path of your own app. Server-rendered HTML
(Starlette + Jinja2), no script and no asset from elsewhere: every file it
serves ships in this package. See ``docs/dashboard.md``.

It sits on top. May import ``ops`` (the operator API it renders), ``errors``,
``settings``, ``models``, ``store``, ``dispatch``, ``logs`` and ``redo_api``
(asking Redo to resend); nothing but
``hooks`` and ``cli`` imports it.
"""

from ..errors import require

require("jinja2", feature="the dashboard", extra="dashboard")

from .app import create_dashboard  # noqa: E402 - after the clear error above

__all__ = ["create_dashboard"]

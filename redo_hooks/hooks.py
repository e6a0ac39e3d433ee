"""``RedoHooks``: the facade users create, decorate and run.

Creating it and decorating handlers touches no network and needs no secret
(it happens at import time in the user's app). The receiver checks for a
secret when it starts; workers need none.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, TypeVar, Unpack

from .dispatch.handlers import H, Handler, HandlerFunc, HandlerOptions, Registry
from .dispatch.runtime import WorkerLifespan
from .errors import ConfigurationError, deprecated
from .receiver.auth import SecretResolver
from .settings import Settings, SettingsOverrides

F = TypeVar("F", bound=Callable[..., Any])

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from .ops.admin import Admin
    from .receiver.app import Receiver
    from .receiver.mounting import ReceiverMetrics


class RedoHooks:
    """Handlers for Redo's return webhooks, and the receiver that feeds them.

    ::

        hooks = RedoHooks()                 # settings from REDO_HOOKS_* variables

        @hooks.on("return.created")
        def notify_warehouse(event: ReturnEvent) -> None: ...

        app = hooks.asgi()                  # run it, or mount it in your app

    Keyword arguments override the environment: ``RedoHooks(secrets=["..."],
    redis_url="redis://...")``. They are typed (:class:`~redo_hooks.settings.SettingsOverrides`),
    so a type checker catches a misspelled or mistyped one; at run time an
    unknown or invalid setting raises ``ConfigurationError``.
    ``secret_resolver`` (``async def resolve(token) -> store | None``) accepts
    secrets kept elsewhere, e.g. one per store in your database; its answers
    are cached ``secret_cache_ttl`` seconds.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        secret_resolver: SecretResolver | None = None,
        **overrides: Unpack[SettingsOverrides],
    ) -> None:
        if settings is None:
            self.settings = Settings.load(**overrides)
        elif overrides:
            # Keyword arguments override the given settings; validated alike.
            Settings.load({}, **overrides)  # names and values, with clear errors
            self.settings = Settings.model_validate({**settings.model_dump(), **overrides})
        else:
            self.settings = settings
        self.registry = Registry()
        self.secret_resolver = secret_resolver
        #: What :meth:`on_worker` registered: set up once per worker process.
        self.on_worker_lifespan: WorkerLifespan | None = None
        self._apps: list[Starlette] = []
        self._receiver_metrics: ReceiverMetrics | None = None

    def on(self, *events: str, **options: Unpack[HandlerOptions]) -> Callable[[H], H]:
        """Register the decorated function for ``events``; return it unchanged.

        ``events``: event names (``"return.created"``, ``"return.updated"``,
        ``"return.backfill"``: :data:`~redo_hooks.EVENT_NAMES`), or ``"return"``
        for every return event, names Redo adds later included. The options (``name``,
        ``retries``, ``backoff``, ``latest_only``, ``park``) are
        :class:`~redo_hooks.dispatch.handlers.HandlerOptions`.
        """
        return self.registry.on(*events, **options)

    def add(self, func: HandlerFunc, *events: str, **options: Unpack[HandlerOptions]) -> Handler:
        """Register ``func`` for ``events`` (what ``on`` does); return the handler."""
        return self.registry.add(func, *events, **options)

    def on_failure(self, callback: F) -> F:
        """Register ``callback`` (plain or ``async``) to be called when a handler fails.

        Called in the worker with a :class:`~redo_hooks.Failure` when an attempt
        fails (``kind="attempt_failed"``, a retry is scheduled), an event is
        dead-lettered (``"dead_lettered"``) or a lane is parked (``"parked"``).
        It runs beside the lanes, after the outcome is written: raising or
        running long (``failure_callback_timeout``) is logged and changes
        nothing for the event. Returns ``callback`` unchanged::

            @hooks.on_failure
            async def page(failure: Failure) -> None:
                if failure.kind != "attempt_failed":
                    await pager.alert(f"{failure.handler} gave up on {failure.return_id}")
        """
        from .dispatch.callbacks import check_callback

        try:
            check_callback(callback)
        except TypeError as error:
            raise ConfigurationError(str(error)) from None
        self.registry.failure_callbacks.append(callback)
        return callback

    def on_worker(self, lifespan: Callable[[], Any]) -> Callable[[], Any]:
        """Register what each worker process sets up once and closes on shutdown.

        Decorate an async generator (or any async context manager factory);
        what it yields reaches every handler as ``ctx.state``::

            @hooks.on_worker
            async def resources():
                async with httpx.AsyncClient() as http:
                    yield {"http": http}

        It runs on the worker's event loop, before the first job; its
        cleanup runs when the worker stops (SIGTERM included).
        """
        if self.on_worker_lifespan is not None:
            raise ConfigurationError("an @hooks.on_worker function is already registered")
        if inspect.isasyncgenfunction(lifespan):
            self.on_worker_lifespan = contextlib.asynccontextmanager(lifespan)
        elif callable(lifespan):
            self.on_worker_lifespan = lifespan
        else:
            raise ConfigurationError(f"{lifespan!r} is not an async generator or a factory")
        return lifespan

    @property
    def worker_lifespan(self) -> WorkerLifespan | None:
        """Deprecated: :attr:`on_worker_lifespan`."""
        deprecated("RedoHooks.worker_lifespan", "RedoHooks.on_worker_lifespan")
        return self.on_worker_lifespan

    def with_settings(self, **overrides: Unpack[SettingsOverrides]) -> RedoHooks:
        """This app with some settings changed: e.g. a test's Redis and secret.

        Everything else is kept: handlers, ``@hooks.on_worker``, failure
        callbacks and the secret resolver. The copy has its own receivers.
        """
        changed = copy.copy(self)
        changed.settings = RedoHooks(self.settings, **overrides).settings
        changed._apps = []
        changed._receiver_metrics = None
        return changed

    def handlers_for(self, event: str) -> list[Handler]:
        """The handlers an event named ``event`` (e.g. ``"return.created"``) would run."""
        from .models import event_kind

        return self.registry.for_type(event_kind(event).value)

    def asgi(self, *, metrics: bool = True) -> Starlette:
        """The receiver, a Starlette app: ``POST /``, ``GET /healthz``, ``GET /readyz``, metrics.

        Mounted in another app, it works as is; pass ``lifespan=hooks.lifespan``
        to that app so it refuses to start without a secret and closes the
        receiver's Redis connections on shutdown. Everything it serves is as
        public as the webhook URL: ``metrics=False`` leaves ``/metrics`` out,
        to serve :meth:`metrics_asgi` on an internal port or path instead.
        """
        from .receiver.app import create_app

        app = create_app(
            self.settings,
            self.registry,
            self.secret_resolver,
            metrics=self._metrics(),
            serve_metrics=metrics,
        )
        self._apps.append(app)
        return app

    def mount(self, path: str, *, metrics: bool = True) -> Mount:
        """The receiver as a route of your Starlette or FastAPI app, at ``path``.

        ``Starlette(routes=[hooks.mount("/webhooks/redo")])``, or
        ``app.router.routes.append(hooks.mount("/webhooks/redo"))`` in
        FastAPI. Unlike a plain ``Mount``, ``POST /webhooks/redo`` (no trailing
        slash) reaches the receiver too, with or without
        ``lifespan=hooks.lifespan`` (which still checks for a secret at
        start-up and closes Redis connections on shutdown: use it, combined
        with your own, as ``docs/deployment.md`` shows).
        """
        from .receiver.mounting import ReceiverMount

        return ReceiverMount(path, app=self.asgi(metrics=metrics))

    def metrics_asgi(self) -> Starlette:
        """``GET /metrics`` alone (Prometheus), for an internal port or path.

        The same series as the receiver's own ``/metrics``: its request
        counters (shared with every :meth:`asgi` app of this object) and the
        pipeline's figures, read from Redis at scrape time.
        """
        from .receiver.mounting import create_metrics_app

        return create_metrics_app(self.settings, self._metrics())

    def admin(self) -> Admin:
        """Deprecated: ``Admin(hooks)`` (:class:`redo_hooks.admin.Admin`)."""
        from .ops.admin import Admin

        deprecated("hooks.admin()", "redo_hooks.admin.Admin(hooks)")
        return Admin(self)

    def dashboard(self, **options: Any) -> Starlette:
        """The web dashboard, an ASGI app to run or mount under a path of your app.

        ``options`` as for :func:`redo_hooks.dashboard.create_dashboard`
        (``tokens``, ``allow_loopback_without_token``); tokens come from
        ``REDO_HOOKS_DASHBOARD_TOKEN`` otherwise. See ``docs/dashboard.md``.
        """
        from .dashboard import create_dashboard

        return create_dashboard(self.settings, registry=self.registry, **options)

    def _metrics(self) -> ReceiverMetrics:
        if self._receiver_metrics is None:
            from .receiver.mounting import new_metrics

            self._receiver_metrics = new_metrics(self.settings)
        return self._receiver_metrics

    @contextlib.asynccontextmanager
    async def lifespan(self, app: object = None) -> AsyncIterator[None]:
        """Lifespan for an app that mounts :meth:`asgi`: check settings, then clean up.

        ``Starlette(routes=[...], lifespan=hooks.lifespan)`` or
        ``FastAPI(lifespan=hooks.lifespan)``. It also makes ``POST`` to the
        mount's path without its trailing slash (``/webhooks/redo``) reach the
        receiver, where Starlette would answer with a redirect.
        """
        from .receiver.mounting import serve_mount_roots

        receivers: list[Receiver] = [app.state.receiver for app in self._apps]
        for receiver in receivers:
            await receiver.start()  # ConfigurationError without a secret
        serve_mount_roots(app, self._apps)
        try:
            yield
        finally:
            for receiver in receivers:
                await receiver.close()

    def __repr__(self) -> str:
        return (
            f"<RedoHooks redis={self.settings.redis_url_safe} queue={self.settings.queue!r}\n"
            f"{self.registry!r}>"
        )

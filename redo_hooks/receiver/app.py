"""The receiver's Starlette app: HTTP in; :mod:`redo_hooks.receiver.body` parses,
:mod:`redo_hooks.store.ingest` stores.

``POST /`` — verify the bearer (before reading the body), read at most
``max_body_bytes``, parse, route, store; 202 once Redis confirmed, 200 for a
duplicate (header ``Redo-Hooks-Duplicate: true``), 202 with status
``unhandled`` for an event no handler wants (stored, never run), 4xx
problem+json for a refused request, 503 + ``Retry-After`` when Redis did not
confirm. ``GET /healthz`` — the process answers. ``GET /readyz`` — Redis answers.
``GET /metrics`` (``Settings.metrics_path``) — Prometheus metrics.

Nothing here needs the lifespan protocol, so the app works the same when
mounted inside another app (whose lifespan never reaches it): the Redis
client and the ingestor are created on first use.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import orjson
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from .. import logs, tracing
from ..dispatch.handlers import Registry
from ..errors import (
    ConfigurationError,
    PayloadTooLarge,
    RejectedRequest,
    RequestTimeout,
    StoreUnavailable,
    UnknownPath,
    WrongMethod,
    problem_for,
)
from ..logs import get_logger
from ..redis_url import is_sentinel
from ..settings import Settings
from ..store.connections import async_redis_client
from ..store.events import Incoming
from ..store.ingest import Ingestor, Routed
from ..store.keys import Keys
from .auth import Authenticator, BearerVerifier, CachedResolver, SecretResolver
from .backpressure import check_eviction_policy
from .body import parse_body
from .contract import DUPLICATE_HEADER, openapi_document
from .drift import DriftWatch
from .metrics import CONTENT_TYPE, ReceiverMetrics

LOGGER = "redo_hooks.receiver.app"
log = get_logger(LOGGER)


class Receiver:
    """The state behind one receiver app: verifier, Redis client, ingestor."""

    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        secret_resolver: SecretResolver | None = None,
        metrics: ReceiverMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.secret_resolver = secret_resolver
        self._authenticator: Authenticator | None = None
        self.keys = Keys(self.settings.key_prefix)
        self.metrics = metrics or ReceiverMetrics(
            self.keys, self.settings.queue, self.settings.quarantine_queue
        )
        self.drift = DriftWatch(settings, self.keys)
        self._redis: AsyncRedis | None = None
        self._ingestor: Ingestor | None = None

    def authenticator(self) -> Authenticator:
        """Secrets and resolver; ``ConfigurationError`` if there is neither."""
        if self._authenticator is None:
            resolver = None
            if self.secret_resolver is not None:
                resolver = CachedResolver(
                    self.secret_resolver,
                    ttl=self.settings.secret_cache_ttl,
                    timeout=self.settings.secret_resolver_timeout,
                )
            verifier = BearerVerifier(self.settings.secrets, allow_empty=resolver is not None)
            for position, store, why in verifier.weak():
                # Never the secret itself: its place in the list and its store.
                log.warning(
                    "weak_secret",
                    position=position,
                    store=store,
                    why=why,
                    hint="make a strong one with `redo-hooks secret`",
                )
            self._authenticator = Authenticator(verifier, resolver)
        return self._authenticator

    def redis(self) -> AsyncRedis:
        """The asyncio Redis client, created on first use."""
        if self._redis is None:
            timeout = self.settings.redis_timeout
            self._redis = async_redis_client(
                self.settings.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout
            )
        return self._redis

    def ingestor(self) -> Ingestor:
        """The group-committing writer, created on first use."""
        if self._ingestor is None:
            self._ingestor = Ingestor(self.redis(), self.settings, self.keys)
        return self._ingestor

    async def start(self) -> None:
        """Start-up checks: a secret is configured; warnings for what may lose events."""
        self.authenticator()
        if is_sentinel(self.settings.redis_url) and not self.settings.min_replicas_ack:
            # An event acknowledged just before a failover may not have reached
            # the replica that is promoted: WAIT (opt-in) closes that window.
            log.warning(
                "sentinel_without_replica_ack",
                redis=self.settings.redis_url_safe,
                risk="an event acknowledged just before a failover can be lost",
                fix="set REDO_HOOKS_MIN_REPLICAS_ACK=1 (min_replicas_ack)",
            )
        await check_eviction_policy(self.redis(), self.settings.redis_timeout)

    async def close(self) -> None:
        """Close the Redis client (after the schema-drift findings under way are recorded)."""
        if self._redis is not None:
            await self.drift.settle(self.settings.redis_timeout)
            await self._redis.aclose()
            self._redis = None
            self._ingestor = None

    async def receive(self, request: Request) -> Response:
        """``POST /``: in a span of its own when OpenTelemetry is installed."""
        if not tracing.enabled():
            return await self._receive(request, None)
        with tracing.receiving(request.scope["headers"]) as span:
            response = await self._receive(request, span)
            tracing.annotate(span, {"http.response.status_code": response.status_code})
            return response

    async def _receive(self, request: Request, span: Any) -> Response:
        started = time.perf_counter()
        body_read = False
        try:
            try:
                authenticator = self.authenticator()
            except ConfigurationError:
                log.error("receiver_has_no_secret")
                raise StoreUnavailable("the receiver is not configured") from None
            store = await authenticator.authenticate(_header(request, b"authorization"))
            # One timer for the request: the body must arrive within
            # body_timeout, then Redis must confirm within redis_timeout.
            waiting_for = "body"
            try:
                async with asyncio.timeout(self.settings.body_timeout) as deadline:
                    body = await _read_body(request, self.settings.max_body_bytes)
                    body_read = True
                    incoming = parse_body(body, max_depth=self.settings.max_json_depth, store=store)
                    if span is not None and span.is_recording():
                        incoming = self._traced(incoming, span)
                    handlers = self.registry.for_type(incoming.type)
                    routed = Routed(incoming, [h.name for h in handlers])
                    waiting_for = "redis"
                    deadline.reschedule(
                        asyncio.get_running_loop().time() + self.settings.redis_timeout
                    )
                    fresh = await self.ingestor().submit(routed)
            except TimeoutError:
                raise self._too_slow(waiting_for) from None
        except (RejectedRequest, StoreUnavailable) as error:
            if span is not None:
                self._span_refused(span, error)
            return self._refuse(error, close=not body_read)
        except ClientDisconnect:
            log.info("request_rejected", reason="client_disconnected")
            self.metrics.request("rejected", "client_disconnected")
            return Response(status_code=400)
        except Exception:
            # A bug must not become a 500 (which Redo would not retry the same
            # way everywhere): 503 makes Redo retry, and dedupe absorbs a
            # retry of an event that was in fact stored.
            log.exception("receiver_error")
            return self._refuse(
                StoreUnavailable("internal error; retry later"), close=not body_read
            )
        self.metrics.ingest_seconds.observe(time.perf_counter() - started)
        if fresh and self.drift.due():
            self.drift.check(self.redis(), body, incoming.subject, incoming.schema_errors)
        return self._stored(incoming, len(handlers), fresh, span)

    def _stored(self, incoming: Incoming, handlers: int, fresh: bool, span: Any) -> Response:
        """The answer for an event Redis confirmed: accepted, unhandled or a duplicate."""
        context = {
            "store": incoming.store,
            "return_id": incoming.subject,
            "event_type": incoming.type,
            "event_key": incoming.key,
        }
        if incoming.schema_errors:
            log.warning("event_schema_mismatch", errors=incoming.schema_errors[:10], **context)
        if span is not None:
            outcome = "duplicate" if not fresh else "accepted" if handlers else "unhandled"
            tracing.annotate(span, {tracing.OUTCOME: outcome})
        if not fresh:
            self.metrics.request("duplicate")
            log.info("event_duplicate", **context)
            return _json(200, {"status": "duplicate", "event": incoming.key}, duplicate=True)
        if not handlers:
            self.metrics.request("unhandled")
            log.info("event_unhandled", **context)
            return _json(202, {"status": "unhandled", "event": incoming.key})
        self.metrics.request("accepted")
        # Per-event success is DEBUG unless log_successes: at thousands of
        # events/s an INFO line each is a large share of the request's CPU
        # (benchmarks/README.md). Refusals, duplicates and unrouted events stay
        # at INFO and above.
        if self.settings.log_successes:
            log.info("event_accepted", handlers=handlers, **context)
        elif logs.debug_enabled(LOGGER):
            log.debug("event_accepted", handlers=handlers, **context)
        return _json(202, {"status": "accepted", "event": incoming.key})

    @staticmethod
    def _traced(incoming: Incoming, span: Any) -> Incoming:
        """``incoming`` with the span's trace context, stored with it for the handler runs."""
        tracing.annotate(
            span,
            {
                tracing.EVENT_TYPE: incoming.type,
                tracing.RETURN_ID: incoming.subject,
                tracing.STORE: incoming.store,
                tracing.EVENT_KEY: incoming.key,
            },
        )
        return replace(incoming, traceparent=tracing.traceparent(span))

    @staticmethod
    def _span_refused(span: Any, error: RejectedRequest | StoreUnavailable) -> None:
        deferred = isinstance(error, StoreUnavailable)
        outcome = "deferred" if deferred else "rejected"
        tracing.annotate(span, {tracing.OUTCOME: outcome, "redo_hooks.reason": error.reason})
        if deferred:  # the sender's fault is not ours; a 503 is
            tracing.failed(span, None, str(error))

    # One Redis budget per request: the write (memory and backlog checks
    # included, in the same script) answers within redis_timeout, the time the
    # body takes to arrive aside.

    def _too_slow(self, waiting_for: str) -> RequestTimeout | StoreUnavailable:
        """The error for a request whose deadline passed while ``waiting_for``."""
        if waiting_for == "body":
            return RequestTimeout(
                f"the body did not arrive within {self.settings.body_timeout:g} s"
            )
        # Maybe stored after all: the sender's retry is then a duplicate.
        return StoreUnavailable(
            f"Redis did not confirm the write within {self.settings.redis_timeout:g} s",
            reason="redis_timeout",
        )

    def _refuse(self, error: RejectedRequest | StoreUnavailable, *, close: bool) -> Response:
        status, problem = problem_for(error)
        headers = {}
        if close:
            # The body was not read (refused first, too large, too slow): the
            # connection cannot carry another request.
            headers["Connection"] = "close"
        if isinstance(error, StoreUnavailable):
            headers["Retry-After"] = str(self.settings.retry_after)
            self.metrics.request("deferred", error.reason)
            log.error("request_deferred", reason=error.reason, detail=str(error))
        else:
            self.metrics.request("rejected", error.reason)
            log.warning("request_rejected", status=status, reason=error.reason, detail=str(error))
        return Response(
            orjson.dumps(problem),
            status_code=status,
            headers=headers,
            media_type="application/problem+json",
        )

    async def unrouted(self, request: Request, exc: Exception) -> Response:
        """A 404 or 405 of the receiver's app: logged and counted like any refusal.

        A wrong URL at Redo (a missing path segment, a proxy's prefix) shows up
        in the logs and in ``redo_hooks_requests_total`` instead of nowhere.
        """
        status = getattr(exc, "status_code", 404)
        path = _route_path(request.scope)
        events_at = f"{request.scope.get('root_path', '')}/"
        error: RejectedRequest
        if status == WrongMethod.status:
            error = WrongMethod(f"{request.method} is not allowed at {path}")
        else:
            error = UnknownPath(f"nothing at {path}; events are POSTed to {events_at}")
        response = self._refuse(error, close=False)
        allow = (getattr(exc, "headers", None) or {}).get("Allow")
        if allow:
            response.headers["Allow"] = allow
        return response

    async def metrics_endpoint(self, request: Request) -> Response:
        """``GET /metrics``: Prometheus exposition."""
        body = await self.metrics.render(self.redis(), self.settings.redis_timeout)
        return Response(body, media_type=CONTENT_TYPE)

    async def healthz(self, request: Request) -> Response:
        """``GET /healthz``: the process is alive."""
        return _json(200, {"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        """``GET /readyz``: Redis answers a PING within ``redis_timeout``."""
        try:
            async with asyncio.timeout(self.settings.redis_timeout):
                await self.redis().ping()
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("not_ready", error=type(exc).__name__)
            return _json(503, {"status": "unavailable", "redis": type(exc).__name__})
        return _json(200, {"status": "ready"})


def create_app(
    settings: Settings,
    registry: Registry,
    secret_resolver: SecretResolver | None = None,
    *,
    metrics: ReceiverMetrics | None = None,
    serve_metrics: bool = True,
) -> Starlette:
    """The receiver app for ``registry``'s handlers (see :meth:`RedoHooks.asgi`).

    ``metrics``: the counters to add to (shared with :func:`create_metrics_app`);
    ``serve_metrics``: answer ``Settings.metrics_path`` here (else: elsewhere).
    """
    receiver = Receiver(settings, registry, secret_resolver, metrics)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Run standalone, refuse to start without a secret. (Mounted apps get
        # no lifespan; they answer 503 and log an error until configured.)
        await receiver.start()
        yield
        await receiver.close()

    routes = [
        Route("/", receiver.receive, methods=["POST"]),
        Route("/healthz", receiver.healthz, methods=["GET"]),
        Route("/readyz", receiver.readyz, methods=["GET"]),
    ]
    if settings.openapi_path:
        document = orjson.dumps(openapi_document(settings))

        async def openapi(request: Request) -> Response:
            return Response(document, media_type="application/json")

        routes.append(Route(settings.openapi_path, openapi, methods=["GET"]))
    if settings.metrics_path and serve_metrics:
        routes.append(Route(settings.metrics_path, receiver.metrics_endpoint, methods=["GET"]))
    app = ReceiverApp(
        lifespan=lifespan,
        routes=routes,
        exception_handlers={404: receiver.unrouted, 405: receiver.unrouted},
    )
    app.state.receiver = receiver
    return app


class ReceiverApp(Starlette):
    """The receiver's Starlette app, with a direct path for its one hot request.

    ``POST /`` is every webhook: without middleware of yours, it goes
    straight to :meth:`Receiver.receive`, past Starlette's own error
    middleware and the router, whose cost is measurable in a request's CPU
    (``benchmarks/README.md``) and which add nothing there (``receive``
    answers every error itself, never raising). Once you add middleware
    (``app.add_middleware(...)``), every request, webhooks included, goes
    through Starlette's whole stack, so your middleware always runs.
    Everything else, and ``POST /`` to a mounted app's other paths, takes
    Starlette's usual way.
    """

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Answer ``POST /`` directly unless there is user middleware; else Starlette."""
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and not self.user_middleware
            and _route_path(scope) == "/"
        ):
            scope["app"] = self
            receiver: Receiver = self.state.receiver
            response = await receiver.receive(Request(scope, receive))
            await response(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _route_path(scope: Any) -> str:
    """The path within this app (below a mount's ``root_path``), as Starlette's router sees it."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _header(request: Request, name: bytes) -> bytes | None:
    for key, value in request.scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def _read_body(request: Request, limit: int) -> bytes:
    declared = _header(request, b"content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise PayloadTooLarge(f"body of {int(declared)} bytes is over {limit}")
        except ValueError:
            pass  # the server rejects a malformed Content-Length itself
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _json(status: int, content: dict[str, Any], *, duplicate: bool = False) -> Response:
    headers = {DUPLICATE_HEADER: "true"} if duplicate else None
    return Response(
        orjson.dumps(content), status_code=status, headers=headers, media_type="application/json"
    )

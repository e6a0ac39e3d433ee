"""One typed settings object, read from ``REDO_HOOKS_*`` environment variables.

Built once at the edge (the CLI, or the user's ``RedoHooks(...)`` call) and
handed down; nothing reads the environment anywhere else. Unknown settings are
errors, whether passed as keyword arguments or as ``REDO_HOOKS_*`` variables.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, TypedDict

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .errors import ConfigurationError
from .redis_url import SentinelURL, is_sentinel, mask

ENV_PREFIX = "REDO_HOOKS_"
#: Where Heroku, Render and similar platforms put the Redis they attach:
#: read for ``redis_url`` when ``REDO_HOOKS_REDIS_URL`` is unset.
PLATFORM_REDIS_ENV = "REDIS_URL"


class Settings(BaseSettings):
    """Every setting of redo-hooks, with its default.

    Each field can be set as ``REDO_HOOKS_<NAME>`` in the environment, or as a
    keyword argument of ``RedoHooks(...)`` / ``Settings(...)``.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        frozen=True,
        validate_default=True,
    )

    redis_url: str = Field(
        default="redis://localhost:6379/0",
        description=(
            "Redis that holds events, lanes and RQ jobs: redis://[:password@]host:port/db, "
            "rediss:// for TLS (options in the query string: ssl_ca_certs, ssl_certfile, "
            "ssl_keyfile, ssl_cert_reqs=none; docs/deployment.md), or "
            "redis+sentinel://[:password@]host1:26379,host2:26379/service/db to follow "
            "a primary through Sentinel failovers."
        ),
        # May carry a password: shown masked by ``redis_url_safe`` only.
        repr=False,
    )
    secrets: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description=(
            "Accepted bearer secrets, comma-separated, each optionally labelled with "
            "its store: store-a=tok1,store-b=tok2. Handlers see the label as "
            "event.store. Several per store let a secret be rotated with no downtime. "
            "The receiver refuses to start without one (or a secret resolver)."
        ),
    )
    dashboard_token: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description=(
            "Dashboard tokens, comma-separated, each label=token (read-only) or "
            "admin:label=token (may retry, drop and replay); at least 16 characters. "
            "Separate from the webhook secrets. The dashboard refuses to start without "
            "one unless bound to loopback for development."
        ),
    )
    secret_cache_ttl: float = Field(
        default=60.0,
        gt=0,
        description=("Seconds a secret resolver's answer is cached (an unknown token: at most 5)."),
    )
    secret_resolver_timeout: float = Field(
        default=2.0, gt=0, description="Seconds the receiver waits on a secret resolver."
    )
    queue: str = Field(default="redo-hooks", description="Name of the RQ queue.")

    @property
    def quarantine_queue(self) -> str:
        """The RQ queue of lanes a crashed process left: each runs alone (``max_crashes``)."""
        return f"{self.queue}-quarantine"

    key_prefix: str = Field(
        default="rh", description="Prefix of every Redis key redo-hooks writes (not RQ's)."
    )
    dedupe_ttl: int = Field(
        default=86_400, gt=0, description="Seconds a delivered event is remembered as seen."
    )
    retention: int = Field(
        default=7 * 86_400,
        gt=0,
        description=(
            "Seconds a processed event body is kept (for replay) after every handler is "
            "done; the oldest yield earlier to new events when Redis' memory is at "
            "memory_high_water."
        ),
    )
    max_body_bytes: int = Field(
        default=1 << 20, gt=0, description="Largest accepted body; larger gets 413."
    )
    body_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds a request may take to send its body; slower gets 408.",
    )
    max_json_depth: int = Field(
        default=32, gt=1, description="Deepest accepted JSON nesting; deeper gets 400."
    )
    redis_timeout: float = Field(
        default=2.0, gt=0, description="Seconds the receiver waits on Redis before a 503."
    )
    retry_after: int = Field(
        default=5, gt=0, description="Seconds in the Retry-After header of a 503."
    )
    retries: int = Field(
        default=3, ge=0, description="Default number of retries of a failing handler."
    )
    backoff: float = Field(
        default=2.0,
        ge=0,
        description="Base of the exponential backoff between retries, in seconds.",
    )
    backoff_cap: float = Field(
        default=300.0, ge=0, description="Longest wait between two retries, in seconds."
    )
    lane_batch: int = Field(
        default=100,
        gt=0,
        description=(
            "Events one job runs from one lane before it yields the worker to other lanes."
        ),
    )
    worker_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description=(
            "Niceness added to each worker process (not its parent): on a host shared "
            "with a receiver, the receiver's acknowledgements come first, the workers "
            "take what CPU is left. No effect on a host with CPU to spare; 0 turns it off."
        ),
    )
    jobs_per_process: int = Field(
        default=4,
        gt=0,
        description=(
            "Lane jobs one worker process runs at once, each in a thread of its own "
            "(a job runs its lanes concurrently): a slow handler's job leaves the "
            "others free for other handlers. Burst mode uses one."
        ),
    )
    async_concurrency: int = Field(
        default=100,
        gt=0,
        description=(
            "Async handler calls one worker process runs at once (on its event loop), "
            "each in its own lane; a lane's events still run one after another."
        ),
    )
    sync_threads: int = Field(
        default=64,
        gt=0,
        description=(
            "Threads one worker process runs sync handlers on, so that many lanes' "
            "handlers wait on I/O at once; 1 runs them one at a time."
        ),
    )
    max_crashes: int = Field(
        default=3,
        ge=1,
        description=(
            "Times an event may take down the worker process running it (a segfault, "
            "os._exit, the OOM killer) before it is dead-lettered as process_crashed. "
            "After a crash the dead process's lanes run one at a time in a quarantine "
            "process, so a crash is charged to the event that caused it."
        ),
    )
    removed_handler_after: float = Field(
        default=86_400.0,
        ge=0,
        description=(
            "Seconds the events of a handler no worker has (a deploy removed or renamed "
            "it) wait before they are dead-lettered with reason handler_removed; "
            "until then workers pass them on, in case a worker that has it comes back."
        ),
    )
    lanes_per_job: int = Field(
        default=100,
        gt=0,
        description=(
            "Most lanes (returns) one queued job gathers while no worker is free; "
            "an idle worker takes each lane at once. A job runs its lanes concurrently, "
            "so this also bounds what one worker process has in flight."
        ),
    )
    job_timeout: int = Field(
        default=300,
        gt=0,
        description=(
            "Seconds one handler call may take, unless the handler sets its own "
            "timeout. Past it the attempt fails: an async call is cancelled; a sync "
            "call cannot be interrupted, so the timeout is reported at once (log, "
            "metric, on_failure callback) and the lane waits for the thread to "
            "return before its next attempt or event: never two at once."
        ),
    )
    heartbeat_ttl: int = Field(
        default=10,
        ge=2,
        description=(
            "Seconds a running job's heartbeat lasts; renewed four times as often. "
            "A worker that dies is noticed this long after; its events run again "
            "within heartbeat_ttl plus twice maintenance_interval (20 s by default)."
        ),
    )
    maintenance_interval: int = Field(
        default=5,
        ge=1,
        description=(
            "Seconds between a worker's maintenance passes, which re-queue the jobs "
            "of workers that died."
        ),
    )
    failure_callback_timeout: float = Field(
        default=30.0,
        gt=0,
        description=(
            "Seconds a failure callback (@hooks.on_failure) may run; then it is left "
            "behind (an async one cancelled) and failure_callback_timed_out is logged."
        ),
    )
    drift_sample_interval: float = Field(
        default=0.1,
        ge=0,
        description=(
            "Seconds between two bodies a receiver process checks for schema drift "
            "(fields and enum values the models do not know). A check parses and walks "
            "the body again: at most 10 a second per process by default. 0 checks "
            "every body."
        ),
    )
    drift_max_findings: int = Field(
        default=200,
        gt=0,
        description=(
            "Distinct schema-drift findings tracked (and exposed as metric labels); "
            "beyond it they are only counted, in redo_hooks_schema_drift_untracked."
        ),
    )
    log_successes: bool = Field(
        default=False,
        description=(
            "Log each accepted event (event_accepted) and each handler success "
            "(handler_succeeded) at INFO instead of DEBUG. redo-hooks dev turns it on; "
            "in production a line per event is a large share of the receiver's CPU."
        ),
    )
    metrics_path: str = Field(
        default="/metrics",
        pattern=r"^(/[A-Za-z0-9_./-]*)?$",
        description=("Path of the receiver's Prometheus metrics; empty turns them off."),
    )
    min_replicas_ack: int = Field(
        default=0,
        ge=0,
        description=(
            "Replicas that must confirm an event (Redis WAIT, up to redis_timeout) before "
            "the receiver acknowledges it; else 503. 0: the primary's word is enough."
        ),
    )
    memory_high_water: float = Field(
        default=0.9,
        gt=0,
        le=1,
        description=(
            "Fraction of Redis' maxmemory at which the receiver answers 503 instead of "
            "storing, leaving the rest for workers to finish events (no effect without "
            "a maxmemory)."
        ),
    )
    max_waiting_events: int = Field(
        default=1_000_000,
        ge=0,
        description=(
            "Most events waiting in lanes before the receiver answers 503; 0: no ceiling."
        ),
    )
    openapi_path: str = Field(
        default="/openapi.json",
        pattern=r"^(/[A-Za-z0-9_./-]*)?$",
        description="Path of the receiver's OpenAPI 3.1 document; empty turns it off.",
    )
    ingest_batch: int = Field(
        default=256, gt=0, description="Most events the receiver writes in one Redis call."
    )
    otel: Literal["", "console", "otlp"] = Field(
        default="",
        description=(
            "Configure OpenTelemetry tracing in serve, worker, run and dev: console prints "
            "spans, otlp sends them to OTEL_EXPORTER_OTLP_ENDPOINT (install "
            "opentelemetry-sdk, and opentelemetry-exporter-otlp-proto-http for otlp); "
            "empty: your app configures its own SDK, or none."
        ),
    )
    alert_no_events_after: int = Field(
        default=0,
        ge=0,
        description=(
            "Seconds without any event stored after which status, the overview and "
            "redo-hooks doctor say the receiver has gone quiet (a subscription deleted "
            "or pointed elsewhere, a secret rotated on one side); 0: off."
        ),
    )

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``environ`` (default ``os.environ``) and keyword overrides.

        Raises ``ConfigurationError`` naming any unknown ``REDO_HOOKS_*``
        variable or keyword, and any invalid value. ``redis_url`` falls back
        on ``REDIS_URL`` (what Heroku-style platforms set) when neither a
        keyword nor ``REDO_HOOKS_REDIS_URL`` gives it.
        """
        env = os.environ if environ is None else environ
        platform_url = env.get(PLATFORM_REDIS_ENV)
        if platform_url and "redis_url" not in overrides and f"{ENV_PREFIX}REDIS_URL" not in env:
            overrides = {**overrides, "redis_url": platform_url}
        known = {name.upper() for name in cls.model_fields}
        unknown = sorted(
            key
            for key in env
            if key.upper().startswith(ENV_PREFIX) and key.upper()[len(ENV_PREFIX) :] not in known
        )
        unknown += sorted(k for k in overrides if k not in cls.model_fields)
        if unknown:
            raise ConfigurationError(
                f"unknown setting(s): {', '.join(unknown)}; "
                f"valid settings are {', '.join(sorted(cls.model_fields))}"
            )
        try:
            if environ is None:
                return cls(**overrides)
            values = {
                key[len(ENV_PREFIX) :].lower(): value
                for key, value in env.items()
                if key.upper().startswith(ENV_PREFIX)
            }
            values.update(overrides)
            # ``model_validate`` skips the settings sources: only ``values`` count.
            return cls.model_validate(values)
        except ValidationError as exc:
            raise ConfigurationError(_describe(exc)) from None

    @property
    def redis_url_safe(self) -> str:
        """``redis_url`` with any password masked, for logs and messages."""
        return mask(self.redis_url)

    @field_validator("redis_url")
    @classmethod
    def _known_redis_url(cls, value: str) -> str:
        if is_sentinel(value):
            try:
                SentinelURL.parse(value)
            except ConfigurationError as error:
                raise ValueError(str(error).removeprefix("redis_url: ")) from None
        return value

    @field_validator("secrets", "dashboard_token", mode="before")
    @classmethod
    def _split_secrets(cls, value: Any) -> Any:
        return split_secrets(value) if isinstance(value, str) else value

    @field_validator("secrets")
    @classmethod
    def _no_empty_secret(cls, value: list[SecretStr]) -> list[SecretStr]:
        if any(not s.get_secret_value() for s in value):
            raise ValueError("a secret must not be empty")
        return value


class SettingsOverrides(TypedDict, total=False):
    """The keyword arguments ``RedoHooks(...)`` and ``HookTester(...)`` take: every setting.

    Typed, so that a type checker rejects ``RedoHooks(retriez=3)`` and
    ``RedoHooks(retries="three")`` in your code before it runs; a test keeps
    it equal to :class:`Settings`' fields.
    """

    redis_url: str
    secrets: str | Sequence[str | SecretStr]
    dashboard_token: str | Sequence[str | SecretStr]
    secret_cache_ttl: float
    secret_resolver_timeout: float
    queue: str
    key_prefix: str
    dedupe_ttl: int
    retention: int
    max_body_bytes: int
    body_timeout: float
    max_json_depth: int
    redis_timeout: float
    retry_after: int
    retries: int
    backoff: float
    backoff_cap: float
    lane_batch: int
    worker_nice: int
    jobs_per_process: int
    async_concurrency: int
    sync_threads: int
    max_crashes: int
    removed_handler_after: float
    lanes_per_job: int
    job_timeout: int
    heartbeat_ttl: int
    maintenance_interval: int
    failure_callback_timeout: float
    drift_sample_interval: float
    drift_max_findings: int
    log_successes: bool
    metrics_path: str
    min_replicas_ack: int
    memory_high_water: float
    max_waiting_events: int
    openapi_path: str
    ingest_batch: int
    otel: Literal["", "console", "otlp"]
    alert_no_events_after: int


def split_secrets(value: str) -> list[str]:
    """The entries of a ``REDO_HOOKS_SECRETS`` value (comma-separated, blanks dropped)."""
    return [part.strip() for part in value.split(",") if part.strip()]


def _describe(exc: Any) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "settings"
        # Never echo the input: it may be a secret.
        lines.append(f"{where}: {err['msg']}")
    return "invalid settings: " + "; ".join(lines)


def reference_table() -> str:
    """Every setting as a Markdown table: name, environment variable, default, meaning.

    ``docs/configuration.md`` embeds this table; a test keeps them equal.
    """
    rows = [
        "| setting | environment variable | default | meaning |",
        "|---|---|---|---|",
    ]
    for name, info in Settings.model_fields.items():
        default = info.get_default(call_default_factory=True)
        shown = "(none)" if default == [] else f"`{default}`"
        rows.append(f"| `{name}` | `{ENV_PREFIX}{name.upper()}` | {shown} | {info.description} |")
    return "\n".join(rows) + "\n"

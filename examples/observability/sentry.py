"""Report handlers that give up to Sentry (docs/observability.md).

Dead letters and parked lanes become Sentry issues, tagged with the handler,
the return id and the attempt; failed attempts that will be retried are not
reported (they are in the logs and in ``redo_hooks_retries_total``). Call
``sentry_sdk.init`` where your worker starts, e.g. in the module that holds
your ``RedoHooks`` object::

    sentry_sdk.init(
        dsn=os.environ["SENTRY_DSN"], data_collection={"stack_frame_variables": False}
    )

No stack frame variables: a traceback's local variables hold the event,
which carries your customers' names and addresses. (sentry-sdk 2.x spells it
``include_local_variables=False``.)
"""

from __future__ import annotations

import sentry_sdk

from redo_hooks import Failure, RedoHooks


def report_to_sentry(failure: Failure) -> None:
    """A failure callback: one Sentry event per dead letter or parked lane."""
    if failure.kind == "attempt_failed":
        return  # it runs again; only what needs a person is reported
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("handler", failure.handler)
        scope.set_tag("return_id", failure.return_id)
        scope.set_tag("attempt", str(failure.attempt))
        scope.set_tag("outcome", failure.kind)
        scope.set_context(
            "redo_hooks",
            {
                "event_key": failure.event_key,
                "event_type": None if failure.event is None else str(failure.event.type),
                "dead_letter_id": failure.dead_letter_id,
            },
        )
        # One issue per handler and error type, not one per return.
        scope.fingerprint = ["redo-hooks", failure.handler, type(failure.error).__name__]
        if failure.error is not None:
            sentry_sdk.capture_exception(failure.error)
        else:
            sentry_sdk.capture_message(f"{failure.handler}: {failure.error_text}", level="error")


def install(hooks: RedoHooks) -> None:
    """Register :func:`report_to_sentry` on ``hooks``."""
    hooks.on_failure(report_to_sentry)

"""A typed client for Redo's webhook-subscription API (``/stores/{id}/webhooks``…).

:class:`RedoAPI` (sync) and :class:`AsyncRedoAPI` (async) list, create or
update (by ``externalId``), get, update, delete and replay webhooks. Base URL
``https://api.getredo.com/v2.2`` unless ``REDO_API_URL`` or ``base_url=`` says
otherwise; the API secret comes from ``REDO_API_SECRET`` or ``secret=``.
Public: what ``__all__`` lists is part of redo-hooks' API.

May import ``errors`` and ``backoff`` only: it knows nothing of webhooks'
delivery, only of the API that subscribes to them.
"""

from .calls import DEFAULT_API_URL, RetryPolicy
from .client import API_SECRET_ENV, API_URL_ENV, AsyncRedoAPI, RedoAPI, Written
from .errors import (
    APIUnreachable,
    AuthenticationError,
    InvalidRequest,
    NotFound,
    RateLimited,
    RedoAPIError,
    ServerError,
)
from .models import Bearer, Callback, CallbackAuth, Webhook

__all__ = [
    "API_SECRET_ENV",
    "API_URL_ENV",
    "DEFAULT_API_URL",
    "APIUnreachable",
    "AsyncRedoAPI",
    "AuthenticationError",
    "Bearer",
    "Callback",
    "CallbackAuth",
    "InvalidRequest",
    "NotFound",
    "RateLimited",
    "RedoAPI",
    "RedoAPIError",
    "RetryPolicy",
    "ServerError",
    "Webhook",
    "Written",
]

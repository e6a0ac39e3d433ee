"""The receiver's own OpenAPI 3.1 document: what it accepts and every answer it gives.

Served at ``Settings.openapi_path`` (``/openapi.json``; empty turns it off)
and checked against the live app by schemathesis (``tests/test_contract.py``).

The request body is described as what the receiver *requires* — a JSON
object with a ``type`` and a ``return.id`` — because that is what it
accepts: a body that fits less of Redo's schema is still stored (refusing it
would lose it; the worker dead-letters it with the validation error). The
shape Redo sends is referenced from the description.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from ..errors import PROBLEM_BASE
from ..settings import Settings

PROBLEM = "application/problem+json"
#: Response header marking a duplicate's 200.
DUPLICATE_HEADER = "Redo-Hooks-Duplicate"


def _problem(description: str, *, retry_after: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    if retry_after:
        response["headers"] = {
            "Retry-After": {
                "description": "Seconds to wait before sending the event again.",
                "required": True,
                "schema": {"type": "integer", "minimum": 0},
            }
        }
    return response


def _ack(description: str, statuses: list[str], *, duplicate: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["status", "event"],
                    "properties": {
                        "status": {"enum": statuses},
                        "event": {
                            "type": "string",
                            "pattern": "^[0-9a-f]{32}$",
                            "description": "The event key (dedupe key).",
                        },
                    },
                }
            }
        },
    }
    if duplicate:
        response["headers"] = {
            DUPLICATE_HEADER: {"required": True, "schema": {"const": "true"}},
        }
    return response


def openapi_document(settings: Settings) -> dict[str, Any]:
    """The OpenAPI 3.1 document of a receiver with these settings."""
    paths: dict[str, Any] = {
        "/": {
            "post": {
                "operationId": "receiveReturnEvent",
                "summary": "Receive one Redo return event",
                "description": (
                    "Redo's `webhooks: return` event. Acknowledged (2xx) only once Redis "
                    "has stored it; a 503 means nothing was stored and the sender must "
                    "retry. Every refusal (4xx, 503) stores nothing."
                ),
                "security": [{"bearer": []}],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Event"}}
                    },
                },
                "responses": {
                    "202": _ack(
                        "Stored. `unhandled`: no handler wants its type (kept, not run).",
                        ["accepted", "unhandled"],
                    ),
                    "200": _ack(
                        "A redelivery of an event already stored (within the dedupe window).",
                        ["duplicate"],
                        duplicate=True,
                    ),
                    "400": _problem("Not strict JSON, not an object, empty, or too deep."),
                    "401": _problem("Missing, malformed or unknown bearer secret."),
                    "408": _problem(f"The body did not arrive within {settings.body_timeout:g} s."),
                    "413": _problem(f"The body is larger than {settings.max_body_bytes} bytes."),
                    "422": _problem("JSON, but without a `type` or a `return.id`."),
                    "503": _problem(
                        "Not stored: Redis unreachable, nearly full, or the backlog at its "
                        "ceiling. Retry after `Retry-After` seconds.",
                        retry_after=True,
                    ),
                },
            }
        },
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "Liveness: the process answers",
                "responses": {"200": _status_response("ok")},
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "summary": "Readiness: Redis answers",
                "responses": {
                    "200": _status_response("ready"),
                    "503": _status_response("unavailable"),
                },
            }
        },
    }
    if settings.metrics_path:
        paths[settings.metrics_path] = {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {
                        "description": "Prometheus text exposition format 0.0.4.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "redo-hooks receiver",
            "version": version("redo-hooks"),
            "description": (
                "Receives Redo's return webhooks (see Redo's OpenAPI document, "
                "`webhooks: return`) and stores them for the handlers. Paths are "
                "relative to where the receiver is served or mounted."
            ),
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A secret the receiver accepts (REDO_HOOKS_SECRETS).",
                }
            },
            "schemas": {"Event": _event_schema(), "Problem": _problem_schema()},
        },
    }


def _status_response(status: str) -> dict[str, Any]:
    return {
        "description": status,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["status"],
                    "properties": {"status": {"const": status}},
                }
            }
        },
    }


def _event_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": (
            "A Redo return event: `{type, at, merchantName, return, order}` as in Redo's "
            "`webhooks: return` schema. The receiver requires only what routing and "
            "ordering need; other fields are kept as sent."
        ),
        "required": ["type", "return"],
        "properties": {
            "type": {
                "type": "string",
                "minLength": 1,
                "description": "created, updated, backfill, or a type Redo adds later.",
            },
            "return": {
                "type": "object",
                "required": ["id"],
                "properties": {
                    "id": {
                        "description": "The return id: events are ordered per return.",
                        "type": "string",
                        "minLength": 1,
                    }
                },
            },
        },
    }


def _problem_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "RFC 9457 problem details.",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string", "pattern": f"^{PROBLEM_BASE}[a-z-]+$"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "errors": {
                "type": "array",
                "description": "For 422: where the event lacks what routing needs.",
                "items": {
                    "type": "object",
                    "properties": {"loc": {"type": "string"}, "msg": {"type": "string"}},
                },
            },
        },
    }

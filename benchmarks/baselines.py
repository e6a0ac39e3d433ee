"""Reference endpoints the ingest benchmark measures the receiver against.

``bare``: read the body, answer 202 — the ASGI stack's ceiling.
``validate``: bearer check, strict parse and full validation with the
project's models (exactly what the receiver does before Redis), then 202.
``yardstick``: the fixed ruler of ``benchmarks/yardstick/reference_model.py``
(path in ``BENCH_YARDSTICK``): ``hmac.compare_digest`` on the Bearer
header, ``orjson.loads``, its plain pydantic ``ReturnEvent.model_validate``.
"""

from __future__ import annotations

import hmac

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from redo_hooks.errors import RejectedRequest
from redo_hooks.receiver.auth import BearerVerifier
from redo_hooks.receiver.body import parse_body

from .common import SECRET, yardstick_model

_verifier = BearerVerifier([SECRET])


async def _bare(request: Request) -> Response:
    await request.body()
    return Response(status_code=202)


async def _validate(request: Request) -> Response:
    try:
        _verifier.verify(request.headers.get("authorization", "").encode())
        parse_body(await request.body())
    except RejectedRequest as error:
        return Response(status_code=error.status)
    return Response(status_code=202)


async def _health(request: Request) -> Response:
    return Response(status_code=200)


_reference = yardstick_model()
_expected = f"Bearer {SECRET}".encode()


async def _yardstick(request: Request) -> Response:
    if not hmac.compare_digest(request.headers.get("authorization", "").encode(), _expected):
        return Response(status_code=401)
    _reference.model_validate(orjson.loads(await request.body()))
    return Response(status_code=202)


bare = Starlette(routes=[Route("/", _bare, methods=["POST"]), Route("/healthz", _health)])
validate = Starlette(routes=[Route("/", _validate, methods=["POST"]), Route("/healthz", _health)])
yardstick = Starlette(routes=[Route("/", _yardstick, methods=["POST"]), Route("/healthz", _health)])

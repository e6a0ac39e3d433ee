"""The receiver's published OpenAPI document, checked against the live app by schemathesis.

Every operation of the document, positive and negative examples, with a
bounded budget: no 5xx, and every response matches the document (status,
content type, headers, body schema), an unauthenticated call is refused.
(schemathesis' pytest plugin does not run on pytest 9, so the test drives its
Python API with hypothesis directly.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.core.result import Ok

from redo_hooks import ReturnEvent

from .conftest import SECRET, MakeHooks
from .servers import serve_in_thread

AUTH = {"Authorization": f"Bearer {SECRET}"}
BUDGET = 150  # examples per operation and mode


@pytest.fixture
def receiver_url(make_hooks: MakeHooks) -> Iterator[str]:
    hooks = make_hooks(max_body_bytes=64 * 1024)

    @hooks.on("return.created", name="contract")
    def handle(event: ReturnEvent) -> None: ...

    with serve_in_thread(hooks.asgi()) as url:
        yield url


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_live_receiver_keeps_its_published_contract(
    receiver_url: str, mode: GenerationMode
) -> None:
    schema = schemathesis.openapi.from_url(receiver_url + "/openapi.json")
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the document is invalid: {result.err()}"
        operations.append(result.ok())
    assert {(op.method.upper(), op.path) for op in operations} >= {
        ("POST", "/"), ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")
    }  # fmt: skip
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and not operation.body:
            continue  # nothing to get wrong in a GET without parameters

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=BUDGET,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            case.call_and_validate(headers=AUTH)

        check()


def test_the_document_is_served_and_can_be_turned_off(make_hooks: MakeHooks) -> None:
    with serve_in_thread(make_hooks().asgi()) as url:
        document = httpx.get(url + "/openapi.json").json()
    assert document["openapi"] == "3.1.0"
    responses = document["paths"]["/"]["post"]["responses"]
    assert set(responses) == {"200", "202", "400", "401", "408", "413", "422", "503"}
    assert "Retry-After" in responses["503"]["headers"]
    with serve_in_thread(make_hooks(openapi_path="").asgi()) as url:
        assert httpx.get(url + "/openapi.json").status_code == 404

"""Parse + validate alone: the project's decoding against the yardstick model, same run.

    .venv/bin/python -m benchmarks.models [--rounds 7] [--number 2000]

In-process, no HTTP, no Redis. For each body shape, the best time per call of:

* ``yardstick`` — ``orjson.loads`` then the plain pydantic model of
  ``benchmarks/yardstick/reference_model.py`` (``model_validate``): the ruler;
* ``receiver``  — :func:`redo_hooks.receiver.body.parse_body`: everything the
  receiver checks before Redis (UTF-8, depth bound, routing, typed decode,
  dedupe key);
* ``worker``    — :func:`redo_hooks.models.decode_event`: what a worker does to
  build the event a handler receives.

Shapes: the spec's example event; the same return with 20 items (and 20 order
lines); and the example with one value of the wrong shape at depth 4
(``return.totals.refund.amount`` as a number), which takes the mending path.
Target: receiver and worker <= 1.0x the yardstick on the first two shapes.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import timeit
from collections.abc import Callable
from functools import partial
from typing import Any

import orjson

from redo_hooks.models import decode_event
from redo_hooks.receiver.body import parse_body
from redo_hooks.testing import sample_event

from .common import YARDSTICK, table, yardstick_model


def shapes() -> dict[str, bytes]:
    """The bodies measured, by name."""
    example = sample_event("return.created")
    big = copy.deepcopy(example)
    for section in (big["return"]["items"], big["order"]["items"]):
        while len(section) < 20:
            section.append(copy.deepcopy(section[0]))
    off = copy.deepcopy(example)
    off["return"]["totals"]["refund"]["amount"] = 12.5
    return {
        "spec example": orjson.dumps(example),
        "20 items": orjson.dumps(big),
        "1 off-schema value": orjson.dumps(off),
    }


def yardstick(reference: Any, body: bytes) -> None:
    """The ruler's parse + validate; the off-schema body it refuses whole."""
    with contextlib.suppress(ValueError):
        reference.model_validate(orjson.loads(body))


def best_us(call: Callable[[], object], number: int, rounds: int) -> float:
    """Best of ``rounds`` runs of ``number`` calls, in µs per call."""
    return min(timeit.repeat(call, number=number, repeat=rounds)) / number * 1e6


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--number", type=int, default=2000)
    args = parser.parse_args(argv)
    reference = yardstick_model()
    if reference is None:
        print(f"no yardstick column: {YARDSTICK} is missing")
    results: dict[str, dict[str, float]] = {}
    bodies = shapes()
    for name, body in bodies.items():
        assert parse_body(body).subject, name  # each shape is a routable event
        row = {
            "receiver": best_us(partial(parse_body, body), args.number, args.rounds),
            "worker": best_us(partial(decode_event, body), args.number, args.rounds),
        }
        if reference is not None:
            row["yardstick"] = best_us(
                partial(yardstick, reference, body), args.number, args.rounds
            )
        results[name] = row
    rows = []
    for name, row in results.items():
        ruler = row.get("yardstick", 0.0)
        ratios = [f"{row[k] / ruler:.2f}x" if ruler else "-" for k in ("receiver", "worker")]
        rows.append(
            [name, f"{len(bodies[name]):,}", ruler, row["receiver"], row["worker"], *ratios]
        )
    headers = ["body", "bytes", "yardstick µs", "receiver µs", "worker µs"]
    print(table([*headers, "receiver ÷ yardstick", "worker ÷ yardstick"], rows))
    return results


if __name__ == "__main__":
    main()

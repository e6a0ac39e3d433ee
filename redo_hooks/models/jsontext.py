"""Strict JSON text: RFC 8259 parsing and a depth bound that costs little.

Pure functions over bytes. :func:`parse_json` is the one reader of a body's
JSON value; :func:`is_utf8` and :func:`deeper_than` are the checks the
receiver makes before the typed decoder skips over unknown fields (which it
does without checking their text).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

# What orjson refuses that RFC 8259's grammar allows (it lets implementations
# limit the rest): a lone UTF-16 surrogate escape, which a JavaScript sender
# emits when it cuts a string mid-emoji, and a number beyond a double's range.
# Refusing either is a 4xx, and Redo never retries a 4xx: the event is lost.
_GRAMMATICAL = ("surrogate", "infinity when parsed")


def parse_json(body: bytes) -> Any:
    """The JSON value of ``body``: strict RFC 8259, by orjson, with the grammar's own leeway.

    A lone surrogate escape (``"\\ud83d"``) is read as U+FFFD and a number
    beyond a double's range as infinity, instead of refused; the bytes are
    stored as received. Still refused: invalid UTF-8, trailing data and the
    ``NaN``/``Infinity`` literals (``ValueError``; orjson's is one).
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if not any(reason in str(exc) for reason in _GRAMMATICAL):
            raise
    # Rare: the standard library reads these; invalid UTF-8 stays refused.
    value = json.loads(body.decode("utf-8"), parse_constant=_refuse_constant, parse_int=_integer)
    return _without_lone_surrogates(value)


def _integer(digits: str) -> int | float:
    """An integer as orjson reads it: exact within 64 bits, else the nearest double.

    (Python's ``int()`` refuses more than 4,300 digits; a double takes any
    length, and one beyond its range is infinity, as for orjson.)
    """
    if len(digits) <= 20:
        number = int(digits)
        if -(2**63) <= number < 2**64:
            return number
    return float(digits)


def is_utf8(body: bytes) -> bool:
    """Whether ``body`` is valid UTF-8 (encoded surrogates refused, as RFC 3629 says)."""
    if body.isascii():
        return True
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# ``translate`` deletes every byte but brackets and quotes, and writes both
# kinds of bracket as braces: valid JSON nests them properly, so depth is the
# same, and one ``replace`` pass can peel exactly one level.
_NOT_STRUCTURE = bytes(c for c in range(256) if c not in b'{}[]"')
_BRACES = bytes.maketrans(b"[]", b"{}")


def deeper_than(body: bytes, limit: int) -> bool:
    """Whether the JSON text ``body`` nests arrays and objects deeper than ``limit``.

    ``body`` must be valid JSON. Works on the bytes, in C-speed passes: drop
    escaped quotes, keep only brackets and quotes, check that every string
    is bracket-free, drop the quotes, then peel the innermost pairs, one
    level per pass. A string holding a bracket (rare) falls back to walking
    the parsed value.
    """
    text = body
    if b"\\" in text:
        text = text.replace(b"\\\\", b"").replace(b'\\"', b"")
    shape = text.translate(_BRACES, _NOT_STRUCTURE)
    quotes = shape.count(b'"')
    if (len(shape) - quotes) // 2 <= limit:
        return False  # depth is bounded by the number of open brackets
    # Every string is bracket-free exactly when its two quotes are adjacent
    # here: then a left-to-right count of '""' pairs up every quote (the
    # first quote of a string holding a bracket pairs with nothing).
    if shape.count(b'""') * 2 != quotes:
        return value_deeper_than(parse_json(body), limit)
    shape = shape.translate(None, b'"')
    for _ in range(limit):
        if not shape:
            return False
        shape = shape.replace(b"{}", b"")  # one level: every innermost pair
    return bool(shape)


def value_deeper_than(value: Any, limit: int) -> bool:
    """Whether a parsed JSON value nests deeper than ``limit``."""
    # Iterative (no recursion to exhaust) and visits containers only.
    stack: list[tuple[Any, int]] = [(value, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        node, level = pop()
        if level > limit:
            return True
        children = node.values() if type(node) is dict else node
        for child in children:
            kind = type(child)
            if kind is dict or kind is list:
                push((child, level + 1))
    return False


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (RFC 8259)")


def _without_lone_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list):
        return [_without_lone_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {_without_lone_surrogates(k): _without_lone_surrogates(v) for k, v in value.items()}
    return value

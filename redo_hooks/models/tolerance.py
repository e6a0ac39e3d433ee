"""Field-level tolerance: one value's surprise is not the whole event's failure.

A typed decoder refuses a whole body when one value has an unexpected shape
(``totals.refund.amount`` sent as a number instead of a money object). For a
webhook that would make every handler lose the event, including handlers that
never read totals. :class:`TolerantDecoder` decodes in two steps:

* the fast path decodes the body's bytes straight into the models (every
  event that fits: one pass, no intermediate dicts);
* only when that fails, the body is parsed and *mended* one error at a time:
  the value at the error's path reads as ``None`` (a list element of the wrong
  shape is left out), a number where text is expected becomes its text (old
  spec versions sent ids as numbers), and each mend is listed as a schema
  error. The parsed body itself is never changed: mends copy the containers
  on their path.

What routing needs (``required`` paths) cannot be mended: an error there
raises :class:`UnroutableEvent`.
"""

from __future__ import annotations

import re
from typing import Any, Generic, TypeVar

import msgspec

T = TypeVar("T")

#: Mends of single values before whole sections (``return.items``) are
#: nulled instead: bounds the work a body with thousands of errors costs.
FINE_MENDS = 32

_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")
Path = tuple[str | int, ...]


class UnroutableEvent(ValueError):
    """The body lacks what routing needs, or is not a JSON object."""


class TolerantDecoder(Generic[T]):
    """Decode JSON bodies into ``model``, mending values that do not fit."""

    def __init__(self, model: type[T], required: set[Path]) -> None:
        self.model = model
        self.required = required
        self._decoder = msgspec.json.Decoder(model)

    def decode(self, body: bytes) -> T | None:
        """The fast path: ``body`` decoded, or ``None`` for any body it refuses.

        That covers a value that needs mending, what :func:`parse_json` reads
        but the typed decoder refuses (a lone surrogate escape), and a body that
        is not JSON at all: the caller's ``parse_json`` tells those apart.
        """
        try:
            return self._decoder.decode(body)
        except msgspec.DecodeError:  # ValidationError included
            return None

    def mend(self, raw: Any) -> tuple[T, list[str]]:
        """Decode a parsed body, mending what does not fit; the mends as errors."""
        if type(raw) is not dict:
            raise UnroutableEvent(f"the body is a JSON {type(raw).__name__}, not an object")
        errors: list[str] = []
        fixed: Any = raw
        mends = 0
        while True:
            try:
                return msgspec.convert(fixed, self.model), errors
            except msgspec.ValidationError as exc:
                message, path = _split(str(exc))
            if path in self.required or not path:
                raise UnroutableEvent(f"{_dotted(path) or 'body'}: {message}")
            mends += 1
            if mends > FINE_MENDS:
                path = path[:2]
            fixed, listed = _mended(fixed, path, message)
            if listed:
                errors.append(f"{_dotted(path)}: {message}")


def _split(error: str) -> tuple[str, Path]:
    """msgspec's ``"Expected `str`, got `int` - at `$.a.b[0]`"`` as message and path."""
    message, _, where = error.partition(" - at `$")
    steps: list[str | int] = []
    for key, index in _STEP.findall(where.rstrip("`")):
        steps.append(int(index) if index else key)
    return message, tuple(steps)


def _dotted(path: Path) -> str:
    out = ""
    for step in path:
        out += f"[{step}]" if type(step) is int else (f".{step}" if out else str(step))
    return out


def _mended(root: Any, path: Path, message: str) -> tuple[Any, bool]:
    """``root`` with the value at ``path`` mended (copies on the way); whether to list it."""
    top = _copy(root)
    node = top
    for step in path[:-1]:
        child = _copy(node[step])
        node[step] = child
        node = child
    last = path[-1]
    try:
        value = node[last]
    except (KeyError, IndexError, TypeError):
        raise UnroutableEvent("a schema error's path does not match the body") from None
    if message.startswith("Expected `str") and type(value) in (int, float):
        node[last] = str(value)  # an id sent as a number: its text, as before
        return top, False
    if type(node) is list and type(last) is int:
        del node[last]
    else:
        node[last] = None
    return top, True


def _copy(container: Any) -> Any:
    if type(container) is dict:
        return dict(container)
    if type(container) is list:
        return list(container)
    raise UnroutableEvent("a schema error's path does not match the body")

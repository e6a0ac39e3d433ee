"""Redis replies as the types the code wants (redis-py types them ``bytes | str``)."""

from __future__ import annotations

from typing import Any


def text(value: Any) -> str:
    """A reply as ``str`` (bytes are UTF-8 decoded)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def as_bytes(value: Any) -> bytes:
    """A reply as ``bytes``; ``None`` (no such key or field) as ``b""``."""
    if isinstance(value, bytes):
        return value
    if value is None:
        return b""
    return str(value).encode()

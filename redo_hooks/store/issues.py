"""Issues: dead letters grouped by handler and error, counted as they are written.

An incident is rarely one failure: ten returns dead-lettered with "warehouse
API returned 503" are one problem. Each dead letter carries a *fingerprint*:
its handler and its error with the parts that vary between occurrences (ids,
numbers, quoted values) masked. The scripts that write and remove dead
letters keep, per fingerprint (``_issues.lua``):

* ``<p>:issue:<fp>``: handler, title (the masked error), first and last seen,
  the newest letter (the sample), and counts of open letters, of those
  parked, and of every letter ever seen while the issue was open;
* ``<p>:issue:<fp>:letters``: its open letters' ids by time;
* ``<p>:issue:<fp>:returns``: return id -> its open letters (``HLEN``: the
  returns affected);
* ``<p>:issues``: the open issues by when last seen.

So listing issues reads a page of that index and a hash per issue: nothing
is scanned, however many events are stored. An issue closes (its keys go)
when its last letter is retried or dropped; a new failure opens it again.
"""

from __future__ import annotations

import hashlib
import re

import orjson
from redis import Redis

from . import lua
from .keys import Keys
from .replies import as_bytes

#: The masked title is cut to this many characters (a message may quote a body).
TITLE_CHARS = 240

_VARYING = re.compile(
    r"""
      '[^']*'                                           # a quoted value
    | "[^"]*"
    | \b[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\b  # a uuid
    | \b(?=[0-9a-f]*[0-9])[0-9a-f]{12,}\b               # a long hex id
    | \d+(?:\.\d+)?                                     # a number
    """,
    re.IGNORECASE | re.VERBOSE,
)


def mask(error: str) -> str:
    """``error`` with the parts that vary between occurrences masked.

    Quoted values become ``'…'``, uuids and long hex ids ``<id>``, numbers
    ``<n>``: "Timeout after 30.5 s for 'ret-123'" and "Timeout after 12 s
    for 'ret-9'" read the same.
    """
    first_line = error.strip().splitlines()[0] if error.strip() else ""

    def replace(match: re.Match[str]) -> str:
        found = match.group(0)
        if found[0] in "'\"":
            return f"{found[0]}…{found[0]}"
        return "<n>" if found[0].isdigit() and found.replace(".", "").isdigit() else "<id>"

    return _VARYING.sub(replace, first_line)[:TITLE_CHARS]


def fingerprint(handler: str, error: str) -> tuple[str, str]:
    """(fingerprint, title) of a failure of ``handler`` with ``error`` ("Type: message")."""
    title = mask(error)
    digest = hashlib.blake2b(f"{handler}\0{title}".encode(), digest_size=8).hexdigest()
    return digest, title


def index_issues(connection: Redis, keys: Keys, page: int = 500) -> int:
    """Group the dead letters written before issues existed, once; how many.

    Reads the registry a page per round trip (only this once: letters since
    are grouped by the scripts that write them).
    """
    if connection.exists(keys.issues_indexed):
        return 0
    script = connection.register_script(lua.source("issue_index"))
    added = 0
    for dead_id, raw in connection.hscan_iter(keys.dead, count=page):
        data = orjson.loads(as_bytes(raw))
        if data.get("fingerprint"):
            continue
        fp, title = fingerprint(str(data.get("handler", "")), str(data.get("error", "")))
        added += int(script(keys=[keys.dead], args=[dead_id, keys.base, fp, title]))
    connection.set(keys.issues_indexed, 1)
    return added

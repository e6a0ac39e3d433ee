"""Merging a secret into a dotenv file's ``REDO_HOOKS_SECRETS``, rather than adding a line.

``subscribe … >> .env`` used to add a second ``REDO_HOOKS_SECRETS=`` line,
and dotenv readers keep only the last one: the other stores' secrets were
silently dropped. ``merge_secret`` keeps one line holding every entry.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..settings import ENV_PREFIX

NAME = f"{ENV_PREFIX}SECRETS"
_LINE = re.compile(rf"^(?P<export>\s*(?:export\s+)?){NAME}\s*=\s*(?P<value>.*?)\s*$")


def merge_secret(path: Path, entry: str) -> list[str]:
    """Add ``entry`` to the ``REDO_HOOKS_SECRETS`` line of the dotenv file at ``path``.

    Creates the file (owner-only) or the line if missing; folds several
    ``REDO_HOOKS_SECRETS`` lines into the first; keeps every existing entry
    and their order. Returns the entries now on the line.
    """
    lines = path.read_text().splitlines() if path.exists() else []
    entries: list[str] = []
    first: int | None = None
    quote = ""
    export = ""
    kept: list[str] = []
    for line in lines:
        match = _LINE.match(line)
        if match is None:
            kept.append(line)
            continue
        value = match["value"]
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            quote, value = value[0], value[1:-1]
        if first is None:
            first, export = len(kept), match["export"]
            kept.append("")  # the merged line goes here
        entries += [e.strip() for e in value.split(",") if e.strip()]
    if entry not in entries:
        entries.append(entry)
    merged = f"{export}{NAME}={quote}{','.join(entries)}{quote}"
    if first is None:
        kept.append(merged)
    else:
        kept[first] = merged
    text = "\n".join(kept) + "\n"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    return entries

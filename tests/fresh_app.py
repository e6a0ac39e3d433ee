"""A RedoHooks built at import from the environment (the CLI tests re-import it)."""

from __future__ import annotations

from redo_hooks import RedoHooks

hooks = RedoHooks()

"""``python -m redo_hooks.cli``: the ``redo-hooks`` command."""

from . import main

main()

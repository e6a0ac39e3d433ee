"""What operators read and do: status, the run log, dead letters, replay.

- ``admin.py``: ``Admin``, the operator API the CLI and the dashboard call
  (public as :mod:`redo_hooks.admin`);
- ``status.py``: a read-only snapshot of queues, lanes and dead letters;
- ``events.py``: the run log's searches and a return's timeline;
- ``dead_letters.py``: list, show, retry and drop what handlers gave up on;
- ``replay.py``: run stored events again, by time, name, return, handler or outcome;
- ``issues.py``: dead letters grouped by handler and masked error;
- ``overview.py``: per handler and per worker process, for the overview;
- ``doctor.py``: ``redo-hooks doctor``'s checks of Redis, workers and flow;
- ``paging.py``: the opaque cursors of paged reads;
- ``spec_check.py``: ``redo-hooks check-spec``, the models against a spec file.

May import ``errors``, ``settings``, ``models``, ``store`` and ``dispatch``;
never ``receiver``, ``hooks``, ``dev`` or ``cli``.
"""

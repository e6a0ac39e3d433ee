"""Local development: ``redo-hooks dev`` and a private ``redis-server``.

- ``runner.py``: Redis, receiver and worker together, restarted on code changes;
- ``redis_server.py``: a real ``redis-server`` on a free port, for ``dev``,
  tests and benchmarks (``redo_hooks.testing.RedisServer``).

May import ``errors``, ``settings`` and ``receiver``; only ``cli`` and
``testing`` import it.
"""

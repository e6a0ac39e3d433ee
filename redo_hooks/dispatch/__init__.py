"""Running handlers: the routing table, lanes and lane jobs, the worker processes.

- ``handlers.py``: ``Handler`` and ``Registry``, what ``@hooks.on`` fills
  (pure: no I/O);
- ``runtime.py``: what lane jobs need in a worker process;
- ``lanes.py``: a lane job draining its lanes, all at once
  (``redo_hooks.jobs.run_lane`` is its stable RQ entry point);
- ``lane.py``: one lane's pass, one event at a time;
- ``calls.py``: calling a handler: bounded, per-handler threads, timeouts
  that never overlap the lane's next attempt;
- ``failures.py``: a lane's failed handler call, retried or dead-lettered;
- ``rescue.py``: lanes whose owner job is gone, rescued by maintenance;
- ``counters.py``: the workers' metrics, buffered and added up in Redis;
- ``threads.py``: the bounded daemon-thread pool sync handlers run on;
- ``rq_worker.py``: RQ's ``SimpleWorker`` with the internals it needs (see
  ``store/rq_internals.py`` for the list);
- ``worker.py``: one worker process, its job slots and burst draining;
- ``promoter.py``: due scheduled jobs moved onto the queue, atomically;
- ``supervisor.py``: the parent of a worker's processes (``--concurrency``):
  restarts them and renews their jobs' heartbeats.

May import ``errors``, ``settings``, ``backoff``, ``models``, ``store``,
``logs`` and ``tracing``; never ``receiver``, ``ops``, ``hooks``, ``dev`` or
``cli`` (the worker takes any object with ``registry`` and ``settings``).
"""

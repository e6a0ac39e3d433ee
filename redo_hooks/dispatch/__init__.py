"""Running handlers: the routing table, lanes and lane jobs, the worker processes.

- ``handlers.py``: ``Handler`` and ``Registry``, what ``@hooks.on`` fills
  (pure: no I/O);
- ``runtime.py``: what lane jobs need in a worker process;
- ``lanes.py``: a lane job draining its lanes, one event at a time per lane
  (``redo_hooks.jobs.run_lane`` is its stable RQ entry point);
- ``failures.py``: a lane's failed handler call, retried or dead-lettered;
- ``rescue.py``: lanes whose owner job is gone, rescued by maintenance;
- ``counters.py``: the workers' metrics, buffered and added up in Redis;
- ``threads.py``: the bounded daemon-thread pool sync handlers run on;
- ``worker.py``: one worker process (RQ ``SimpleWorker``), burst draining and
  the promoter of scheduled jobs;
- ``supervisor.py``: the parent of a worker's processes (``--concurrency``):
  restarts them and renews their jobs' heartbeats.

May import ``errors``, ``settings``, ``backoff``, ``models`` and ``store``;
never ``receiver``, ``ops``, ``hooks``, ``dev`` or ``cli`` (the worker takes
any object with ``registry`` and ``settings``).
"""

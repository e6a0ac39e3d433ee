"""What operators read and do: status, dead letters, replay, metrics.

- ``status.py``: a read-only snapshot of queues, lanes and dead letters;
- ``dead_letters.py``: list, show, retry and drop what handlers gave up on;
- ``replay.py``: run stored events again, by time, type, return or handler;
- ``metrics.py``: the Prometheus exposition (the receiver's own counters,
  and the pipeline's read from Redis).

May import ``errors``, ``settings``, ``models``, ``store`` and ``dispatch``;
never ``receiver``, ``hooks``, ``dev`` or ``cli``. The CLI calls these.
"""

"""Redis: what is stored where, and every atomic step that writes it.

- ``keys.py``: every key name, with the schema in its docstring;
- ``connections.py``: clients from ``redis://`` and ``redis+sentinel://`` URLs
  (parsed by :mod:`redo_hooks.redis_url`);
- ``events.py``: an event as stored (``Incoming``, the dedupe key, the body codec);
- ``ingest.py``: the receiver's one atomic write (group-committed ``ingest.lua``);
- ``lua.py`` and ``lua/``: the Lua scripts, each with its ``KEYS``/``ARGV`` documented;
- ``memory.py``: Redis memory readings and the eviction-policy check;
- ``rq_internals.py``: the RQ job layout, and every other use of RQ's internals;
- ``replies.py``: decoding Redis replies.

May import ``errors``, ``redis_url``, ``settings`` and ``logs`` only: nothing
here knows of the models, the receiver, the workers or the operators' tools.
"""

"""The request path: everything between Redo's ``POST`` and the ``202``.

- ``app.py``: the Starlette app and its ``Receiver`` state (``POST /``,
  ``/healthz``, ``/readyz``, ``/metrics``, the OpenAPI document);
- ``auth.py``: bearer verification (constant time, several secrets, a
  cached resolver);
- ``body.py``: sans-I/O parsing and validation of the body (strict JSON,
  bounded depth, what routing needs);
- ``backpressure.py``: 503 before Redis fills;
- ``contract.py``: the receiver's published OpenAPI 3.1 contract;
- ``metrics.py``: ``/metrics``, the Prometheus exposition it serves (its own
  counters, and the pipeline's read from Redis);
- ``mounting.py``: the receiver mounted in another app, and metrics alone;
- ``drift.py``: schema drift, sampled beside the request;
- ``server.py``: uvicorn with header and body deadlines.

May import ``errors``, ``redis_url``, ``settings``, ``models``, ``store``,
``dispatch`` (the routing table and the workers' counters), ``logs`` and
``tracing``; never ``ops``, ``hooks`` (the facade hands the receiver its
settings, handlers and secret resolver), ``dev`` or ``cli``.
"""

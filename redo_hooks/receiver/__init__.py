"""The request path: everything between Redo's ``POST`` and the ``202``.

- ``app.py``: the Starlette app and its ``Receiver`` state (``POST /``,
  ``/healthz``, ``/readyz``, ``/metrics``, the OpenAPI document);
- ``auth.py``: bearer verification (constant time, several secrets, a
  cached resolver);
- ``body.py``: sans-I/O parsing and validation of the body (strict JSON,
  bounded depth, what routing needs);
- ``backpressure.py``: 503 before Redis fills;
- ``contract.py``: the receiver's published OpenAPI 3.1 contract;
- ``server.py``: uvicorn with header and body deadlines.

May import ``errors``, ``settings``, ``models``, ``store``, ``dispatch.handlers``
(the routing table) and ``ops.metrics``; never ``hooks`` (the facade hands
the receiver its settings, handlers and secret resolver), ``dev`` or ``cli``.
"""

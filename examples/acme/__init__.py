"""An existing FastAPI app that takes Redo webhooks: handlers live in its own package.

``acme.orders`` is the app's own code; ``acme.webhooks`` holds the
``RedoHooks`` object and its handlers, which call into it; ``acme.main`` is
the FastAPI app, which mounts the receiver. Run::

    uvicorn examples.acme.main:app
    redo-hooks worker examples.acme.webhooks:hooks
"""

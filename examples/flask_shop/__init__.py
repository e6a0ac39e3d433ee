"""A Flask shop whose Redo handlers use the Flask app: its config and extensions.

The receiver runs standalone (``redo-hooks serve examples.flask_shop.hooks:hooks``,
beside your Flask app's own WSGI server: a webhook receiver is an ASGI app
and needs no Flask route); the workers run the handlers, each inside the
Flask app's context so ``current_app`` and extensions work as in a view.
"""

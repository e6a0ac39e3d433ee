"""The Flask app: its config, and a tiny extension (a store of restocks) in ``extensions``."""

from __future__ import annotations

import sqlite3
from typing import Any

from flask import Flask, current_app, g


def create_app(**config: Any) -> Flask:
    """The Flask application factory, as a Flask project has one."""
    app = Flask(__name__)
    app.config.update(DATABASE=":memory:", WAREHOUSE="main")
    app.config.update(config)

    @app.get("/restocks")
    def restocks() -> dict[str, list[str]]:
        rows = db().execute("SELECT return_id FROM restocks ORDER BY rowid").fetchall()
        return {"restocks": [row[0] for row in rows]}

    @app.teardown_appcontext
    def close_db(error: BaseException | None) -> None:
        connection = g.pop("db", None)
        if connection is not None:
            connection.close()

    with app.app_context():
        db().execute("CREATE TABLE IF NOT EXISTS restocks (return_id TEXT, warehouse TEXT)")
    return app


def db() -> sqlite3.Connection:
    """The app's database connection, per app context (Flask's ``g``)."""
    if "db" not in g:
        g.db = sqlite3.connect(current_app.config["DATABASE"], check_same_thread=False)
    connection: sqlite3.Connection = g.db
    return connection

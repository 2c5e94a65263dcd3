"""The shop's database wiring, registered with `init_app(app)` as in Flask's tutorial (flaskr's db.py).

One engine per app (with its connection pool), one session per request opened on first use and closed at
teardown whatever happened in the view, and each request's statement count and database time returned as
response headers (`X-Statements`, `X-DB-Time-ms`, and the standard `Server-Timing`). Views import `get_session`
from here; the factory imports this module, never the views.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Flask, Response, current_app, g, has_request_context, jsonify
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from ..db import Executed, is_statement_timeout, listen_statements, make_engine

__all__ = ["close_session", "get_engine", "get_session", "init_app"]


def init_app(app: Flask) -> None:
    """Create the app's engine from DATABASE_URL and ENGINE_OPTIONS and register the request hooks."""
    engine = make_engine(app.config["DATABASE_URL"], **app.config["ENGINE_OPTIONS"])
    app.extensions["engine"] = engine
    app.extensions["sessionmaker"] = sessionmaker(engine, expire_on_commit=False)
    app.teardown_appcontext(close_session)
    if app.config.get("STATEMENT_HEADERS", True):  # off only to measure what the headers cost (lesson 08)
        _count_statements_per_request(app, engine)
    app.register_error_handler(PoolTimeout, _pool_exhausted)
    app.register_error_handler(OperationalError, _database_unavailable)


def get_engine() -> Engine:
    """The current app's engine."""
    engine: Engine = current_app.extensions["engine"]
    return engine


def get_session() -> Session:
    """The request's session, opened on first use and closed at teardown."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["sessionmaker"]()
    session: Session = g.db_session
    return session


def close_session(exc: BaseException | None = None) -> None:
    """Close the request's session (rolling back anything uncommitted) and give its connection back."""
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


def _count_statements_per_request(app: Flask, engine: Engine) -> None:
    """Expose each request's statement count and database time as response headers (X- and Server-Timing)."""

    def heard(executed: Executed, caller: Any) -> None:
        if has_request_context():
            g.db_statements = g.get("db_statements", 0) + 1
            g.db_seconds = g.get("db_seconds", 0.0) + executed.duration_s

    listen_statements(engine, heard)

    @app.before_request
    def _start() -> None:
        g.request_started = time.perf_counter()

    @app.after_request
    def _headers(response: Response) -> Response:
        statements, db_ms = g.get("db_statements", 0), g.get("db_seconds", 0.0) * 1000
        response.headers["X-Statements"] = str(statements)
        response.headers["X-DB-Time-ms"] = f"{db_ms:.3f}"
        # The same as the web's standard header (W3C Server Timing), which browsers' developer tools show in
        # their network panel and APM agents read: durations in milliseconds, the count in the description.
        timing = [f'db;dur={db_ms:.3f};desc="{statements} statement{"" if statements == 1 else "s"}"']
        started = g.get("request_started")
        if started is not None:
            total_ms = (time.perf_counter() - started) * 1000
            response.headers["X-Response-Time-ms"] = f"{total_ms:.3f}"
            timing.append(f"total;dur={total_ms:.3f}")
        response.headers["Server-Timing"] = ", ".join(timing)
        return response


def _unavailable(message: str) -> tuple[Response, int, dict[str, str]]:
    return jsonify(error="Service Unavailable", message=message), 503, {"Retry-After": "1"}


def _pool_exhausted(exc: PoolTimeout) -> tuple[Response, int, dict[str, str]]:
    """Every pooled connection stayed busy for pool_timeout seconds: say so quickly rather than hang."""
    pool = get_engine().pool
    return _unavailable(f"the database is busy: no free connection within the pool timeout ({pool.status()})")


def _database_unavailable(exc: OperationalError) -> tuple[Response, int, dict[str, str]]:
    """The database went away (restarted, unreachable): a 503 the client can retry, not a 500.

    On SQLite an OperationalError is usually a mistake in the code (`no such table`): that stays a 500.
    """
    if (get_engine().dialect.name == "sqlite" and not exc.connection_invalidated) or is_statement_timeout(exc):
        raise exc  # a mistake in the code, or a statement stopped for running too long: not an outage
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "unreachable"
    return _unavailable(f"the database is unavailable ({reason}); try again in a moment")

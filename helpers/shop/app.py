"""The shop's Flask app factory: one engine, one session per request, statement counts per request."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Flask, Response, g, has_request_context, jsonify, request, url_for
from flask_caching import Cache
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.exceptions import HTTPException

from ..config import settings
from ..db import course_url, make_engine

cache = Cache()


def create_app(config: Mapping[str, Any] | None = None, *, views: Blueprint | None = None) -> Flask:
    """Build the shop app; `views` is the blueprint of endpoints (the naive baseline by default)."""
    app = Flask("shop")
    app.config.from_mapping(
        DATABASE_URL=None,  # None: the course database for COURSE_SIZE / COURSE_BACKEND
        ENGINE_OPTIONS={},  # passed to create_engine: pool_size, max_overflow, echo, ...
        CACHE_DEFAULT_TIMEOUT=300,
        **cache_config(),
    )
    app.config.from_mapping(config or {})
    url = app.config["DATABASE_URL"] or course_url()
    engine = make_engine(url, **app.config["ENGINE_OPTIONS"])
    app.extensions["engine"] = engine
    app.extensions["sessionmaker"] = sessionmaker(engine, expire_on_commit=False)
    _count_statements_per_request(app, engine)
    cache.init_app(app)
    app.teardown_appcontext(_close_session)
    app.register_error_handler(HTTPException, _json_error)
    if views is None:
        from .baseline import bp

        views = bp
    app.register_blueprint(views)
    app.add_url_rule("/", "index", _index)
    return app


def cache_config() -> dict[str, Any]:
    """Flask-Caching settings for COURSE_CACHE: a per-process SimpleCache, or a shared Redis."""
    s = settings()
    if s.cache == "redis":
        from ..servers import check_redis, redis_url

        url = s.cache_redis_url or redis_url()
        check_redis(url)
        return {"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": url}
    # Spelled out: with no CACHE_TYPE, Flask-Caching silently uses NullCache and caches nothing.
    return {"CACHE_TYPE": "SimpleCache"}


def get_engine() -> Engine:
    from flask import current_app

    engine: Engine = current_app.extensions["engine"]
    return engine


def get_session() -> Session:
    """The request's session, opened on first use and closed at teardown."""
    if "db_session" not in g:
        from flask import current_app

        g.db_session = current_app.extensions["sessionmaker"]()
    session: Session = g.db_session
    return session


def _close_session(exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


def _count_statements_per_request(app: Flask, engine: Engine) -> None:
    """Expose each request's statement count and database time as response headers."""

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if has_request_context():
            g.db_started = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if has_request_context() and "db_started" in g:
            g.db_statements = g.get("db_statements", 0) + 1
            g.db_seconds = g.get("db_seconds", 0.0) + time.perf_counter() - g.pop("db_started")

    @app.before_request
    def _start() -> None:
        g.request_started = time.perf_counter()

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers["X-Statements"] = str(g.get("db_statements", 0))
        response.headers["X-DB-Time-ms"] = f"{g.get('db_seconds', 0.0) * 1000:.3f}"
        response.headers["X-Response-Time-ms"] = f"{(time.perf_counter() - g.request_started) * 1000:.3f}"
        return response


def _json_error(exc: HTTPException) -> tuple[Response, int]:
    """Errors as JSON with the reason, never an HTML page or a traceback."""
    return jsonify(error=exc.name, message=exc.description), exc.code or 500


def _index() -> Response:
    """Every endpoint with an example link."""
    from flask import current_app

    examples = current_app.config.get("EXAMPLES", {})
    endpoints = []
    for rule in sorted(current_app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint in ("static", "index"):
            continue
        view = current_app.view_functions[rule.endpoint]
        example = examples.get(rule.endpoint) or getattr(view, "example", None)
        endpoints.append(
            {
                "rule": rule.rule,
                "doc": (view.__doc__ or "").strip().splitlines()[0] if view.__doc__ else "",
                "example": request.host_url.rstrip("/") + example if example else None,
            }
        )
    return jsonify(app="shop", endpoints=endpoints, index=url_for("index"))

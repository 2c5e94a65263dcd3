"""The library's Flask app factory, wired like the shop's: the shop's database wiring (`helpers.shop.db`: an
engine per app, a session per request closed at teardown, statement and time headers, 503 on an exhausted pool),
its own cache, JSON errors, and its views as one blueprint.

    app = create_app({"DATABASE_URL": url}, views=spec.blueprint())
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify
from werkzeug.exceptions import HTTPException

from ..errors import CourseError
from ..shop import db
from .caching import cache
from .spec import blueprint

__all__ = ["RECENT_ERRORS", "create_app", "index"]

_DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": None,  # required
    # A small pool with a short wait: a request that cannot get a connection in half a second is a 503.
    "ENGINE_OPTIONS": {"pool_size": 4, "max_overflow": 4, "pool_timeout": 0.5},
    "CACHE_TYPE": "SimpleCache",
    "CACHE_DEFAULT_TIMEOUT": 300,
}
RECENT_ERRORS = "library.recent_errors"


def create_app(
    config: Mapping[str, Any] | None = None, *, views: Blueprint | Sequence[Blueprint] | None = None
) -> Flask:
    """Build the library app on config["DATABASE_URL"]; `views` are its endpoints (default: as specified)."""
    app = Flask("library")
    app.config.from_mapping(_DEFAULTS)
    app.config.from_mapping(config or {})
    if not app.config["DATABASE_URL"]:
        raise CourseError("The library's create_app needs DATABASE_URL in its config.")
    db.init_app(app)
    cache.init_app(app)
    app.extensions[RECENT_ERRORS] = deque(maxlen=50)
    app.register_error_handler(HTTPException, _json_error)
    for bp in [views or blueprint()] if isinstance(views, Blueprint | None) else views:
        app.register_blueprint(bp)
    app.add_url_rule("/", "index", index)
    return app


def _json_error(exc: HTTPException) -> tuple[Response, int]:
    """Errors as JSON; the last 50 are kept (with their tracebacks) for the operators' error page."""
    current_app.extensions[RECENT_ERRORS].append(exc)
    return jsonify(error=exc.name, message=exc.description), exc.code or 500


def _recent_errors(app: Flask) -> list[dict[str, Any]]:
    """The operators' error page: the app's last errors, newest first."""
    return [{"error": e.name, "message": e.description} for e in reversed(app.extensions[RECENT_ERRORS])]


def index() -> Response:
    """Every endpoint: its methods, rule and what it returns (the first line of its docstring)."""
    listed = [
        {
            "methods": sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}),
            "rule": rule.rule,
            "doc": (current_app.view_functions[rule.endpoint].__doc__ or "").strip().split("\n")[0],
        }
        for rule in current_app.url_map.iter_rules()
        if rule.endpoint not in ("static", "index")
    ]
    return jsonify(app="library", endpoints=listed)

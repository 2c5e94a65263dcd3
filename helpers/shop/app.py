"""The shop's Flask app factory: settings in, extensions registered with init_app, views as blueprints.

    app = create_app({"DATABASE_URL": url, "CACHE_TYPE": "SimpleCache"}, views=my_blueprint)

`Course.app()` fills DATABASE_URL and the cache settings from the course settings, so lessons rarely call
this directly. Nothing here reads the environment: what the app uses is what it was given.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from ..errors import CourseError
from . import db
from .baseline import bp
from .caching import cache

__all__ = ["create_app", "endpoints", "index"]

_DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": None,  # required: a SQLAlchemy URL (Course.app() passes the lesson's database)
    "ENGINE_OPTIONS": {},  # passed to create_engine: pool_size, max_overflow, pool_timeout, echo, ...
    "CACHE_TYPE": "SimpleCache",  # unset, Flask-Caching would fall back to NullCache: nothing cached
    "CACHE_DEFAULT_TIMEOUT": 300,
}


def create_app(
    config: Mapping[str, Any] | None = None, *, views: Blueprint | Sequence[Blueprint] | None = None
) -> Flask:
    """Build the shop app on config["DATABASE_URL"]; `views` are its endpoints (default: the naive baseline)."""
    app = Flask("shop")
    app.config.from_mapping(_DEFAULTS)
    app.config.from_mapping(config or {})
    if not app.config["DATABASE_URL"]:
        raise CourseError("create_app needs DATABASE_URL in its config: use course.app(), which passes it.")
    db.init_app(app)
    cache.init_app(app)
    app.register_error_handler(HTTPException, _json_error)
    if views is None:
        views = bp
    for blueprint in [views] if isinstance(views, Blueprint) else views:
        app.register_blueprint(blueprint)
    app.add_url_rule("/", "index", index)
    return app


def _json_error(exc: HTTPException) -> tuple[Response, int]:
    """Errors as JSON with the reason, never an HTML page or a traceback."""
    return jsonify(error=exc.name, message=exc.description), exc.code or 500


def endpoints() -> list[dict[str, Any]]:
    """Every endpoint of the current app: its rule, methods, first docstring line and example URL."""
    listed = []
    for rule in sorted(current_app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint)):
        if rule.endpoint in ("static", "index"):
            continue
        view = current_app.view_functions[rule.endpoint]
        example = getattr(view, "example", None)
        listed.append(
            {
                "rule": re.sub(r"<(\w+)\([^)]*\):", r"<\1:", rule.rule),  # <int(max=…):id> reads as <int:id>
                "methods": sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}),
                "doc": (view.__doc__ or "").strip().splitlines()[0] if view.__doc__ else "",
                "example": request.host_url.rstrip("/") + example if example else None,
                "example_body": getattr(view, "example_body", None),  # what to POST there
            }
        )
    return listed


def _example_cell(endpoint: dict[str, Any]) -> str:
    """A link to try a GET endpoint; for a write, the URL and the JSON body to send it."""
    url, body = endpoint["example"], endpoint["example_body"]
    if body is not None:
        return f"<code>{escape(url)}</code> with the JSON body <code>{escape(json.dumps(body))}</code>"
    return f'<a href="{escape(url)}">{escape(url)}</a>' if url else ""


def index() -> Response:
    """Every endpoint with an example link: an HTML page for browsers, JSON for API clients."""
    listed = endpoints()
    if request.accept_mimetypes.best_match(["application/json", "text/html"]) != "text/html":
        return jsonify(app="shop", endpoints=listed)
    items = "\n".join(
        f"<tr><td><code>{' '.join(e['methods'])}</code></td><td><code>{escape(e['rule'])}</code></td>"
        f"<td>{escape(e['doc'])}</td><td>" + _example_cell(e) + "</td></tr>"
        for e in listed
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>The shop</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}}td,th{{padding:.3rem .8rem;
text-align:left;vertical-align:top}}tr:nth-child(even){{background:#f3f5f8}}</style></head>
<body><h1>The shop</h1>
<p>The course's Flask + SQLAlchemy shop. Every endpoint answers JSON; each response carries
<code>X-Statements</code>, <code>X-DB-Time-ms</code> and <code>X-Response-Time-ms</code> headers.
This page is also available as JSON (<code>Accept: application/json</code>).</p>
<table><tr><th>method</th><th>endpoint</th><th>what it returns</th><th>example</th></tr>
{items}
</table></body></html>"""
    return Response(page, mimetype="text/html")

"""Lesson 05's instruments for Flask-Caching: what a cache holds, apps with empty caches, requests as tables.

* `stored_keys(app)` lists the keys an app's cache holds right now (SimpleCache, RedisCache or NullCache), without
  the backend's own key prefix: the key a decorator really wrote, read back from the store;
* `fresh_app(course, views)` is `course.app(views=...)` with a cache that starts empty and shares nothing: a new
  SimpleCache, or on Redis (one server for every app, process and rerun) a key prefix of its own;
  `close_apps()` disposes of those apps' engines and deletes their Redis keys; `temporary_app` is one for a block;
* `visit(app, requests)` sends GET requests through the test client and returns one row per request (status,
  statements run, fields of the JSON answer); `visit_servers(...)` does the same against running servers;
* `profile_views` is a cached customer profile and a rename that invalidates it, importable by a server process
  (`serve_in_process(views="helpers.topics.caching:profile_views", ...)`); `post()` sends a server a write;
* `hit_ratio_chart(frame)` draws hit ratios against cache size.
"""

from __future__ import annotations

import http.client
import json
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, abort, request, url_for
from flask_caching import Cache
from flask_caching.backends.nullcache import NullCache
from flask_caching.backends.rediscache import RedisCache
from flask_caching.backends.simplecache import SimpleCache
from sqlalchemy import select

from ..errors import CourseError
from ..shop.caching import cache
from ..shop.db import get_session
from ..shop.models import Customer
from ..shop.params import ID, MAX_ID

if TYPE_CHECKING:
    import pandas as pd

    from ..course import Course
    from ..servers.wsgi import Served

Requests = Iterable[str | tuple[str, Mapping[str, str]]]


# ---------------------------------------------------------------------- what a cache holds
def backend(app: Flask, of: Cache | None = None) -> Any:
    """The backend object (SimpleCache, RedisCache, NullCache, ...) that the Cache `of` uses in `app`.

    `of` defaults to the shop's module-level `cache`, which `create_app` initialises on every shop app.
    """
    try:
        return app.extensions["cache"][of or cache]
    except KeyError:
        raise CourseError(
            "This app has no such cache: build it with course.app() or fresh_app(), or pass the Cache you "
            "initialised on it (stored_keys(app, my_cache))."
        ) from None


def stored_keys(app: Flask, of: Cache | None = None) -> list[str]:
    """The keys the cache holds for `app` now, sorted, expired ones left out, without the backend's key prefix."""
    store = backend(app, of)
    if isinstance(store, SimpleCache):
        # cachelib's SimpleCache keeps its entries in a private dict and has no public listing; expired entries
        # stay in it until the next prune, so ask has() about each.
        with store._lock:
            keys = [key for key in list(store._cache) if store.has(key)]
    elif isinstance(store, RedisCache):
        prefix = store._get_prefix()
        pattern = _glob_escape(prefix) + "*"
        keys = [raw.decode()[len(prefix) :] for raw in store._read_client.scan_iter(match=pattern, count=1000)]
    elif isinstance(store, NullCache):
        keys = []  # NullCache stores nothing: that is the point of it
    else:
        raise CourseError(f"stored_keys reads SimpleCache, RedisCache and NullCache, not {type(store).__name__}.")
    return sorted(keys)


def _glob_escape(text: str) -> str:
    """`text` with Redis glob characters escaped, so a key prefix matches itself only."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


# ---------------------------------------------------------------------- apps whose caches start empty
_apps: list[Flask] = []  # made by fresh_app, for close_apps


def own_prefix() -> str:
    """A key prefix no other app uses: on a shared Redis, a cache of one's own that starts empty."""
    return f"lesson05-{secrets.token_hex(5)}:"


def fresh_app(course: Course, views: Blueprint | Sequence[Blueprint], **config: Any) -> Flask:
    """`course.app(views=...)` with a cache of its own that starts empty (on Redis: its own key prefix).

    A SimpleCache is new with every app anyway; a Redis is shared by every app, process and rerun, so without a
    prefix of its own an app would find the entries an earlier run left there.
    """
    app = course.app(views=views, **{"CACHE_KEY_PREFIX": own_prefix(), **config})
    _apps.append(app)
    return app


def close_apps() -> int:
    """Dispose of the engines of the apps fresh_app made and delete their Redis keys; returns how many apps."""
    closed = 0
    while _apps:
        _close(_apps.pop())
        closed += 1
    return closed


@contextmanager
def temporary_app(course: Course, views: Blueprint | Sequence[Blueprint], **config: Any) -> Iterator[Flask]:
    """A fresh_app for the block only: afterwards its engine is disposed and its Redis keys deleted."""
    app = course.app(views=views, **{"CACHE_KEY_PREFIX": own_prefix(), **config})
    try:
        yield app
    finally:
        _close(app)


def _close(app: Flask) -> None:
    store = app.extensions.get("cache", {}).get(cache)
    if isinstance(store, RedisCache):
        store.clear()  # with a key prefix, clear() deletes that prefix's keys only
    app.extensions["engine"].dispose()


def with_own_caches(course: Course) -> Course:
    """A Course whose every app() has a cache of its own (for checks that must not meet earlier entries)."""
    from ..course import Course

    class OwnCaches(Course):
        def app(self, *, views: Any = None, **config: Any) -> Flask:
            return super().app(views=views, **{"CACHE_KEY_PREFIX": own_prefix(), **config})

    return OwnCaches(course.lesson, course.settings, course.url, course.engine, course.info)


# ---------------------------------------------------------------------- requests as tables
def visit(app: Flask, requests: Requests, fields: Sequence[str] = ()) -> pd.DataFrame:
    """GET each request through one test client: status, statements run and `fields` of each JSON answer.

    A request is a path, or (path, headers) for a request with headers (a signed-in customer, say).
    """
    import pandas as pd

    client = app.test_client()
    rows = []
    for item in requests:
        path, headers = (item, {}) if isinstance(item, str) else item
        response = client.get(path, headers=dict(headers))
        body = response.get_json(silent=True)
        rows.append(_row(path, headers, response.status_code, response.headers, body, fields))
    return pd.DataFrame(rows)


def visit_servers(servers: Mapping[str, Served], path: str, fields: Sequence[str] = ()) -> pd.DataFrame:
    """GET `path` from each running server (one fresh connection each): its pid, status, statements, fields."""
    import pandas as pd

    rows = []
    for label, server in servers.items():
        status, headers, body = server.get(path)
        row = {"server": label, "pid": server.process.pid if server.process is not None else None}
        rows.append(row | _row(path, {}, status, headers, json.loads(body or b"null"), fields))
    return pd.DataFrame(rows).set_index("server")


def _row(
    path: str, headers: Mapping[str, str], status: int, response_headers: Any, body: Any, fields: Sequence[str]
) -> dict[str, Any]:
    row: dict[str, Any] = {"request": path}
    if headers:
        row["headers"] = ", ".join(f"{name}: {value}" for name, value in headers.items())
    row["status"] = status
    row["statements"] = int(response_headers.get("X-Statements", 0))
    answer = body if isinstance(body, dict) else {}
    row.update({name: answer.get(name) for name in fields})
    return row


def post(server: Served, path: str, body: Mapping[str, Any], timeout_s: float = 10) -> tuple[int, Any]:
    """POST `body` as JSON to a running server: (status, its JSON answer)."""
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout_s)
    try:
        conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


# ---------------------------------------------------------------------- views for the lesson
def current_customer_id() -> int:
    """The signed-in customer's id, from the X-Customer-Id header: a stand-in for a login (current_user.id)."""
    raw = request.headers.get("X-Customer-Id", "")
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 10 and 0 < int(raw) <= MAX_ID):
        abort(401, description="sign in first: send your customer id in an X-Customer-Id header")
    return int(raw)


profile_views = Blueprint("profile_views", __name__)


@profile_views.get(f"/customers/<{ID}:customer_id>/profile")
@cache.cached(timeout=300)  # key: view//customers/<id>/profile
def customer_profile(customer_id: int) -> dict[str, Any]:
    """A customer's name, email and city (cached for five minutes)."""
    columns = select(Customer.id, Customer.name, Customer.email, Customer.city)
    row = get_session().execute(columns.where(Customer.id == customer_id)).first()
    if row is None:
        abort(404, description=f"no customer with id {customer_id}")
    return row._asdict()


@profile_views.post(f"/customers/<{ID}:customer_id>/name")
def rename(customer_id: int) -> dict[str, Any]:
    """Rename a customer, then drop the cached profile of that customer (in this process's cache)."""
    name = (request.get_json(silent=True) or {}).get("name")
    if not isinstance(name, str) or not 0 < len(name.strip()) <= 100:
        abort(400, description="send JSON with a name of 1 to 100 characters")
    session = get_session()
    customer = session.get(Customer, customer_id)
    if customer is None:
        abort(404, description=f"no customer with id {customer_id}")
    customer.name = name.strip()
    session.commit()
    cache.delete_cached(customer_profile, path=url_for(".customer_profile", customer_id=customer_id))
    return {"id": customer_id, "name": customer.name}

"""Lesson 06's instruments for Flask-Caching: what a cache holds, apps with empty caches, requests as tables.

* `stored_keys(app)` lists the keys an app's cache holds right now (SimpleCache, RedisCache or NullCache), without
  the backend's own key prefix: the key a decorator really wrote, read back from the store;
* `fresh_app(course, views)` is `course.app(views=...)` with a cache that starts empty and shares nothing: a new
  SimpleCache, or on Redis (one server for every app, process and rerun) a key prefix of its own;
  `close_apps()` disposes of those apps' engines and deletes their Redis keys; `temporary_app` is one for a block;
* `visit(app, requests)` sends GET requests through the test client and returns one row per request (status,
  statements run, fields of the JSON answer); `_visit_servers(...)` does the same against running servers;
* `profile_views` is a cached customer profile and a rename that invalidates it, importable by a server process
  (`serve_in_process(views="helpers.topics.caching:profile_views", ...)`); `post()` sends a server a write;
* `compare_keys(course, variants, requests)` asks the same requests of one fresh app per blueprint: one table,
  and each app's keys; `PageWatch` tabulates, step by step, what a page served beside what the database holds;
* `popularity(course)` and `traffic(...)` draw page requests as skewed as the dataset's orders; `sweep_hit_ratios`
  replays them against caches of growing size and `show_hit_ratios` draws and tabulates the result;
* `show_hit_cost(slow, fast, store)` puts a hit, the uncached view and the bare Flask view in one table and chart;
* `rename_through_a(lab, env, customer_id, name)` runs two server processes, renames through one, and tabulates
  what each served before and after; `clean_up(lab, ...)` closes the lesson's apps, copy and Redis.
"""

from __future__ import annotations

import http.client
import json
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np
from flask import Blueprint, Flask, abort, request, url_for
from flask.testing import FlaskClient
from flask_caching import Cache
from flask_caching.backends.nullcache import NullCache
from flask_caching.backends.rediscache import RedisCache
from flask_caching.backends.simplecache import SimpleCache
from sqlalchemy import func, select

from ..data import drop_copy
from ..errors import CourseError
from ..servers import redis_url, running_redis_pids, stop_redis
from ..servers.wsgi import Served, serve_in_process
from ..shop.caching import cache
from ..shop.db import get_session
from ..shop.models import Customer, Order, OrderLine
from ..shop.params import ID, MAX_ID

if TYPE_CHECKING:
    import pandas as pd

    from ..course import Course
    from ..measure.harness import Comparison

__all__ = [
    "PageWatch",
    "Requests",
    "backend",
    "clean_up",
    "close_apps",
    "compare_keys",
    "current_customer_id",
    "customer_profile",
    "fresh_app",
    "own_prefix",
    "popularity",
    "post",
    "profile_views",
    "redis_url_for",
    "rename",
    "rename_through_a",
    "show_hit_cost",
    "show_hit_ratios",
    "single_view",
    "stored_keys",
    "sweep_hit_ratios",
    "temporary_app",
    "top_share",
    "traffic",
    "visit",
    "with_own_caches",
]

# Tables import pandas where they are built (deferred: a server process imports this module for profile_views,
# and pandas would add a second to every start).
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
    return f"lesson06-{secrets.token_hex(5)}:"


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
    from ..course import Course  # deferred: course imports pandas (see the note under __all__)

    class OwnCaches(Course):
        def app(self, *, views: Any = None, **config: Any) -> Flask:
            return super().app(views=views, **{"CACHE_KEY_PREFIX": own_prefix(), **config})

    return OwnCaches(course.lesson, course.settings, course.url, course.engine, course.info)


# ---------------------------------------------------------------------- requests as tables
def visit(app: Flask, requests: Requests, fields: Sequence[str] = ()) -> pd.DataFrame:
    """GET each request through one test client: status, statements run and `fields` of each JSON answer.

    A request is a path, or (path, headers) for a request with headers (a signed-in customer, say).
    """
    import pandas as pd  # deferred: see the note under __all__

    client = app.test_client()
    rows = []
    for item in requests:
        path, headers = (item, {}) if isinstance(item, str) else item
        response = client.get(path, headers=dict(headers))
        body = response.get_json(silent=True)
        rows.append(_row(path, headers, response.status_code, response.headers, body, fields))
    return pd.DataFrame(rows)


def _visit_servers(servers: Mapping[str, Served], path: str, fields: Sequence[str] = ()) -> pd.DataFrame:
    """GET `path` from each running server (one fresh connection each): its pid, status, statements, fields."""
    import pandas as pd  # deferred: see the note under __all__

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


def compare_keys(
    course: Course, variants: Mapping[str, Blueprint], requests: Requests, fields: Sequence[str], *, level: str
) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Each blueprint in a fresh app, sent the same requests: a table (`level`, request #) and each app's keys."""
    import pandas as pd  # deferred: see the note under __all__

    requests = list(requests)
    tables, keys = {}, {}
    for name, views in variants.items():
        app = fresh_app(course, views)
        tables[name] = visit(app, requests, fields)
        keys[name] = stored_keys(app)
    return pd.concat(tables, names=[level, "request #"]), keys


def single_view(name: str, rule: str, view: Callable[..., Any]) -> Blueprint:
    """A Blueprint called `name` that serves `view` at `rule`, and nothing else."""
    views = Blueprint(name, __name__)
    views.add_url_rule(rule, view_func=view)
    return views


class PageWatch:
    """Ask for one page step by step and tabulate what it served beside what the database holds.

    look = PageWatch(client, "/customers/7/profile", "name", name_in_database)
    look("first GET")  # ... a write, an invalidation ...
    look.table()  # one row per step: statements run, served, in the database, fresh
    """

    def __init__(self, client: FlaskClient, path: str, field: str, truth: Callable[[], Any]) -> None:
        self.client, self.path, self.field, self.truth = client, path, field, truth
        self.steps: list[dict[str, Any]] = []

    def __call__(self, step: str) -> None:
        response = self.client.get(self.path)
        served = response.get_json()[self.field]
        statements = int(response.headers["X-Statements"])
        self.steps.append(
            {"step": step, "statements": statements, "served": served, "in the database": self.truth()}
        )

    def table(self) -> pd.DataFrame:
        import pandas as pd  # deferred: see the note under __all__

        frame = pd.DataFrame(self.steps).set_index("step")
        frame["fresh"] = frame["served"] == frame["in the database"]
        return frame


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


# ---------------------------------------------------------------------- hit ratio under skewed traffic
def popularity(course: Course) -> dict[str, dict[int, int]]:
    """How often each customer orders and each product is ordered: {"customers": {id: orders}, "products": ...}."""
    with course.session() as session:
        customers = session.execute(select(Order.customer_id, func.count()).group_by(Order.customer_id))
        products = session.execute(select(OrderLine.product_id, func.count()).group_by(OrderLine.product_id))
        return {"customers": {c: n for c, n in customers}, "products": {p: n for p, n in products}}


def traffic(popularity: Mapping[int, int], path: str, requests: int = 5_000, seed: int = 5) -> list[str]:
    """Page requests (`path` with `{}` for the id) drawn in proportion to each page's popularity (seeded)."""
    ids = np.array(list(popularity))
    weights = np.array(list(popularity.values()), dtype=float)
    drawn = np.random.default_rng(seed).choice(ids, size=requests, p=weights / weights.sum())
    return [path.format(i) for i in drawn.tolist()]


def top_share(paths: Sequence[str]) -> tuple[int, int, float]:
    """How many different pages `paths` asks for, how many make its top 1%, and their share of the requests."""
    import pandas as pd  # deferred: see the note under __all__

    counts = pd.Series(paths).value_counts()
    top = max(1, len(counts) // 100)
    return len(counts), top, float(counts.iloc[:top].sum() / len(paths))


def sweep_hit_ratios(
    hit_ratio: Callable[[Sequence[str], int], float], pages: Mapping[str, Sequence[str]], thresholds: Sequence[int]
) -> tuple[pd.DataFrame, float]:
    """`hit_ratio(paths, threshold)` for every stream and threshold: a table (thresholds down, streams across)
    and the seconds the replays took."""
    import pandas as pd  # deferred: see the note under __all__

    started = time.perf_counter()
    ratios = pd.DataFrame(
        {kind: [hit_ratio(paths, t) for t in thresholds] for kind, paths in pages.items()},
        index=pd.Index(thresholds, name="SimpleCache threshold (entries)"),
    )
    return ratios, time.perf_counter() - started


def show_hit_ratios(ratios: pd.DataFrame, pages: Mapping[str, Sequence[str]]) -> None:
    """The hit ratios as a chart (a dotted line where the cache holds every page asked for) and a table."""
    from IPython.display import display  # deferred: see the note under __all__ (IPython and matplotlib too)

    from ..measure.plots import hit_ratio_chart, show_figure

    show_figure(hit_ratio_chart(ratios, pages={kind: len(set(paths)) for kind, paths in pages.items()}))
    display(ratios.style.format("{:.1%}"))


# ---------------------------------------------------------------------- what a hit costs
def show_hit_cost(slow: Comparison, fast: Comparison, store: Any) -> None:
    """The uncached view, a hit and the bare Flask view in one table and chart, and what the hit cost.

    `slow` raced "uncached" against "cached (a hit)", `fast` "bare Flask view" against "cached (a hit)"; `store`
    is the cache backend the hit read (its class names it).
    """
    from IPython.display import display  # deferred: see the note under __all__ (IPython and matplotlib too)

    from ..measure.display import styled
    from ..measure.harness import Comparison
    from ..measure.plots import show_figure
    from ..measure.units import format_ms

    uncached, hit, floor = slow["uncached"], fast["cached (a hit)"], fast["bare Flask view"]
    together = Comparison(
        slow.lesson, slow.backend, slow.size, [uncached, hit, floor], title="sales report (days=30)"
    )
    display(styled(together.frame))
    show_figure(together.plot())
    print(
        f"A hit took {format_ms(hit.median_s)} against {format_ms(uncached.median_s)} uncached "
        f"({uncached.median_s / hit.median_s:,.0f}× faster) and {hit.median_s / floor.median_s:.2f}× "
        f"the bare Flask view's {format_ms(floor.median_s)}: the {type(store).__name__} lookup "
        f"added {format_ms(hit.median_s - floor.median_s)} to what Flask does anyway."
    )


# ---------------------------------------------------------------------- one cache per process
def _name_in(course: Course, customer_id: int) -> str | None:
    with course.session() as session:
        return session.scalar(select(Customer.name).where(Customer.id == customer_id))


def rename_through_a(lab: Course, env: Mapping[str, str], customer_id: int, new_name: str) -> pd.DataFrame:
    """Two server processes (A and B) serving `profile_views` on `lab` with `env`: both are asked for a customer's
    profile, A renames the customer, both are asked again. One row per moment and server: its pid, status,
    statements run, the name it served and the name in the database."""
    import pandas as pd  # deferred: see the note under __all__

    database = lab.url.render_as_string(hide_password=False)
    page = f"/customers/{customer_id}/profile"
    servers: dict[str, Served] = {}
    try:
        for label in ("A", "B"):
            servers[label] = serve_in_process(views=f"{__name__}:profile_views", database_url=database, env=env)
        before = _visit_servers(servers, page, fields=["name"])
        before["in the database"] = _name_in(lab, customer_id)
        status, answer = post(servers["A"], f"/customers/{customer_id}/name", {"name": new_name})
        if status != 200:
            raise CourseError(f"Server A answered {status} to the rename: {answer}")
        after = _visit_servers(servers, page, fields=["name"])
        after["in the database"] = _name_in(lab, customer_id)
    finally:
        for server in servers.values():
            server.stop()
    return pd.concat({"before": before, "after renaming through A": after}, names=["when", "server"])


def redis_url_for(course: Course) -> str:
    """The Redis the lesson shares between servers: CACHE_REDIS_URL, or the course's own (started if needed)."""
    return course.settings.cache_redis_url or redis_url()


def clean_up(lab: Course, *, stop_redis_too: bool) -> str:
    """Close the demo apps, remove the lesson's copy and stop the Redis the lesson started; say what was done."""
    closed = close_apps()
    lab.engine.dispose()
    drop_copy(lab.url)
    if stop_redis_too:
        stop_redis()  # only the Redis this kernel started: another process may share it
    redis_left = "; the course's Redis still runs" if running_redis_pids() else "; the course's Redis is stopped"
    return f"Closed {closed} demo apps and removed the lesson's copy{redis_left}."

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
* `_report_views()` serves the sales report uncached, cached the course's way and as a bare Flask view, and
  `race_hits(course, yours, prediction)` races them with the learner's cached view: one table and chart;
* `hit_on_stores(course, redis)` times a hit on a SimpleCache and on Redis beside the bare view;
* `hit_ratio(paths, threshold)` replays requests against a SimpleCache of that size, as `@cache.cached` would;
* `rename_through_a(lab, env, customer_id, name)` runs two server processes, renames through one, and tabulates
  what each served before and after; `clean_up(lab, ...)` closes the lesson's apps, copy and Redis.
"""

from __future__ import annotations

import functools
import http.client
import json
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np
from flask import Blueprint, Flask, abort, current_app, request, url_for
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
from ..shop import optimized
from ..shop.caching import cache
from ..shop.db import get_session
from ..shop.models import Customer, Order, OrderLine
from ..shop.params import ID, MAX_ID

if TYPE_CHECKING:
    import pandas as pd

    from ..course import Course
    from ..measure.harness import Comparison
    from ..measure.predictions import Predicted

__all__ = [
    "YOUR_REPORT",
    "PageWatch",
    "Requests",
    "backend",
    "clean_up",
    "close_apps",
    "compare_keys",
    "current_customer_id",
    "customer_profile",
    "fresh_app",
    "hit_on_stores",
    "hit_ratio",
    "own_prefix",
    "popularity",
    "post",
    "profile_views",
    "race_hits",
    "redis_url_for",
    "rename",
    "rename_through_a",
    "show_hit_ratios",
    "single_view",
    "stored_keys",
    "sweep_hit_ratios",
    "temporary_app",
    "top_share",
    "traffic",
    "visit",
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


def _with_own_caches(course: Course) -> Course:
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
        # Sorted by id: the draw in traffic() follows this order, and a GROUP BY's order is the planner's choice.
        return {
            "customers": dict(sorted((c, n) for c, n in customers)),
            "products": dict(sorted((p, n) for p, n in products)),
        }


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
YOUR_REPORT = "/reports/yours"  # where the learner's cached report is served in lesson 06's race
_REPORT_QUERY = "?days=30"
_RACE_PATHS = {
    "uncached": "/reports/uncached",
    "yours": YOUR_REPORT,
    "the course's cached view": "/reports/course",
    "bare Flask view": "/reports/bare",
}


def _bare_report() -> Any:
    """The report's answer computed once per query string and kept in the app: a view with no database and no
    cache, only Flask turning a dict into JSON (the floor of any cached view)."""
    answers = current_app.extensions.setdefault("bare_reports", {})
    if request.query_string not in answers:
        answers[request.query_string] = optimized.sales_report.uncached()
    return answers[request.query_string]


def _report_views() -> Blueprint:
    """The sales report uncached, cached the course's way, and as a bare Flask view (lesson 06's race)."""
    views = Blueprint("report_race", __name__)
    views.add_url_rule(_RACE_PATHS["uncached"], "uncached", optimized.sales_report.uncached)
    views.add_url_rule(_RACE_PATHS["the course's cached view"], "course", optimized.sales_report)
    views.add_url_rule(_RACE_PATHS["bare Flask view"], "bare", _bare_report)
    return views


def race_hits(
    course: Course, yours: Blueprint | None, prediction: Predicted = None, why_not: str | None = None
) -> tuple[Comparison, Comparison]:
    """The report uncached against your cached view (when there is one) and the course's, every cached variant
    timed on hits; then a hit against the bare Flask view. One table and chart, and the prediction's outcome.

    Two races, because a sub-millisecond hit timed in the same rounds as a slow query finds the CPU's caches
    full of the query's data and is slower for it. `why_not` says why `yours` is None (one line is printed).
    """
    from IPython.display import display  # deferred: see the note under __all__ (IPython and matplotlib too)

    from ..measure.display import say, styled
    from ..measure.harness import Comparison
    from ..measure.plots import show_figure
    from ..measure.units import format_ms

    app = fresh_app(course, [_report_views(), *([yours] if yours is not None else [])])
    client, engine = app.test_client(), app.extensions["engine"]
    paths = {
        name: path + _REPORT_QUERY for name, path in _RACE_PATHS.items() if yours is not None or name != "yours"
    }
    expected = client.get(paths["uncached"]).get_json()
    if yours is not None and (answer := client.get(paths["yours"])).get_json() != expected:
        why_not, yours = (
            f"your view answered {answer.status_code} with another report (ex.q1.check says more)",
            None,
        )
        del paths["yours"]
    if why_not:
        say(f"{why_not[0].upper()}{why_not[1:]}: the race runs without it.", "#7a6a00")
    for path in paths.values():
        client.get(path)  # each cached view's miss, and the bare view's one computation: what is timed are hits
    best = "yours" if yours is not None else "the course's cached view"

    def get(name: str) -> Callable[[], Any]:
        return lambda: client.get(paths[name])

    same = {"engine": engine, "check": lambda response: response.get_json()}
    slow = course.compare(
        {name: get(name) for name in paths if name != "bare Flask view"},
        naive="uncached", best=best, prediction=prediction, title="sales report: uncached vs cached", **same,
    )  # fmt: skip
    fast = course.compare(
        {"bare Flask view": get("bare Flask view"), f"{best} (a hit)": get(best)},
        floor="bare Flask view", best=f"{best} (a hit)", title="sales report: a cache hit vs the bare Flask view",
        repeat=31, **same,
    )  # fmt: skip
    together = Comparison(
        slow.lesson, slow.backend, slow.size, [*slow.measurements, fast["bare Flask view"]], title="sales report"
    )
    display(styled(together.frame))
    show_figure(together.plot())
    hit, floor, uncached = fast[f"{best} (a hit)"], fast["bare Flask view"], slow["uncached"]
    print(
        f"A hit of {best} took {format_ms(hit.median_s)} against {format_ms(uncached.median_s)} uncached "
        f"({uncached.median_s / slow[best].median_s:,.0f}× faster, in the same rounds) and "
        f"{hit.median_s / floor.median_s:.2f}× the bare Flask view's {format_ms(floor.median_s)}: the "
        f"{type(backend(app)).__name__} lookup added {format_ms(hit.median_s - floor.median_s)}."
    )
    print(slow.outcome.sentence() if slow.outcome is not None else "No prediction for this race.")
    return slow, fast


def hit_on_stores(course: Course, redis: str) -> Comparison:
    """A hit of the course's cached report on a SimpleCache and on Redis, beside the bare Flask view."""
    apps = {
        "SimpleCache hit": fresh_app(course, _report_views(), CACHE_TYPE="SimpleCache"),
        "RedisCache hit": fresh_app(course, _report_views(), CACHE_TYPE="RedisCache", CACHE_REDIS_URL=redis),
    }
    clients = {name: app.test_client() for name, app in apps.items()}
    cached, bare = _RACE_PATHS["the course's cached view"] + _REPORT_QUERY, _RACE_PATHS["bare Flask view"]
    for client in clients.values():
        client.get(cached)  # fill both caches (the timed requests are hits), and compute the bare answer
        client.get(bare + _REPORT_QUERY)
    variants: dict[str, Callable[[], Any]] = {
        "bare Flask view": functools.partial(clients["SimpleCache hit"].get, bare + _REPORT_QUERY),
        **{name: functools.partial(client.get, cached) for name, client in clients.items()},
    }
    return course.compare(
        variants,
        engine=[app.extensions["engine"] for app in apps.values()],
        check=lambda response: response.get_json(),
        title="a cache hit: SimpleCache vs Redis",
        floor="bare Flask view",
        repeat=31,
    )


# ---------------------------------------------------------------------- replaying traffic against a cache
def hit_ratio(paths: Sequence[str], threshold: int) -> float:
    """Replay `paths` against a SimpleCache that keeps `threshold` entries, as @cache.cached would: get the key,
    and on a miss set it. The share of requests that were hits (lesson 06's hit-ratio cell writes the same)."""
    app = Flask("replay")
    replay = Cache(app, config={"CACHE_TYPE": "SimpleCache", "CACHE_THRESHOLD": threshold})
    hits = 0
    with app.app_context():
        for path in paths:
            key = f"view/{path}"
            if replay.get(key) is None:
                replay.set(key, _PAGE)  # a miss: the view runs and its answer is stored
            else:
                hits += 1
    return hits / len(paths)


_PAGE = {"id": 0, "name": "A cached page", "orders": list(range(10))}


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

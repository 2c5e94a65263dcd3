"""The app: baseline against optimized endpoint by endpoint (01–04), the cached view (06), the pooled request
(07) and both apps under concurrent load on a real server (10), each against its floor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from sqlalchemy import text
from sqlalchemy.pool import NullPool

from ..course import Course
from ..data import drop_copy
from ..db import make_engine
from ..measure.harness import Measurement
from ..shop import optimized
from .floors import bare_flask_view, select_one_on_open_connection
from .registry import Goal, Race, benchmark

__all__ = ["ENDPOINTS", "REPORT", "app_under_load", "cached_hit", "cached_view", "pooled_request"]

ENDPOINTS = {
    "customer page": "/customers/1",
    "order list": "/orders?page=1&per_page=20",
    "search": "/search?city=Lisbon&name=an&limit=20",
    "sales report": "/reports/sales?days=7",
}


def _optimized_copy(course: Course, name: str) -> tuple[Course, Callable[[], None]]:
    """A private copy of the dataset with the indexes the optimized views rely on (as `make app` serves)."""
    copy = course.private_copy(name)
    optimized.create_indexes(copy.engine)

    def remove() -> None:
        copy.engine.dispose()
        drop_copy(copy.url)

    return copy, remove


def _body(response: Any) -> Any:
    """Status and JSON; the optimized order list's keyset cursor (`next`, lesson 04) is not in the baseline's."""
    body = response.get_json()
    return response.status_code, {k: v for k, v in body.items() if k != "next"} if isinstance(body, dict) else body


def _endpoint_race(course: Course, name: str) -> Race:
    path = ENDPOINTS[name]
    copy, remove = _optimized_copy(course, f"bench_{name.replace(' ', '_')}")
    apps: list[Flask] = [
        course.app(),
        copy.app(views=optimized.bp, CACHE_TYPE="NullCache", CACHE_NO_NULL_WARNING=True),
    ]
    baseline, fast = (app.test_client() for app in apps)
    payload = fast.get(path).get_json()

    def dispose() -> None:
        for app in apps:
            app.extensions["engine"].dispose()
        remove()

    return Race(
        {
            "baseline app": lambda: baseline.get(path),
            "optimized app": lambda: fast.get(path),
            "bare Flask view (floor)": bare_flask_view(path, payload),
        },
        floor="bare Flask view (floor)",
        key=_body,
        cleanup=[dispose],
    )


def _register_endpoint(name: str) -> None:
    def make(course: Course) -> Race:
        return _endpoint_race(course, name)

    make.__name__ = "endpoint_" + name.replace(" ", "_")
    make.__doc__ = f"{ENDPOINTS[name]}: the baseline app vs the optimized app (uncached) vs a bare Flask view."
    benchmark(lesson="10", repeat=5)(make)


for _name in ENDPOINTS:
    _register_endpoint(_name)


def _report_apps(course: Course, name: str) -> tuple[Any, Any, Any, Callable[[], None]]:
    """The optimized report on an indexed copy: an uncached app, a cached one (filled), and the cleanup."""
    copy, remove = _optimized_copy(course, name)
    uncached_app = copy.app(views=optimized.bp, CACHE_TYPE="NullCache", CACHE_NO_NULL_WARNING=True)
    cached_app = copy.app(views=optimized.bp, CACHE_TYPE="SimpleCache")
    cached_app.test_client().get(REPORT)  # fills the cache

    def dispose() -> None:
        for app in (uncached_app, cached_app):
            app.extensions["engine"].dispose()
        remove()

    return uncached_app.test_client(), cached_app.test_client(), cached_app, dispose


REPORT = "/reports/sales?days=30"


@benchmark(lesson="06", repeat=15)
def cached_view(course: Course) -> Race:
    """The sales report: uncached (the optimized SQL) vs cached (a SimpleCache hit)."""
    uncached, cached, _, dispose = _report_apps(course, "bench_cache")
    return Race(
        {"uncached": lambda: uncached.get(REPORT), "cached": lambda: cached.get(REPORT)},
        key=_body,
        cleanup=[dispose],
    )


@benchmark(lesson="06", repeat=31)
def cached_hit(course: Course) -> Race:
    """A cache hit on the sales report vs a bare Flask view returning the same JSON (the floor).

    Its own race: timed right after the uncached report's milliseconds of SQL, a sub-millisecond hit would pay
    for the CPU caches that query left cold, and the floor would not.
    """
    _, cached, _, dispose = _report_apps(course, "bench_cache_hit")
    payload = cached.get(REPORT).get_json()
    return Race(
        {"cached": lambda: cached.get(REPORT), "bare Flask view (floor)": bare_flask_view(REPORT, payload)},
        floor="bare Flask view (floor)",
        goals=(Goal("cached", 1.5),),
        key=_body,
        cleanup=[dispose],
    )


@benchmark(lesson="07", repeat=101)
def pooled_request(course: Course) -> Race:
    """Connect and run SELECT 1: a new connection each time (NullPool) vs pooled vs SELECT 1 on an open one."""
    fresh, pooled = make_engine(course.url, poolclass=NullPool), make_engine(course.url)

    def select_one(engine: Any) -> Callable[[], int]:
        def run() -> int:
            with engine.connect() as conn:
                return int(conn.execute(text("SELECT 1")).scalar_one())

        return run

    floor, close = select_one_on_open_connection(course)

    def dispose() -> None:
        close()
        fresh.dispose()
        pooled.dispose()

    return Race(
        {
            "new connection (NullPool)": select_one(fresh),
            "pooled (QueuePool)": select_one(pooled),
            "SELECT 1 on an open connection (floor)": floor,
        },
        floor="SELECT 1 on an open connection (floor)",
        cleanup=[dispose],
    )


@benchmark(lesson="10", repeat=1)
def app_under_load(course: Course) -> Race:
    """Both apps on waitress in their own processes, 8 concurrent clients over the four endpoints."""
    from ..servers.wsgi import serve_in_process
    from ..topics.loadtest import run_load

    requests = 200 if course.size == "tiny" else 120
    copy, remove = _optimized_copy(course, "bench_load")
    measured = []
    for label, views, url in (
        ("baseline app", "baseline", course.url),
        ("optimized app", "optimized", copy.url),
    ):
        with serve_in_process(views=views, database_url=url.render_as_string(hide_password=False)) as server:
            run_load(server.url, list(ENDPOINTS.values()), concurrency=8, requests=16)  # warm-up
            result = run_load(server.url, list(ENDPOINTS.values()), concurrency=8, requests=requests)
        if result.failed:
            raise RuntimeError(f"{label}: {result.failed} of {result.requests} requests failed under load")
        measured.append(Measurement(f"{label} (latency at concurrency 8)", result.latencies_s, None, None))
    remove()
    return Race({}, measured=measured)

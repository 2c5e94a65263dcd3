"""The app: the baseline against the finished app endpoint by endpoint, down to floors an app could reach (01–05,
09), the cached view (06), the pooled request (07) and the finished app under load beside a floor (10)."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.pool import NullPool

from ..course import Course
from ..db import make_engine
from ..measure.harness import Measurement
from ..servers.wsgi import serve_in_process
from ..shop import optimized
from ..topics.floors import RUNGS, RawPool, bare_view, indexed_copy, ladder, same_answer, serve_bare
from ..topics.loadtest import PathLoad, run_load, run_split_load
from .floors import select_one_on_open_connection
from .registry import Goal, Race, benchmark

__all__ = ["ENDPOINTS", "REPORT", "app_under_load", "cached_hit", "cached_view", "pooled_request"]

ENDPOINTS = {
    "customer page": "/customers/1",
    "order list": "/orders?page=1&per_page=20",
    "search": "/search?city=Lisbon&name=an&limit=20",
    "sales report": "/reports/sales?days=7",
}


def _body(response: Any) -> Any:
    """Status and JSON; the optimized order list's keyset cursor (`next`, lesson 05) is not in the baseline's."""
    status, body = same_answer(response)
    return status, {k: v for k, v in body.items() if k != "next"} if isinstance(body, dict) else body


def _endpoint_race(course: Course, name: str) -> Race:
    """The baseline app, then the finished app's ladder down to its floors (see `topics.floors.ladder`)."""
    path = ENDPOINTS[name]
    copy, remove = indexed_copy(course, f"bench_{name.replace(' ', '_')}")
    baseline_app = course.app()
    finished = copy.app(views=optimized.bp, CACHE_TYPE="NullCache", CACHE_NO_NULL_WARNING=True)
    rungs, close = ladder(finished, path)
    baseline = baseline_app.test_client()

    def dispose() -> None:
        close()
        for app in (baseline_app, finished):
            app.extensions["engine"].dispose()
        remove()

    return Race(
        {"baseline app": lambda: baseline.get(path), **rungs},
        floor=RUNGS[4],
        goals=(Goal(RUNGS[0], 2.0),),
        key=_body,
        cleanup=[dispose],
    )


def _register_endpoint(name: str) -> None:
    def make(course: Course) -> Race:
        return _endpoint_race(course, name)

    make.__name__ = "endpoint_" + name.replace(" ", "_")
    make.__doc__ = (
        f"{ENDPOINTS[name]}: the baseline app vs the finished app (uncached) vs its statements through the raw "
        "driver in a bare Flask view, and the layers between."
    )
    benchmark(lesson="10", repeat=15)(make)


for _name in ENDPOINTS:
    _register_endpoint(_name)


def _report_apps(course: Course, name: str) -> tuple[Any, Any, Any, Callable[[], None]]:
    """The optimized report on an indexed copy: an uncached app, a cached one (filled), and the cleanup."""
    copy, remove = indexed_copy(course, name)
    uncached_app = copy.app(views=optimized.bp, CACHE_TYPE="NullCache", CACHE_NO_NULL_WARNING=True)
    cached_app = copy.app(views=optimized.bp, CACHE_TYPE="SimpleCache")
    cached_app.test_client().get(REPORT)  # fills the cache

    def dispose() -> None:
        for app in (uncached_app, cached_app):
            app.extensions["engine"].dispose()
        remove()

    return uncached_app.test_client(), cached_app.test_client(), cached_app, dispose


REPORT = "/reports/sales?days=30"


@benchmark(lesson="06", repeat=21)
def cached_view(course: Course) -> Race:
    """The sales report: uncached (the optimized SQL) vs cached (a SimpleCache hit)."""
    uncached, cached, _, dispose = _report_apps(course, "bench_cache")
    return Race(
        {"uncached": lambda: uncached.get(REPORT), "cached": lambda: cached.get(REPORT)},
        key=_body,
        cleanup=[dispose],
    )


@benchmark(lesson="06", repeat=51)
def cached_hit(course: Course) -> Race:
    """A cache hit on the sales report vs a bare Flask view returning the same JSON (the floor).

    Its own race: timed right after the uncached report's milliseconds of SQL, a sub-millisecond hit would pay
    for the CPU caches that query left cold, and the floor would not.
    """
    _, cached, _, dispose = _report_apps(course, "bench_cache_hit")
    payload = cached.get(REPORT).get_json()
    return Race(
        {"cached": lambda: cached.get(REPORT), "bare Flask view (floor)": bare_view(REPORT, payload)},
        floor="bare Flask view (floor)",
        goals=(Goal("cached", 1.5),),
        key=_body,
        cleanup=[dispose],
    )


@benchmark(lesson="07", repeat=101)
def pooled_request(course: Course) -> Race:
    """Connect and run SELECT 1: a new connection each time (NullPool) vs pooled vs the raw driver's own pool."""
    fresh, pooled = make_engine(course.url, poolclass=NullPool), make_engine(course.url)
    select_1 = text("SELECT 1")

    def select_one(engine: Any, statement: Callable[[], Any]) -> Callable[[], int]:
        def run() -> int:
            with engine.connect() as conn:
                return int(conn.execute(statement()).scalar_one())

        return run

    def checkout_only() -> int:
        with pooled.connect():
            return 1  # what taking a connection from SQLAlchemy's pool and giving it back costs alone

    pool = RawPool(pooled)

    def raw_pool() -> int:
        return int(pool.rows([("SELECT 1", ())])[0][0][0])

    open_floor, close = select_one_on_open_connection(course)

    def dispose() -> None:
        close()
        pool.close()
        fresh.dispose()
        pooled.dispose()

    return Race(
        {
            "new connection (NullPool)": select_one(fresh, lambda: text("SELECT 1")),
            "pooled (QueuePool)": select_one(pooled, lambda: text("SELECT 1")),
            "pooled, statement built once": select_one(pooled, lambda: select_1),
            "pool checkout and return alone": checkout_only,
            "raw driver, minimal pool (floor)": raw_pool,
            "SELECT 1 on an open connection": open_floor,
        },
        floor="raw driver, minimal pool (floor)",
        cleanup=[dispose],
    )


_LOAD_PATHS = list(ENDPOINTS.values())
_USERS_PER_PATH = 4  # 16 users in all


@benchmark(lesson="10", repeat=3)
def app_under_load(course: Course) -> Race:
    """The finished app and a bare Flask view serving its JSON, each on waitress (8 threads) in a process of its
    own, under the same locust load: 4 closed-loop users on each endpoint, 16 in all; runs alternate."""
    runs, run_time_s = (1, 2.0) if course.size == "tiny" else (3, 5.0)
    copy, remove = indexed_copy(course, "bench_load")
    loads: dict[str, list[list[PathLoad]]] = {_LOAD_APP: [], _LOAD_FLOOR: []}
    try:
        url = copy.url.render_as_string(hide_password=False)
        with serve_in_process(views="optimized", database_url=url) as app_server:
            answers = {path: app_server.get(path) for path in _LOAD_PATHS}
            with serve_bare({path: json.loads(body) for path, (_, _, body) in answers.items()}) as floor_server:
                for path, (_, _, body) in answers.items():
                    if json.loads(floor_server.get(path)[2]) != json.loads(body):
                        raise RuntimeError(f"the bare Flask floor answers {path} differently from the app")
                servers = {_LOAD_APP: app_server, _LOAD_FLOOR: floor_server}
                for server in servers.values():  # warm both up (caches, pools, the report cached once)
                    run_load(server.url, _LOAD_PATHS, concurrency=4, requests=200)
                for _ in range(runs):
                    for label, server in servers.items():
                        loads[label].append(
                            run_split_load(
                                server.url, _LOAD_PATHS, users_per_path=_USERS_PER_PATH, run_time_s=run_time_s
                            )
                        )
    finally:
        remove()
    failed = {label: sum(p.failures for run in runs_ for p in run) for label, runs_ in loads.items()}
    if any(failed.values()):
        raise RuntimeError(f"requests failed under load: {failed}")
    measured = [
        # Seconds per request served (1 / throughput, all endpoints together), per run: × floor is then the
        # floor's throughput over the app's.
        Measurement(label, [1 / sum(p.throughput_rps for p in run) for run in runs_], None, None)
        for label, runs_ in loads.items()
    ]
    return Race(
        {},
        floor=_LOAD_FLOOR,
        goals=(Goal(_LOAD_APP, 2.0, "≥ 0.5× floor's throughput"),),
        measured=measured,
        details=_load_details(loads),
    )


_LOAD_APP = "finished app (s per request served, 16 users)"
_LOAD_FLOOR = "bare Flask view, same JSON (floor)"


def _load_details(loads: dict[str, list[list[PathLoad]]]) -> list[dict[str, Any]]:
    """One row per server and endpoint: throughput and latency percentiles, median and range over the runs."""
    rows = []
    for label, runs in loads.items():
        for i, path in enumerate(_LOAD_PATHS):
            of_path = [run[i] for run in runs]
            row: dict[str, Any] = {"server": "floor" if label == _LOAD_FLOOR else "app", "endpoint": path}
            for field in ("throughput_rps", "p50_ms", "p95_ms", "p99_ms"):
                values = [getattr(p, field) for p in of_path]
                row[field] = statistics.median(values)
                row[field + "_min"], row[field + "_max"] = min(values), max(values)
            row["runs"] = len(of_path)
            rows.append(row)
    return rows

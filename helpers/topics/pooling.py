"""Watching a connection pool at work (lesson 07): its settings read back, its events over time, bounded loads.

* `pool_settings(engine)` reads back what a pool really uses: size, overflow, timeout, recycle, pre-ping;
* `ConnectionEvents(engine)` counts new connections, checkouts and checkins while a block runs;
* `PoolWatch(app)` records, for each request the app serves, when it arrived, when it got its connection and
  when it answered, and the pool's state after every checkout, checkin, connect and close: a timeline;
* `watched_load(app, paths, ...)` serves the app in a thread, runs a bounded concurrent load, and returns
  the load's result with the watch (`measure.plots.timeline_chart` draws it);
* `load_with_pool(course, views, paths, concurrency, ...)` is `watched_load` on a course's app built with pool
  options, its engine disposed after; `load_summary(...)` says what a load did in a sentence, and
  `_sweep_clients(run, clients)` tabulates loads of growing concurrency;
* `gc_paused()` makes a leaked session keep its connection until the block ends (see its docstring);
* `held_views` serve a lookup that keeps its connection `?hold_ms=` milliseconds (on any backend), and
  `partner_views` three endpoints of which one leaks on some requests (lesson 07's exercise 2);
* `exhaustion(engine)` lends out connections until one is refused: the pool's real ceiling and how long the
  refused checkout waited; `two_bursts(app, ...)` loads an app twice with a lull between (what the pool kept);
* `race_pools(course, views, paths, pools, ...)` races pool options under one load, with the peak of connections
  open and the 503s beside the times; `blog_pool_size(url)` runs the blog's Flask-SQLAlchemy configuration.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pandas as pd
from flask import Blueprint, Flask, abort
from sqlalchemy import Connection, Engine, event, func, select
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from sqlalchemy.orm import Session
from sqlalchemy.pool import Pool, QueuePool

from ..errors import CourseError
from ..servers.wsgi import served
from ..shop.db import get_engine, get_session
from ..shop.models import Customer, Order
from ..shop.params import int_arg
from .loadtest import LoadResult, run_load

if TYPE_CHECKING:
    from ..course import Course
    from ..measure.harness import Comparison
    from ..measure.predictions import Predicted

__all__ = [
    "POOL_OPTIONS",
    "ConnectionEvents",
    "PoolWatch",
    "RequestSeen",
    "blog_pool_size",
    "checked_out",
    "exhaustion",
    "gc_paused",
    "held_lookup",
    "held_views",
    "load_summary",
    "load_with_pool",
    "partner_badge",
    "partner_recent",
    "partner_spent",
    "partner_views",
    "pool_settings",
    "race_pools",
    "two_bursts",
    "watched_load",
]


# The options a QueuePool takes through create_engine, and what each one is for (lesson 07 reads them back).
POOL_OPTIONS = {
    "pool_size": "connections the pool keeps open",
    "max_overflow": "extra connections it may open in a burst (closed again when returned)",
    "pool_timeout": "seconds a request waits for a free connection before TimeoutError",
    "pool_recycle": "seconds after which a connection is replaced at its next checkout (-1: never)",
    "pool_pre_ping": "test each connection with a ping at checkout, replacing a dead one",
    "pool_use_lifo": "reuse the most recently returned connection first",
    "poolclass": "the pool implementation (QueuePool, NullPool, ...)",
}


# ---------------------------------------------------------------------- reading a pool back
def pool_settings(engine: Engine) -> dict[str, Any]:
    """What the engine's pool really uses, read from the pool itself (not from the config that built it).

    SQLAlchemy has public methods for the size and the timeout; overflow, recycle and pre-ping are attributes.
    """
    pool = engine.pool
    settings: dict[str, Any] = {"pool": type(pool).__name__}
    if isinstance(pool, QueuePool):
        settings |= {"pool_size": pool.size(), "max_overflow": pool._max_overflow, "pool_timeout": pool.timeout()}
    settings |= {"pool_recycle": pool._recycle, "pool_pre_ping": pool._pre_ping}
    return settings


def checked_out(engine: Engine) -> int:
    """Connections of the engine's pool lent out right now (0 for pools that do not count, like NullPool)."""
    pool = engine.pool
    return pool.checkedout() if isinstance(pool, QueuePool) else 0


# ---------------------------------------------------------------------- counting connections
class ConnectionEvents:
    """Count, while the block runs, new DBAPI connections, checkouts and checkins.

        with ConnectionEvents(engine) as seen:
            ...
        seen.connects, seen.checkouts, seen.checkins, seen.most_at_once

    `target` is an engine, or the `Pool` class itself to count the connections of every engine in the process
    (an engine made inside a view, say).
    """

    def __init__(self, target: Engine | type[Pool] = Pool) -> None:
        self.target = target
        self.connects = self.checkouts = self.checkins = 0
        self.most_at_once = 0  # the most connections checked out at the same moment, from the block's start
        self._lock = threading.Lock()

    def _connect(self, *args: Any) -> None:
        with self._lock:
            self.connects += 1

    def _checkout(self, *args: Any) -> None:
        with self._lock:
            self.checkouts += 1
            self.most_at_once = max(self.most_at_once, self.checkouts - self.checkins)

    def _checkin(self, *args: Any) -> None:
        with self._lock:
            self.checkins += 1

    def _listeners(self) -> dict[str, Callable[..., None]]:
        return {"connect": self._connect, "checkout": self._checkout, "checkin": self._checkin}

    def __enter__(self) -> ConnectionEvents:
        for name, fn in self._listeners().items():
            event.listen(self.target, name, fn)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        for name, fn in self._listeners().items():
            event.remove(self.target, name, fn)


# ---------------------------------------------------------------------- a pool's timeline under load
@dataclass
class RequestSeen:
    """One request the app served: when it arrived, got its first connection, and answered (ms from start)."""

    started_ms: float
    connected_ms: float | None = None
    ended_ms: float | None = None
    status: int | None = None

    @property
    def wait_ms(self) -> float | None:
        """How long the request waited for its connection (None: it never got one)."""
        return None if self.connected_ms is None else self.connected_ms - self.started_ms


class PoolWatch:
    """Record an app's requests and its pool's state over time, from pool events (no sampling).

    After every change it notes: connections checked out, connections open, and requests waiting for their
    first connection (arrived, no connection yet). Attach it before the app serves anything:

        with PoolWatch(app) as watch, served(app) as server:
            run_load(server.url, ...)
        watch.timeline, watch.requests, watch.summary()
    """

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.engine: Engine = app.extensions["engine"]
        self.pool_size = self.engine.pool.size() if isinstance(self.engine.pool, QueuePool) else 0
        self._lock = threading.Lock()
        self._local = threading.local()
        self._seen: list[RequestSeen] = []
        self._points: list[tuple[float, int, int, int]] = []
        self._inner: Any = None
        self._t0 = time.perf_counter()
        self._out = self._open = self._waiting = 0
        self.connects = 0

    def _now_ms(self) -> float:
        return (time.perf_counter() - self._t0) * 1000

    def _note(self) -> None:  # with the lock held
        self._points.append((self._now_ms(), self._out, self._open, self._waiting))

    # WSGI middleware: sees every request arrive and answer, in the thread that serves it.
    def _middleware(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        seen = RequestSeen(self._now_ms())
        self._local.request = seen
        with self._lock:
            self._waiting += 1
            self._note()

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            seen.status = int(status.split()[0])
            return start_response(status, headers, exc_info)

        try:
            body: Iterable[bytes] = self._inner(environ, capture)
            return body
        finally:
            self._local.request = None
            with self._lock:
                if seen.connected_ms is None:  # answered without a connection (a 503 after pool_timeout, say)
                    self._waiting -= 1
                seen.ended_ms = self._now_ms()
                self._seen.append(seen)
                self._note()

    def _on_checkout(self, *args: Any) -> None:
        seen: RequestSeen | None = getattr(self._local, "request", None)
        with self._lock:
            self._out += 1
            if seen is not None and seen.connected_ms is None:
                seen.connected_ms = self._now_ms()
                self._waiting -= 1
            self._note()

    def _on_checkin(self, *args: Any) -> None:
        with self._lock:
            self._out -= 1
            self._note()

    def _on_connect(self, *args: Any) -> None:
        with self._lock:
            self._open += 1
            self.connects += 1
            self._note()

    def _on_close(self, *args: Any) -> None:
        with self._lock:
            self._open -= 1
            self._note()

    def _listeners(self) -> dict[str, Callable[..., None]]:
        return {
            "checkout": self._on_checkout,
            "checkin": self._on_checkin,
            "connect": self._on_connect,
            "close": self._on_close,
        }

    def __enter__(self) -> PoolWatch:
        pool = self.engine.pool
        self._out = checked_out(self.engine)
        self._open = pool.checkedout() + pool.checkedin() if isinstance(pool, QueuePool) else 0
        self._t0 = time.perf_counter()
        with self._lock:
            self._note()
        for name, fn in self._listeners().items():
            event.listen(self.engine, name, fn)
        self._inner = self.app.wsgi_app
        self.app.wsgi_app = self._middleware  # type: ignore[method-assign]
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.app.wsgi_app = self._inner  # type: ignore[method-assign]
        for name, fn in self._listeners().items():
            event.remove(self.engine, name, fn)

    # ------------------------------------------------------------------ what it saw
    @property
    def seen(self) -> list[RequestSeen]:
        with self._lock:
            return list(self._seen)

    @property
    def settings(self) -> dict[str, Any]:
        """The watched pool's settings, read back (see `pool_settings`)."""
        return pool_settings(self.engine)

    @property
    def timeline(self) -> pd.DataFrame:
        """One row per change: time (ms), connections checked out and open, overflow in use, requests waiting."""
        with self._lock:
            frame = pd.DataFrame(self._points, columns=["t_ms", "checked_out", "open", "waiting"])
        frame["overflow"] = (frame["open"] - self.pool_size).clip(lower=0)
        return frame

    @property
    def requests(self) -> pd.DataFrame:
        """One row per request: arrival, wait for a connection and total time (ms), status."""
        rows = [
            {
                "started_ms": r.started_ms,
                "wait_ms": r.wait_ms,
                "total_ms": (r.ended_ms or r.started_ms) - r.started_ms,
                "status": r.status,
            }
            for r in self.seen
        ]
        return pd.DataFrame(rows, columns=["started_ms", "wait_ms", "total_ms", "status"])

    def summary(self, waited_ms: float = 1.0) -> dict[str, Any]:
        """Peaks and counts: what a chart shows, as numbers to print and assert."""
        timeline, requests = self.timeline, self.requests
        waits = requests["wait_ms"].dropna()
        statuses = Counter(int(s) for s in requests["status"].dropna())
        return {
            "requests": len(requests),
            "statuses": dict(sorted(statuses.items())),
            "errors_5xx": sum(n for s, n in statuses.items() if s >= 500),
            "peak_checked_out": int(timeline["checked_out"].max()) if len(timeline) else 0,
            "peak_overflow": int(timeline["overflow"].max()) if len(timeline) else 0,
            "peak_waiting": int(timeline["waiting"].max()) if len(timeline) else 0,
            "new_connections": self.connects,
            "waited": int((waits > waited_ms).sum()) + int(requests["wait_ms"].isna().sum()),
            "median_wait_ms": float(waits.median()) if len(waits) else float("nan"),
            "max_wait_ms": float(waits.max()) if len(waits) else float("nan"),
        }


def watched_load(
    app: Flask,
    paths: Sequence[str],
    *,
    threads: int,
    concurrency: int,
    requests: int | None = None,
    duration_s: float | None = None,
    timeout_s: float = 10,
) -> tuple[LoadResult, PoolWatch]:
    """Serve `app` with `threads` in a background thread, load it, stop it; the load's result and the watch.

    Bounded like `run_load`: by `requests`, by `duration_s`, or both.
    """
    if concurrency < 1 or threads < 1:
        raise CourseError("concurrency and threads must be at least 1, e.g. threads=8, concurrency=8.")
    # waitress logs "Task queue depth is 1" when a request waits a moment for a free server thread (a client's
    # next request can arrive before the thread that answered its last one is idle again). The watch measures
    # the waits that matter here, for connections; that log line would only be noise under the cell.
    queue_log = logging.getLogger("waitress.queue")
    level = queue_log.level
    queue_log.setLevel(logging.ERROR)
    try:
        with PoolWatch(app) as watch, served(app, threads=threads) as server:
            result = run_load(
                server.url,
                paths,
                concurrency=concurrency,
                requests=requests,
                duration_s=duration_s,
                timeout_s=timeout_s,
            )
    finally:
        queue_log.setLevel(level)
    return result, watch


def load_with_pool(
    course: Course,
    views: Blueprint,
    paths: Sequence[str],
    concurrency: int,
    *,
    duration_s: float,
    requests: int = 500,
    **pool: Any,
) -> tuple[LoadResult, PoolWatch]:
    """`course`'s app serving `views` on a pool built with the `pool` options, loaded by `concurrency` clients for
    `duration_s` (`requests` at most): the load's result and the watch. The app's engine is disposed after.

    The server gets two threads more than there are clients: every wait measured is a wait for a connection,
    not for a server thread.
    """
    app = course.app(views=views, ENGINE_OPTIONS=pool)
    try:
        return watched_load(
            app, paths, threads=concurrency + 2, concurrency=concurrency, duration_s=duration_s, requests=requests
        )
    finally:
        app.extensions["engine"].dispose()


def load_summary(result: LoadResult, summary: dict[str, Any], limit: int) -> str:
    """What a watched load did, in a sentence: throughput, errors, peaks against the pool's `limit`, waits."""
    return (
        f"{result.requests} requests in {result.duration_s:.1f} s ({result.throughput:.0f} per second), "
        f"{'no errors' if not result.failed else f'{result.failed} failed'}. "
        f"At most {summary['peak_checked_out']} connections were checked out at once (the limit is {limit}), "
        f"{summary['peak_overflow']} of them overflow; the pool opened {summary['new_connections']} connections "
        f"in all. {summary['waited']} of the {summary['requests']} requests waited more than 1 ms for a "
        f"connection (median {summary['median_wait_ms']:.1f} ms, longest {summary['max_wait_ms']:.0f} ms)."
    )


def _sweep_clients(run: Callable[[int], tuple[LoadResult, PoolWatch]], clients: Sequence[int]) -> pd.DataFrame:
    """`run(n)` for each number of clients: one row each (the load's figures and the watch's summary), by
    concurrency."""
    rows = []
    for n in clients:
        result, watched = run(n)
        rows.append({**result.row(), **watched.summary()})
    return pd.DataFrame(rows).set_index("concurrency")


# ---------------------------------------------------------------------- making faults show every time
@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cycle collector for the block (and collect once at the end).

    A Session that is never closed keeps its connection checked out until the collector frees it: a Session
    and its transaction refer to each other, so reference counting alone never does. When the collector runs
    depends on how much the process allocates, so a leak comes and goes. Paused, every leaked session keeps
    its connection until the block ends: a leak shows every time, which is what a check needs.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# ---------------------------------------------------------------------- views the lesson loads
held_views = Blueprint("held", __name__)


@held_views.get("/customers/<int:customer_id>/held")
def held_lookup(customer_id: int) -> dict[str, Any]:
    """A customer's name, the connection then kept `?hold_ms=` ms (the rest of a slow request's database work)."""
    hold_ms = int_arg("hold_ms", 0, low=0, high=1000)
    session = get_session()  # the request's session: its connection goes back at teardown
    name = session.scalar(select(Customer.name).where(Customer.id == customer_id))
    if hold_ms:
        time.sleep(hold_ms / 1000)  # the transaction is open: the connection stays checked out meanwhile
    return {"id": customer_id, "name": name}


partner_views = Blueprint("partner", __name__)


@partner_views.get("/customers/<int:customer_id>/badge")
def partner_badge(customer_id: int) -> dict[str, Any]:
    """A customer's name and city."""
    row = get_session().execute(select(Customer.name, Customer.city).where(Customer.id == customer_id)).first()
    if row is None:
        abort(404, description=f"no customer with id {customer_id}")
    return {"id": customer_id, "name": row.name, "city": row.city}


@partner_views.get("/customers/<int:customer_id>/spent")
def partner_spent(customer_id: int) -> dict[str, Any]:
    """What a customer spent in all."""
    with Session(get_engine()) as session:
        spent = session.scalar(
            select(func.coalesce(func.sum(Order.total), 0)).where(Order.customer_id == customer_id)
        )
    return {"id": customer_id, "spent": spent}


@partner_views.get("/customers/<int:customer_id>/recent")
def partner_recent(customer_id: int) -> dict[str, Any]:
    """A customer's five newest orders."""
    session = Session(get_engine())
    orders = session.execute(
        select(Order.id, Order.status).where(Order.customer_id == customer_id).order_by(Order.id.desc()).limit(5)
    ).all()
    if not orders:
        return {"id": customer_id, "orders": []}
    session.close()
    return {"id": customer_id, "orders": [{"id": oid, "status": status} for oid, status in orders]}


# ---------------------------------------------------------------------- a pool's ceiling, measured
def exhaustion(engine: Engine, *, most: int = 32) -> tuple[int, float | None]:
    """Lend out connections one at a time until a checkout is refused (or `most` are out): how many the pool
    handed out, and how long the refused checkout waited (None: none was refused). All are given back."""
    held: list[Connection] = []
    waited = None
    try:
        while len(held) < most:
            started = time.perf_counter()
            try:
                held.append(engine.connect())
            except SQLAlchemyTimeoutError:
                waited = time.perf_counter() - started
                break
    finally:
        for conn in held:
            conn.close()
    return len(held), waited


def two_bursts(
    app: Flask, paths: Sequence[str], *, concurrency: int, requests: int, lull_s: float = 0.2
) -> tuple[list[LoadResult], dict[str, Any], int]:
    """Two bursts of `requests` from `concurrency` clients with a lull between, on one server with as many
    threads as clients: the bursts' results, the watch's summary over both, and the connections the pool opened
    in the second (the ones it closed in the lull)."""
    results = []
    queue_log = logging.getLogger("waitress.queue")
    level = queue_log.level
    queue_log.setLevel(logging.ERROR)  # see watched_load
    try:
        with PoolWatch(app) as watch, served(app, threads=concurrency) as server:
            results.append(run_load(server.url, paths, concurrency=concurrency, requests=requests))
            time.sleep(lull_s)
            opened_before = watch.connects
            results.append(run_load(server.url, paths, concurrency=concurrency, requests=requests))
            reopened = watch.connects - opened_before
    finally:
        queue_log.setLevel(level)
    return results, watch.summary(), reopened


# ---------------------------------------------------------------------- pools raced under one load
def race_pools(
    course: Course,
    views: Blueprint,
    paths: Sequence[str],
    pools: dict[str, dict[str, Any]],
    *,
    concurrency: int,
    requests: int,
    naive: str,
    best: str,
    prediction: Predicted = None,
    repeat: int = 5,
) -> tuple[Comparison, pd.DataFrame]:
    """Serve `views` once per pool (ENGINE_OPTIONS each) and time `requests` from `concurrency` clients on each,
    interleaved; beside the times, the most connections open at once and the 503s. Returns the comparison and the
    table (times in ms)."""
    apps = {label: course.app(views=views, ENGINE_OPTIONS=options) for label, options in pools.items()}
    queue_log = logging.getLogger("waitress.queue")
    level = queue_log.level
    queue_log.setLevel(logging.ERROR)  # see watched_load
    try:
        with ExitStack() as stack:
            watches = {label: stack.enter_context(PoolWatch(app)) for label, app in apps.items()}
            servers = {
                label: stack.enter_context(served(app, threads=concurrency + 2)) for label, app in apps.items()
            }
            statuses: dict[str, Counter[int]] = {label: Counter() for label in apps}

            def load(label: str) -> Callable[[], LoadResult]:
                def run() -> LoadResult:
                    result = run_load(servers[label].url, paths, concurrency=concurrency, requests=requests)
                    statuses[label].update(result.statuses)
                    return result

                return run

            roles = {"naive": naive, "best": best, "prediction": prediction}  # no statements: engine=None
            title = f"{requests} requests from {concurrency} clients, per pool"
            variants = {label: load(label) for label in apps}
            comparison = course.compare(
                variants, engine=None, backend=course.backend, check=False, repeat=repeat, title=title, **roles
            )
    finally:
        queue_log.setLevel(level)
        for app in apps.values():
            app.extensions["engine"].dispose()
    table = comparison.frame[["median_ms", "iqr_ms", "runs", "speedup"]].copy()
    table["connections open at most"] = [int(watches[label].timeline["open"].max()) for label in table.index]
    table["answered 503"] = [statuses[label].get(503, 0) for label in table.index]
    return comparison, table


# ---------------------------------------------------------------------- the blog's setting, as its readers run it
def blog_pool_size(url: str, config: dict[str, Any]) -> dict[str, Any]:
    """A Flask app configured with `config` through Flask-SQLAlchemy (the extension the blog's readers use): its
    engine's pool, read back (see `pool_settings`), and the extension's version."""
    try:
        from flask_sqlalchemy import SQLAlchemy  # deferred: only this demonstration uses the classic extension
    except ImportError:
        raise CourseError(
            "Flask-SQLAlchemy is not installed: run make lab (it installs the course's packages)."
        ) from None
    app = Flask("blog_readers")
    app.config.update({"SQLALCHEMY_DATABASE_URI": url, **config})
    db = SQLAlchemy(app)
    with app.app_context():
        engine = db.engine
        try:
            return {"Flask-SQLAlchemy": version("flask-sqlalchemy"), **pool_settings(engine)}
        finally:
            engine.dispose()

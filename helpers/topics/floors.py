"""The finished endpoints beside floors an app could reach, and where the rest of a request's time goes.

An endpoint has two floors, both plain Flask views called like the endpoint:

* the **bare Flask view** returns the endpoint's JSON with no database work at all: the lower bound, what the
  request, the routing and the JSON encoding cost alone (`bare_view`);
* the **raw driver in a bare Flask view** sends the very statements the finished endpoint sends (captured from
  one of its requests, SQL and parameters) through `sqlite3` or `psycopg`, on a connection taken from a
  minimal pool, turns the rows into the same JSON and ends its transaction: a floor an app could actually
  reach (`_raw_driver_view`).

Between the two floors and the finished app sit the layers SQLAlchemy and the shop add. `endpoint_floor(app,
path)` measures the rungs of that ladder side by side, each one layer more than the one below it (the same
statements through a Core connection, then through a Session, then the finished view building its statements
per request, then the app's own hooks), checks that every rung answers the same JSON, and says how many ms
each layer adds. Lesson 08 shows it for an endpoint of the finished app (`finished_app(course)`, on an indexed
copy of the dataset) with `endpoint_floor(app, path).show()`.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import queue
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from flask import Blueprint, Flask, request
from IPython.display import display
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session
from waitress import serve

from ..config import PROJECT_ROOT
from ..data import drop_copy
from ..errors import CourseError
from ..measure.display import styled
from ..measure.harness import Comparison, compare
from ..measure.recorder import QueryRecorder, record
from ..measure.units import format_ms
from ..servers.wsgi import Served, free_port, wait_until
from ..shop import optimized
from ..shop.app import create_app
from ..shop.optimized import create_indexes

if TYPE_CHECKING:
    from werkzeug.datastructures import MultiDict

    from ..course import Course

__all__ = [
    "CENT",
    "LAYERS",
    "RUNGS",
    "Captured",
    "EndpointFloor",
    "RawPool",
    "Rows",
    "Shape",
    "bare_view",
    "call_ladder",
    "capture",
    "endpoint_floor",
    "finished_app",
    "indexed_copy",
    "ladder",
    "raw_driver_app",
    "same_answer",
    "serve_bare",
]

CENT = Decimal("0.01")
Rows = list[Any]  # a statement's rows: the driver's tuples, or SQLAlchemy's Rows
Shape = Callable[[list[Rows], "MultiDict[str, str]"], Any]


@dataclass(frozen=True)
class Captured:
    """One request to the finished app: what answered it, its JSON, and every statement it sent on the way."""

    path: str
    endpoint: str  # the view's name, without its blueprint: 'customer_page'
    status: int
    body: Any
    sql: tuple[tuple[str, Any], ...]  # what the driver received: SQL and parameters, in order
    statements: tuple[tuple[Any, Any], ...] = field(repr=False)  # the statement objects the view executed


def _endpoint_name(app: Flask, path: str) -> str:
    """The name of the view that answers `path` in `app`, without its blueprint ('customer_page')."""
    endpoint, _ = app.url_map.bind("localhost").match(path.split("?")[0], method="GET")
    return str(endpoint).rsplit(".", 1)[-1]


@contextmanager
def _capturing(engine: Engine) -> Iterator[tuple[list[tuple[Any, Any]], QueryRecorder]]:
    """Inside the block, keep the statement objects executed on `engine` (with their parameters) and the SQL."""
    built: list[tuple[Any, Any]] = []

    def executing(conn: Any, statement: Any, multiparams: Any, params: Any, options: Any) -> None:
        built.append((statement, params or (multiparams[0] if len(multiparams or ()) == 1 else None)))

    event.listen(engine, "before_execute", executing)
    try:
        with record(engine) as recorder:
            yield built, recorder
    finally:
        event.remove(engine, "before_execute", executing)


def _sql_of(recorder: QueryRecorder) -> tuple[tuple[str, Any], ...]:
    return tuple((s.sql, s.params) for s in recorder.statements)


def capture(app: Flask, path: str) -> Captured:
    """Ask `app` for `path` once; keep its answer, the SQL its driver received and the statements it built."""
    with _capturing(app.extensions["engine"]) as (built, recorder):
        response = app.test_client().get(path)
    return Captured(
        path, _endpoint_name(app, path), response.status_code, response.get_json(), _sql_of(recorder), tuple(built)
    )


def same_answer(response: Any) -> Any:
    """What two answers must share to be the same: the status and the JSON."""
    return response.status_code, response.get_json()


def indexed_copy(course: Course, name: str) -> tuple[Course, Callable[[], None]]:
    """A private copy of the dataset with the indexes the finished views rely on (as `make app` serves them),
    and the function that removes it."""

    copy = course.private_copy(name)
    create_indexes(copy.engine)

    def remove() -> None:
        copy.engine.dispose()
        drop_copy(copy.url)

    return copy, remove


@contextmanager
def finished_app(course: Course, name: str = "finished") -> Iterator[Flask]:
    """The finished app, uncached (each request runs its statements), on an indexed copy removed afterwards.

    with finished_app(course) as app:
        endpoint_floor(app, "/customers/1").show()
    """

    copy, remove = indexed_copy(course, name)
    app = copy.app(views=optimized.bp, CACHE_TYPE="NullCache", CACHE_NO_NULL_WARNING=True)
    try:
        yield app
    finally:
        app.extensions["engine"].dispose()
        remove()


# ------------------------------------------------------------------ rows to JSON, as the finished views build it
def _when(value: Any) -> str:
    """A timestamp as the views write it: SQLite's driver returns the stored text, psycopg a datetime."""
    return (datetime.fromisoformat(value) if isinstance(value, str) else value).isoformat()


def _money(value: Any) -> Any:
    """Money as Numeric(…, 2) reads it: SQLite's driver gives a float (or an int), psycopg a Decimal."""
    return Decimal(f"{value:.2f}") if isinstance(value, int | float) else value


def _customer_page(results: list[Rows], args: MultiDict[str, str]) -> Any:
    (customer_id, name, email, city), orders = results[0][0], results[1]
    return {
        "id": customer_id,
        "name": name,
        "email": email,
        "city": city,
        "orders": [
            {"id": i, "status": status, "created_at": _when(at), "total": _money(total), "lines": lines}
            for i, status, at, total, lines in orders
        ],
    }


def _order_list(results: list[Rows], args: MultiDict[str, str]) -> Any:
    orders = [
        {"id": i, "customer": name, "status": status, "created_at": _when(at), "total": _money(total),
         "lines": lines}
        for i, name, status, at, total, lines in results[0]
    ]  # fmt: skip
    next_cursor = orders[-1]["id"] if len(orders) == int(args.get("per_page", 20)) else None
    return {"page": int(args.get("page", 1)), "orders": orders, "next": next_cursor}


def _search(results: list[Rows], args: MultiDict[str, str]) -> Any:
    return {
        "count": results[0][0][0],
        "customers": [{"id": i, "name": name, "city": city} for i, name, city in results[1]],
    }


def _sales_report(results: list[Rows], args: MultiDict[str, str]) -> Any:
    days = int(args.get("days", 7))
    if len(results) < 2:
        return {"days": days, "categories": []}
    rows = [(category, _money(total).quantize(CENT), int(units)) for category, total, units in results[1]]
    rows.sort(key=lambda r: (-r[1], r[0]))
    return {"days": days, "categories": [{"category": c, "revenue": r, "units": u} for c, r, u in rows]}


# The finished views' JSON built from the rows of their statements, by view name: what every floor and rung
# below the finished view does after its fetches (the floor reads no parameters of its own beyond these).
_SHAPES: dict[str, Shape] = {
    "customer_page": _customer_page,
    "order_list": _order_list,
    "search": _search,
    "sales_report": _sales_report,
}


# ------------------------------------------------------------------------------------------------- the floors
def _bare_app(payloads: Mapping[str, Any]) -> Flask:
    """A Flask app with one view per path returning that path's JSON, with no database work at all."""
    app = Flask("bare")
    for path, payload in payloads.items():
        rule = path.split("?")[0]
        app.add_url_rule(rule, rule, lambda payload=payload, **_: payload)
    return app


def bare_view(path: str, payload: Any) -> Callable[[], Any]:
    """One GET of `path` from `_bare_app` through the test client: the lower bound for an endpoint."""
    return _getter(_bare_app({path: payload}).test_client(), path)


def _getter(client: Any, path: str) -> Callable[[], Any]:
    return lambda: client.get(path)


class RawPool:
    """A minimal pool of the driver's own connections, from which the raw-driver floor takes one per request."""

    def __init__(self, engine: Engine, size: int = 1) -> None:
        self._proxies = [engine.raw_connection() for _ in range(size)]  # opened once, outside any timing
        self._idle: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for proxy in self._proxies:
            self._idle.put(proxy.driver_connection)

    @contextmanager
    def connection(self) -> Iterator[Any]:
        """A driver connection for one request; its transaction ends (a rollback) before it goes back."""
        connection = self._idle.get()
        try:
            yield connection
        finally:
            connection.rollback()
            self._idle.put(connection)

    def close(self) -> None:
        for proxy in self._proxies:
            proxy.close()

    def rows(self, sql: Sequence[tuple[str, Any]]) -> list[Rows]:
        """Each statement's rows, fetched through the driver on a connection of the pool, in one transaction."""
        with self.connection() as connection:
            cursor = connection.cursor()
            results = []
            for text, params in sql:
                cursor.execute(text, params)
                results.append(cursor.fetchall())
            cursor.close()
        return results


def _raw_driver_view(pool: RawPool, captured: Captured) -> Callable[..., Any]:
    """A Flask view sending `captured`'s SQL through the raw driver and answering the finished view's JSON."""
    shape, sql = _SHAPES[captured.endpoint], captured.sql
    return lambda **_: shape(pool.rows(sql), request.args)


def raw_driver_app(pool: RawPool, captured: Mapping[str, Captured]) -> Flask:
    """A bare Flask app with a raw-driver view for each captured path."""
    return _app_of("raw_driver", {path: _raw_driver_view(pool, one) for path, one in captured.items()})


def _app_of(name: str, views: Mapping[str, Callable[..., Any]]) -> Flask:
    app = Flask(name)
    for path, view in views.items():
        rule = path.split("?")[0]
        app.add_url_rule(rule, rule, view)
    return app


# -------------------------------------------------------------------------------------- the ladder and layers
# The rungs, from the finished app down to the lower bound; each adds one layer to the one after it.
RUNGS = (
    "finished app",
    "finished view, no statement headers",
    "Session, statements built once",
    "Core connection, statements built once",
    "raw driver in a bare Flask view (floor)",
    "bare Flask view, no database",
)
# What each rung adds to the next one down (the last: to nothing).
LAYERS = (
    "the app's hooks (statement count and time headers)",
    "building statements per request (and the view's own code)",
    "Session and ORM execution",
    "SQLAlchemy Core (connection, execution, typed rows)",
    "the database (driver: statements and rows)",
    "WSGI, Flask and JSON",
)


def ladder(app: Flask, path: str) -> tuple[dict[str, Callable[[], Any]], Callable[[], None]]:
    """The ladder's variants for `path` (each a GET through a test client) and the cleanup closing their apps."""

    def clone(**config: Any) -> Flask:
        views = [bp for bp in app.blueprints.values() if isinstance(bp, Blueprint)]
        return create_app({**app.config, **config}, views=views)

    # The statements are captured on a throwaway clone: a listener once added leaves an engine dispatching
    # events on every execution, and the rungs below the finished app must run without any.
    scratch = clone(STATEMENT_HEADERS=False)
    try:
        captured = capture(scratch, path)
    finally:
        scratch.extensions["engine"].dispose()
    no_headers = clone(STATEMENT_HEADERS=False)
    engine: Engine = no_headers.extensions["engine"]
    sessions = no_headers.extensions["sessionmaker"]
    shape, statements = _SHAPES[captured.endpoint], captured.statements

    def core_view(**_: Any) -> Any:
        with engine.connect() as conn:
            return shape([list(conn.execute(s, p)) for s, p in statements], request.args)

    def session_view(**_: Any) -> Any:
        with sessions() as session:
            return shape([list(session.execute(s, p)) for s, p in statements], request.args)

    pool = RawPool(engine)
    clients = [
        app.test_client(),
        no_headers.test_client(),
        _app_of("session", {path: session_view}).test_client(),
        _app_of("core", {path: core_view}).test_client(),
        raw_driver_app(pool, {path: captured}).test_client(),
        _bare_app({path: captured.body}).test_client(),
    ]
    variants = {rung: _getter(client, path) for rung, client in zip(RUNGS, clients, strict=True)}

    def close() -> None:
        pool.close()
        no_headers.extensions["engine"].dispose()

    return variants, close


@dataclass
class EndpointFloor:
    """An endpoint's ladder measured side by side: the finished app first, its floors last."""

    path: str
    comparison: Comparison

    @property
    def floor_ms(self) -> float:
        return self.comparison[RUNGS[4]].median_s * 1000

    @property
    def finished_ms(self) -> float:
        return self.comparison[RUNGS[0]].median_s * 1000

    @property
    def layers(self) -> pd.DataFrame:
        """What each layer adds, in ms per request (a rung's median minus the next one's) and as a share."""
        medians = [self.comparison[rung].median_s * 1000 for rung in RUNGS]
        added = [a - b for a, b in zip(medians, [*medians[1:], 0.0], strict=True)]
        frame = pd.DataFrame({"layer": LAYERS, "ms": added}).set_index("layer")
        frame["share"] = frame["ms"] / medians[0]
        return frame

    def summary(self) -> str:
        """One sentence computed from the measurements (and a warning when the machine was too busy)."""
        layers = self.layers
        above = layers.iloc[:4]  # the layers between the reachable floor and the finished app
        biggest = above["ms"].idxmax()
        gap_s = (self.finished_ms - self.floor_ms) / 1000
        sentence = (
            f"{self.path}: the finished app took {format_ms(self.finished_ms / 1000)}, "
            f"{self.finished_ms / self.floor_ms:.1f}× its reachable floor (the same statements through the raw "
            f"driver, {format_ms(self.floor_ms / 1000)}); of the {format_ms(gap_s)} above it, {biggest} took the "
            f"most: {format_ms(above.loc[biggest, 'ms'] / 1000)}."
        )
        if (layers["ms"] < 0).any():
            sentence += " A layer came out negative: the machine was busy while the rungs ran; run it again."
        return sentence

    def show(self) -> None:
        """The ladder's table and chart, the layers, and the sentence (in a notebook)."""

        self.comparison.show(summary=False)
        display(styled(self.layers))
        print(self.summary())


def endpoint_floor(
    app: Flask, path: str, *, lesson: str = "09", repeat: int = 15, store: bool = True
) -> EndpointFloor:
    """The finished endpoint at `path` beside its floors and the rungs between them, side by side in one run.

    Every rung must answer the JSON the app answers (checked). Sub-millisecond rungs are timed in batches of a
    millisecond. `app` is the finished app (its views on a database with their indexes).
    """
    variants, close = ladder(app, path)
    try:
        comparison = compare(
            variants,
            lesson=lesson,
            repeat=repeat,
            check=same_answer,
            store=store,
            title=f"floors of {path}",
            backend=app.extensions["engine"].dialect.name,
            min_sample_s=0.001,
        )
    finally:
        close()
    return EndpointFloor(path, comparison)


# ------------------------------------------------------------------------------------- a call's ladder, no Flask
def call_ladder(
    engine: Engine, label: str, fn: Callable[[], Any], *, floor: str = "raw driver, the same SQL (floor)"
) -> tuple[dict[str, Callable[[], list[tuple[Any, ...]]]], Callable[[], None]]:
    """`fn` (a Session per call, building its statements) beside the same statements built once, then through
    a Core connection, then through the raw driver (`floor`): what each layer adds to one call.

    Every rung returns the rows as tuples (the raw driver's values are as it returns them: SQLite's timestamps
    as text). Returns the variants, `fn` first, and the cleanup giving the raw connection back.
    """
    with _capturing(engine) as (built, recorder):
        fn()
    statements, sql = tuple(built), _sql_of(recorder)
    pool = RawPool(engine)

    def session_once() -> list[tuple[Any, ...]]:
        with Session(engine) as session:
            return [tuple(row) for s, p in statements for row in session.execute(s, p)]

    def core_once() -> list[tuple[Any, ...]]:
        with engine.connect() as conn:
            return [tuple(row) for s, p in statements for row in conn.execute(s, p)]

    def raw() -> list[tuple[Any, ...]]:
        return [tuple(row) for rows in pool.rows(sql) for row in rows]

    variants = {
        label: lambda: [tuple(row) for row in fn()],
        f"{label}, statement built once": session_once,
        f"{label}, Core connection, statement built once": core_once,
        floor: raw,
    }
    return variants, pool.close


# ------------------------------------------------------------------------------------------ the floor under load
def serve_bare(payloads: Mapping[str, Any], *, threads: int = 8, ready_timeout_s: float = 30) -> Served:
    """`_bare_app(payloads)` on waitress with `threads` threads, in a child process of its own, as the shop is
    served by `servers.wsgi.serve_in_process`: the floor for the app under load."""
    folder = Path(tempfile.mkdtemp(prefix="course-floor-"))
    (folder / "payloads.json").write_text(json.dumps(payloads))
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, "-m", __name__, str(folder / "payloads.json"), str(port), str(threads)],
        cwd=PROJECT_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )

    def stop() -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.terminate()
            child.wait(10)
        if child.poll() is None:
            child.kill()
            child.wait()
        shutil.rmtree(folder, ignore_errors=True)

    served = Served(f"http://127.0.0.1:{port}", stop, child)
    atexit.register(served.stop)
    first = next(iter(payloads))

    def answers() -> bool:
        with contextlib.suppress(OSError):
            return served.get(first, timeout_s=2)[0] == 200
        return False

    if not wait_until(answers, timeout_s=ready_timeout_s, interval_s=0.1):
        served.stop()
        raise CourseError(f"The bare Flask floor did not answer on {served.url} within {ready_timeout_s:.0f} s.")
    return served


def _serve(argv: Sequence[str]) -> None:
    """`python -m helpers.topics.floors PAYLOADS.json PORT THREADS`: what `serve_bare` runs."""

    payloads_file, port, threads = argv
    app = _bare_app(json.loads(Path(payloads_file).read_text()))
    serve(app, host="127.0.0.1", port=int(port), threads=int(threads), ident="floor")


if __name__ == "__main__":
    _serve(sys.argv[1:])

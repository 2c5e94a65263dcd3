"""Exercises for lesson 09 · Profiling and monitoring: a slow-statement header, the line that issued a
statement, a budget test that fails for the right reason, and the sales report without its lazy loads."""

from __future__ import annotations

import sysconfig
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from types import FrameType
from typing import Any

from flask import Blueprint, Flask, g, has_request_context, request
from sqlalchemy import Engine, event, func, select, text

from ..course import Course
from ..db import Executed, make_engine, statements_heard
from ..measure.recorder import statement_shape
from ..shop import optimized
from ..shop.db import get_session
from ..shop.models import Order
from ..topics.profiling import Origin, application_frame, report_days, short_path
from ..topics.query_budget import QueryBudgetExceeded, assert_max_queries, compact_sql
from .app_task import AppTask, Call
from .core import Exercise, Incorrect, Question

__all__ = [
    "LIBRARY_DIRS",
    "Q1",
    "Q2",
    "Q3",
    "STARTER_Q1",
    "STARTER_Q2",
    "STARTER_Q3",
    "Lesson09Exercises",
    "add_slow_statement_header",
    "exercises",
    "improve_task",
    "issuing_frame",
]

# q1: statements that sleep _SLEEP_MS are slow, `SELECT 1` is not; the threshold sits far from both.
_THRESHOLD_MS = 30
_SLEEP_MS = 100
_PROBES = ((2, 3), (1, 4), (0, 2))  # (slow, fast) statements per request, in order
_MAX_ORDERS = 8  # q3's customer has this many orders at most

LIBRARY_DIRS = (sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"])


# ---------------------------------------------------------------------------------------- references
def add_slow_statement_header(app: Flask, threshold_ms: float) -> None:
    """Reference for q1: count each request's statements slower than `threshold_ms` in X-Slow-Statements."""
    engine = app.extensions["engine"]

    @event.listens_for(engine, "before_cursor_execute")
    def start_timer(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        conn.info.setdefault("started", []).append(time.perf_counter())

    @event.listens_for(engine, "after_cursor_execute")
    def count_if_slow(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        elapsed_ms = (time.perf_counter() - conn.info["started"].pop()) * 1000
        if elapsed_ms >= threshold_ms and has_request_context():
            g.slow_statements = g.get("slow_statements", 0) + 1

    @app.after_request
    def add_header(response):  # type: ignore[no-untyped-def]
        response.headers["X-Slow-Statements"] = str(g.get("slow_statements", 0))
        return response


def issuing_frame(stack: list[traceback.FrameSummary]) -> traceback.FrameSummary | None:
    """Reference for q2: the innermost frame that is not library code (stack is outermost first)."""
    for frame in reversed(stack):
        if not frame.filename.startswith(LIBRARY_DIRS):
            return frame
    return None


def _dispose(*apps: Flask) -> None:
    for app in apps:
        app.extensions["engine"].dispose()


def _first_line(exc: BaseException, otherwise: str = "") -> str:
    return str(exc).splitlines()[0] if str(exc) else otherwise


# ---------------------------------------------------------------------------------------- q1
def _probe(backend: str) -> Blueprint:
    """GET /probe?slow=2&fast=3: that many statements sleeping _SLEEP_MS, then that many quick ones."""
    sleep = text("SELECT pg_sleep(:s)") if backend == "postgresql" else text("SELECT course_sleep(:s)")
    bp = Blueprint("probe08", __name__)

    @bp.get("/probe")
    def probe() -> dict[str, Any]:
        session = get_session()
        for _ in range(int(request.args["slow"])):
            session.execute(sleep, {"s": _SLEEP_MS / 1000})
        for _ in range(int(request.args["fast"])):
            session.execute(text("SELECT 1"))
        return {"ok": True}

    return bp


def _sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def _sqlite_sleep(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.create_function("course_sleep", 1, _sleep)


def _probe_app(course: Course) -> Flask:
    """The shop with the probe route, its first connection already open (its set-up stays out of requests)."""
    app = course.app(views=_probe(course.backend), PROPAGATE_EXCEPTIONS=True)
    engine = app.extensions["engine"]
    if course.backend == "sqlite":
        event.listen(engine, "connect", _sqlite_sleep)
    with engine.connect():
        pass
    return app


@contextmanager
def _timings(engine: Engine) -> Iterator[list[float]]:
    """The duration in ms of every statement run inside the block, measured by the check itself."""
    found: list[float] = []
    with statements_heard(engine, lambda executed, caller: found.append(executed.duration_s * 1000)):
        yield found


def _slow_header(app: Flask, slow: int, fast: int) -> tuple[int, list[float]]:
    """What X-Slow-Statements said for one probe request, and every statement's duration in ms."""
    with _timings(app.extensions["engine"]) as durations:
        try:
            response = app.test_client().get(f"/probe?slow={slow}&fast={fast}")
        except Exception as exc:  # the learner's hooks run inside the request
            raise Incorrect(f"a request raised {type(exc).__name__} in your hooks: {_first_line(exc)}") from None
    header = response.headers.get("X-Slow-Statements")
    if header is None:
        raise Incorrect("the response has no X-Slow-Statements header: set it in the after_request hook")
    try:
        return int(header), durations
    except ValueError:
        raise Incorrect(f"X-Slow-Statements should be a whole number, not {header!r}") from None


def _judge_count(said: list[int], slow: int, fast: int, durations: list[float]) -> None:
    """Raise Incorrect unless the latest count is the number of slow statements, with the likely mistake."""
    n = said[-1]
    # Statements near the threshold could go either way on a busy machine; these cannot.
    surely = sum(d >= _THRESHOLD_MS * 1.5 for d in durations)
    maybe = sum(d >= _THRESHOLD_MS * 0.5 for d in durations)
    if surely <= n <= maybe:
        return
    plural = "s" if slow != 1 else ""
    ran = f"a request ran {slow} statement{plural} of {_SLEEP_MS} ms and {fast} quick ones"
    if n == len(durations) and n > maybe:
        why = f"it counted every statement, not only those over {_THRESHOLD_MS} ms"
    elif len(said) > 1 and n > maybe and n >= sum(said[:-1]):
        why = "the count carried over from the previous requests: keep it per request, in flask.g"
    elif n == 0:
        why = "is the elapsed time in milliseconds, like threshold_ms?"
    else:
        why = f"expected {surely}"
    raise Incorrect(f"{ran}, X-Slow-Statements said {n}: {why}")


def _check_q1(course: Course, answer: Any) -> str:
    app = _probe_app(course)
    said: list[int] = []
    try:
        answer(app, _THRESHOLD_MS)
        for slow, fast in _PROBES:
            n, durations = _slow_header(app, slow, fast)
            said.append(n)
            _judge_count(said, slow, fast, durations)
    finally:
        _dispose(app)
    return (
        f"X-Slow-Statements said {', '.join(map(str, said))} for requests with "
        f"{', '.join(str(slow) for slow, _ in _PROBES)} statements over {_THRESHOLD_MS} ms."
    )


STARTER_Q1 = """\
from flask import g  # noqa: F401 (your hooks will need it)


def add_slow_statement_header(app, threshold_ms):
    engine = app.extensions["engine"]

    @event.listens_for(engine, "before_cursor_execute")
    def start_timer(conn, cursor, statement, parameters, context, executemany):
        ____

    @event.listens_for(engine, "after_cursor_execute")
    def count_if_slow(conn, cursor, statement, parameters, context, executemany):
        ____

    @app.after_request
    def add_header(response):
        response.headers["X-Slow-Statements"] = ____
        return response


ex.q1.check(add_slow_statement_header)"""


Q1 = Question(
    title="A slow-statement count in every response",
    starter=STARTER_Q1,
    check=_check_q1,
    hints=(
        "In start_timer keep time.perf_counter() on the connection (conn.info is a dict per connection); in "
        "count_if_slow compute the elapsed milliseconds and, when they reach threshold_ms, add one to a "
        "counter in flask.g (g.get('slow_statements', 0) + 1): g lives as long as one request. The header "
        "value is a string: str(g.get('slow_statements', 0)).",
    ),
    solution=add_slow_statement_header,
)


# ---------------------------------------------------------------------------------------- q2
_Q2_URL = "/orders?page=1&per_page=5"
_Found = tuple[str, Origin | None, Any]  # a statement's shape, where it was issued, the answer's frame


def _answers_per_statement(course: Course, answer: Any) -> list[_Found]:
    """Call the answer with the stack of every statement the order list runs, beside the issuing line."""
    app = course.app()
    found: list[_Found] = []
    failed: list[Exception] = []

    def heard(executed: Executed, caller: FrameType) -> None:
        try:  # caller: the frame that ran the statement, SQLAlchemy's event dispatch
            got = answer(traceback.extract_stack(caller))
        except Exception as exc:  # raised after the request, outside SQLAlchemy and Flask
            failed.append(exc)
            got = None
        found.append((statement_shape(executed.sql), application_frame(caller), got))

    try:
        with statements_heard(app.extensions["engine"], heard):
            app.test_client().get(_Q2_URL)
    finally:
        _dispose(app)
    if failed:
        raise failed[0]
    return found


def _same_frame(expected: Any, got: Any) -> None:
    """Raise Incorrect unless the answer's frame is the issuing line, saying what it pointed at instead."""
    if got is None:
        raise Incorrect(f"your function returned None for a statement issued at {expected.where}")
    if not hasattr(got, "filename") or not hasattr(got, "lineno"):
        raise Incorrect(f"return one frame of the stack (a FrameSummary), not {type(got).__name__}")
    if (got.filename, got.lineno) == (expected.filename, expected.lineno):
        return
    place = f"{short_path(got.filename)}:{got.lineno}"
    if got.filename.startswith(LIBRARY_DIRS):
        why = "that is library code"
    elif got.lineno != expected.lineno and got.filename == expected.filename:
        why = "the right file, another line"
    else:
        why = "that frame started the request; the statement was issued further in"
    raise Incorrect(f"for a statement issued at {expected.where}, your function points at {place} ({why})")


def _check_q2(course: Course, answer: Any) -> str:
    found = _answers_per_statement(course, answer)
    for _shape, expected, got in found:
        _same_frame(expected, got)
    by_shape: dict[str, list[str]] = {}
    for shape, expected, _ in found:
        assert expected is not None  # _same_frame compared it with the answer's frame
        by_shape.setdefault(shape, []).append(f"{expected.where} ({expected.code})")
    repeated = sorted(((len(w), s, w[0]) for s, w in by_shape.items() if len(w) > 1), reverse=True)
    lines = "; ".join(f"{n} × {compact_sql(shape, 80)} at {where}" for n, shape, where in repeated)
    return f"GET {_Q2_URL}: every statement traced to its line. The N+1: {lines}."


STARTER_Q2 = """\
print(LIBRARY_DIRS)


def issuing_frame(stack):
    return ____


ex.q2.check(issuing_frame)"""


Q2 = Question(
    title="The line that issued a statement",
    starter=STARTER_Q2,
    check=_check_q2,
    hints=(
        "The stack is listed outermost first, and the statement's own frames (SQLAlchemy's) come last. "
        "Walk it from the end with reversed(stack) and return the first frame whose filename does not start "
        "with one of LIBRARY_DIRS (str.startswith accepts a tuple).",
    ),
    solution=issuing_frame,
)


# ---------------------------------------------------------------------------------------- q3
def _budget_customer(course: Course) -> tuple[int, int]:
    """q3's customer and how many orders they have: several, but at most _MAX_ORDERS."""
    return _budget_customer_at(course.url.render_as_string(hide_password=False))


@lru_cache(maxsize=8)
def _budget_customer_at(url: str) -> tuple[int, int]:
    # Not hundreds of orders: the baseline page runs a statement per order (each a scan of order_lines until
    # lesson 04's index), and the check runs it.
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            customer, orders = conn.execute(
                select(Order.customer_id, func.count())
                .group_by(Order.customer_id)
                .having(func.count() <= _MAX_ORDERS)
                .order_by(func.count().desc(), Order.customer_id)
                .limit(1)
            ).one()
        return int(customer), int(orders)
    finally:
        engine.dispose()


def _fails_on_the_baseline(answer: Any, baseline: Flask) -> QueryBudgetExceeded:
    """The learner's test run against the baseline app: it must fail on its statement budget."""
    with assert_max_queries(10_000) as counted:
        try:
            answer(baseline.test_client())
        except QueryBudgetExceeded as exc:
            return exc
        except AssertionError as exc:
            raise Incorrect(
                "your test failed on the baseline, but not because of the statement budget: "
                f"{_first_line(exc, 'an assert failed')}"
            ) from None
    raise Incorrect(
        f"your test passed on the baseline app, which ran {counted.count} statements: "
        "a budget test must catch its N+1"
    )


def _passes_on_the_optimized(answer: Any, better: Flask) -> None:
    try:
        answer(better.test_client())
    except QueryBudgetExceeded as exc:
        raise Incorrect(
            f"your test fails on the optimized app too ({_first_line(exc)}): raise the budget"
        ) from None
    except AssertionError as exc:
        raise Incorrect(f"your test fails on the optimized app: {_first_line(exc, 'an assert failed')}") from None


def _check_q3(course: Course, answer: Any) -> str:
    customer, _orders = _budget_customer(course)
    path = f"/customers/{customer}"
    baseline, better = course.app(), course.app(views=optimized.bp)
    seen: list[str] = []
    for app in (baseline, better):
        app.before_request(lambda: seen.append(request.path))
    try:
        failure = _fails_on_the_baseline(answer, baseline)
        if path not in seen:
            raise Incorrect(f"your test should request {path}, the page of customer {customer}")
        _passes_on_the_optimized(answer, better)
    finally:
        _dispose(baseline, better)
    report = str(failure).splitlines()
    shapes = [line.strip() for line in report if "×" in line]
    first_shape = f" {shapes[0]}" if shapes else ""
    return f"it fails on the baseline ({report[0]}{first_shape}) and passes on the optimized app."


STARTER_Q3 = """\
print(f"Customer {ex.customer} has {ex.customer_orders} orders.")


def test_customer_page(client):
    with assert_max_queries(____):
        response = client.get(____)
    assert response.status_code == 200


ex.q3.check(test_customer_page)"""


Q3 = Question(
    title="A budget test that fails for the right reason",
    starter=STARTER_Q3,
    check=_check_q3,
    hints=(
        "The optimized customer page runs two statements, whatever the customer; the baseline runs two plus "
        "one per order. A budget of 2 separates them. Request f'/customers/{ex.customer}' inside the "
        "with block, and check the status after it.",
    ),
    solution=(
        "def test_customer_page(client):\n"
        "    with assert_max_queries(2):\n"
        '        response = client.get(f"/customers/{ex.customer}")\n'
        "    assert response.status_code == 200\n"
    ),
)


# ---------------------------------------------------------------------------------------- improve the app
def _reference_report() -> Blueprint:
    """The course's sales report without its cache (lesson 06's topic), so the race compares queries."""
    view = optimized.sales_report
    bp = Blueprint("reference08", __name__)
    bp.add_url_rule("/reports/sales", "sales_report", getattr(view, "uncached", view))
    return bp


def improve_task(course: Course) -> AppTask:
    """Improve the app: the sales report in at most two statements (its windows sized to the dataset)."""
    days = report_days(course.info.rows["orders"])
    return AppTask(
        lesson="09",
        endpoint="sales_report",
        rule="/reports/sales",
        calls=[
            Call(f"/reports/sales?days={days}"),
            Call(f"/reports/sales?days={2 * days}&status=delivered"),
            Call(f"/reports/sales?days={days}&min_total=100"),
            Call("/reports/sales?days=0"),
            Call("/reports/sales?days=a%20week"),
        ],
        timed=Call(f"/reports/sales?days={days}"),
        budget=2,
        hint_text=(
            "The profile showed one lazy load per product (line.product). Either tell the query to load the "
            "product in the same statement (joinedload(OrderLine.product), the loader for a many-to-one), or let "
            "the database add up: select(Product.category, func.sum(...), func.sum(...)) joined to the order "
            "lines and orders, grouped by category. Start from report_window(session), which runs the first of "
            "your two statements; on SQLite round a summed revenue to cents: Decimal(x).quantize(Decimal('0.01'))."
        ),
        course=course,
        reference=_reference_report(),
    )


# ---------------------------------------------------------------------------------------- the exercises
@dataclass(frozen=True)
class Lesson09Exercises:
    """Lesson 09's exercises, bound to its database, and what their instructions name."""

    q1: Exercise
    q2: Exercise
    q3: Exercise
    improve: AppTask
    customer: int  # q3's customer
    customer_orders: int
    days: int  # the improve task's report window
    threshold_ms: int = _THRESHOLD_MS


def exercises(course: Course) -> Lesson09Exercises:
    """The lesson's exercises, bound to its database."""
    customer, customer_orders = _budget_customer(course)
    return Lesson09Exercises(
        q1=Q1.bind(course),
        q2=Q2.bind(course),
        q3=Q3.bind(course),
        improve=improve_task(course),
        customer=customer,
        customer_orders=customer_orders,
        days=report_days(course.info.rows["orders"]),
    )

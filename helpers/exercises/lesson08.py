"""Exercises for lesson 08 · Profiling and monitoring: a slow-statement header, the line that issued a
statement, a budget test that fails for the right reason, and the sales report without its lazy loads."""

from __future__ import annotations

import sysconfig
import time
import traceback
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from types import FrameType, SimpleNamespace
from typing import Any

from flask import Blueprint, Flask, g, has_request_context, request
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.orm import joinedload

from ..course import Course
from ..db import Executed, statements_heard
from ..measure.recorder import statement_shape
from ..shop import optimized
from ..shop.db import get_session
from ..shop.models import Order, OrderLine
from ..shop.queries import report_window
from ..topics.profiling import application_frame, short_path
from ..topics.query_budget import QueryBudgetExceeded, assert_max_queries, compact_sql
from .app_task import AppTask, Call
from .core import Incorrect, LegacyExercise

# q1: statements that sleep SLEEP_MS are slow, `SELECT 1` is not; the threshold sits far from both.
THRESHOLD_MS = 30
SLEEP_MS = 100
PROBES = ((2, 3), (1, 4), (0, 2))  # (slow, fast) statements per request, in order
MAX_ORDERS = 8  # q3's customer has this many orders at most
SMALL_ORDERS = 200_000  # the orders of the `small` dataset, which the report windows are sized for

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


def sales_report_joined() -> dict[str, Any]:
    """A right answer to the improve task: the baseline's loop, with the products joined into its query."""
    session = get_session()
    days, conditions = report_window(session)
    if conditions is None:
        return {"days": days, "categories": []}
    revenue: dict[str, Decimal] = defaultdict(Decimal)
    units: dict[str, int] = defaultdict(int)
    lines = select(OrderLine).join(OrderLine.order).where(*conditions).options(joinedload(OrderLine.product))
    for line in session.scalars(lines):
        revenue[line.product.category] += line.quantity * line.unit_price
        units[line.product.category] += line.quantity
    return {
        "days": days,
        "categories": [
            {"category": c, "revenue": revenue[c], "units": units[c]}
            for c in sorted(revenue, key=lambda c: (-revenue[c], c))
        ],
    }


def reference_report() -> Blueprint:
    """The course's sales report without its cache (lesson 05's topic), so the race compares queries."""
    view = optimized.sales_report
    bp = Blueprint("reference08", __name__)
    bp.add_url_rule("/reports/sales", "sales_report", getattr(view, "uncached", view))
    return bp


# ---------------------------------------------------------------------------------------- q1's probe
def _probe(backend: str) -> Blueprint:
    """GET /probe?slow=2&fast=3: that many statements sleeping SLEEP_MS, then that many quick ones."""
    sleep = text("SELECT pg_sleep(:s)") if backend == "postgresql" else text("SELECT course_sleep(:s)")
    bp = Blueprint("probe08", __name__)

    @bp.get("/probe")
    def probe() -> dict[str, Any]:
        session = get_session()
        for _ in range(int(request.args["slow"])):
            session.execute(sleep, {"s": SLEEP_MS / 1000})
        for _ in range(int(request.args["fast"])):
            session.execute(text("SELECT 1"))
        return {"ok": True}

    return bp


def _sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def _sqlite_sleep(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.create_function("course_sleep", 1, _sleep)


@contextmanager
def _timings(engine: Engine) -> Iterator[list[float]]:
    """The duration in ms of every statement run inside the block, measured by the check itself."""
    found: list[float] = []
    with statements_heard(engine, lambda executed, caller: found.append(executed.duration_s * 1000)):
        yield found


def _dispose(*apps: Flask) -> None:
    for app in apps:
        app.extensions["engine"].dispose()


# ---------------------------------------------------------------------------------------- exercises
def exercises(course: Course) -> SimpleNamespace:
    """The lesson's exercises, bound to its database."""
    with course.session() as session:
        # A customer with several orders, but not hundreds: the baseline page runs a statement per order (each
        # a scan of order_lines until lesson 04's index), and the checks run it.
        customer, customer_orders = session.execute(
            select(Order.customer_id, func.count())
            .group_by(Order.customer_id)
            .having(func.count() <= MAX_ORDERS)
            .order_by(func.count().desc(), Order.customer_id)
            .limit(1)
        ).one()
    # The sales report's windows shrink as the dataset grows, so that the baseline stays quick to ask.
    days = max(1, min(7, round(3 * SMALL_ORDERS / course.info.rows["orders"])))

    def check_q1(answer: Any) -> str:
        app = course.app(views=_probe(course.backend), PROPAGATE_EXCEPTIONS=True)
        engine = app.extensions["engine"]
        if course.backend == "sqlite":
            event.listen(engine, "connect", _sqlite_sleep)
        try:
            with engine.connect():
                pass  # the first connection's own set-up queries stay out of the requests
            answer(app, THRESHOLD_MS)
            client = app.test_client()
            said: list[int] = []
            for slow, fast in PROBES:
                with _timings(engine) as durations:
                    try:
                        response = client.get(f"/probe?slow={slow}&fast={fast}")
                    except Exception as exc:  # the learner's hooks run inside the request
                        reason = str(exc).splitlines()[0] if str(exc) else ""
                        raise Incorrect(f"a request raised {type(exc).__name__} in your hooks: {reason}") from None
                header = response.headers.get("X-Slow-Statements")
                if header is None:
                    raise Incorrect(
                        "the response has no X-Slow-Statements header: set it in the after_request hook"
                    )
                try:
                    n = int(header)
                except ValueError:
                    raise Incorrect(f"X-Slow-Statements should be a whole number, not {header!r}") from None
                said.append(n)
                # Statements near the threshold could go either way on a busy machine; these cannot.
                surely = sum(d >= THRESHOLD_MS * 1.5 for d in durations)
                maybe = sum(d >= THRESHOLD_MS * 0.5 for d in durations)
                if surely <= n <= maybe:
                    continue
                plural = "s" if slow != 1 else ""
                ran = f"a request ran {slow} statement{plural} of {SLEEP_MS} ms and {fast} quick ones"
                if n == len(durations) and n > maybe:
                    why = f"it counted every statement, not only those over {THRESHOLD_MS} ms"
                elif len(said) > 1 and n > maybe and n >= sum(said[:-1]):
                    why = "the count carried over from the previous requests: keep it per request, in flask.g"
                elif n == 0:
                    why = "is the elapsed time in milliseconds, like threshold_ms?"
                else:
                    why = f"expected {surely}"
                raise Incorrect(f"{ran}, X-Slow-Statements said {n}: {why}")
        finally:
            _dispose(app)
        return (
            f"X-Slow-Statements said {', '.join(map(str, said))} for requests with "
            f"{', '.join(str(slow) for slow, _ in PROBES)} statements over {THRESHOLD_MS} ms."
        )

    def check_q2(answer: Any) -> str:
        app = course.app()
        engine = app.extensions["engine"]
        found: list[tuple[str, Any, Any]] = []  # (shape, expected origin, the answer's frame)
        failed: list[Exception] = []

        def heard(executed: Executed, caller: FrameType) -> None:
            try:  # caller: the frame that ran the statement, SQLAlchemy's event dispatch
                got = answer(traceback.extract_stack(caller))
            except Exception as exc:  # raised after the request, outside SQLAlchemy and Flask
                failed.append(exc)
                got = None
            found.append((statement_shape(executed.sql), application_frame(caller), got))

        url = "/orders?page=1&per_page=5"
        try:
            with statements_heard(engine, heard):
                app.test_client().get(url)
        finally:
            _dispose(app)
        if failed:
            raise failed[0]
        for _shape, expected, got in found:
            if got is None:
                raise Incorrect(f"your function returned None for a statement issued at {expected.where}")
            if not hasattr(got, "filename") or not hasattr(got, "lineno"):
                raise Incorrect(f"return one frame of the stack (a FrameSummary), not {type(got).__name__}")
            if (got.filename, got.lineno) != (expected.filename, expected.lineno):
                place = f"{short_path(got.filename)}:{got.lineno}"
                if got.filename.startswith(LIBRARY_DIRS):
                    why = "that is library code"
                elif got.lineno != expected.lineno and got.filename == expected.filename:
                    why = "the right file, another line"
                else:
                    why = "that frame started the request; the statement was issued further in"
                raise Incorrect(
                    f"for a statement issued at {expected.where}, your function points at {place} ({why})"
                )
        by_shape: dict[str, list[str]] = {}
        for shape, expected, _ in found:
            by_shape.setdefault(shape, []).append(f"{expected.where} ({expected.code})")
        repeated = sorted(((len(w), s, w[0]) for s, w in by_shape.items() if len(w) > 1), reverse=True)
        lines = "; ".join(f"{n} × {compact_sql(shape, 80)} at {where}" for n, shape, where in repeated)
        return f"GET {url}: every statement traced to its line. The N+1: {lines}."

    def check_q3(answer: Any) -> str:
        path = f"/customers/{customer}"
        baseline, better = course.app(), course.app(views=optimized.bp)
        seen: list[str] = []
        for app in (baseline, better):
            app.before_request(lambda: seen.append(request.path))
        try:
            with assert_max_queries(10_000) as counted:
                try:
                    answer(baseline.test_client())
                except QueryBudgetExceeded as exc:
                    failure = exc
                except AssertionError as exc:
                    raise Incorrect(
                        f"your test failed on the baseline, but not because of the statement budget: "
                        f"{str(exc).splitlines()[0] if str(exc) else 'an assert failed'}"
                    ) from None
                else:
                    raise Incorrect(
                        f"your test passed on the baseline app, which ran {counted.count} statements: "
                        "a budget test must catch its N+1"
                    )
            if path not in seen:
                raise Incorrect(f"your test should request {path}, the page of customer {customer}")
            try:
                answer(better.test_client())
            except QueryBudgetExceeded as exc:
                raise Incorrect(
                    f"your test fails on the optimized app too ({str(exc).splitlines()[0]}): raise the budget"
                ) from None
            except AssertionError as exc:
                reason = str(exc).splitlines()[0] if str(exc) else "an assert failed"
                raise Incorrect(f"your test fails on the optimized app: {reason}") from None
        finally:
            _dispose(baseline, better)
        report = str(failure).splitlines()
        shapes = [line.strip() for line in report if "×" in line]
        first_shape = f" {shapes[0]}" if shapes else ""
        return f"it fails on the baseline ({report[0]}{first_shape}) and passes on the optimized app."

    improve = AppTask(
        lesson="08",
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
        reference=reference_report(),
    )

    return SimpleNamespace(
        customer=customer,
        customer_orders=customer_orders,
        days=days,
        threshold_ms=THRESHOLD_MS,
        q1=LegacyExercise(
            "A slow-statement count in every response",
            check_q1,
            "In start_timer keep time.perf_counter() on the connection (conn.info is a dict per connection); in "
            "count_if_slow compute the elapsed milliseconds and, when they reach threshold_ms, add one to a "
            "counter in flask.g (g.get('slow_statements', 0) + 1): g lives as long as one request. The header "
            "value is a string: str(g.get('slow_statements', 0)).",
            add_slow_statement_header,
        ),
        q2=LegacyExercise(
            "The line that issued a statement",
            check_q2,
            "The stack is listed outermost first, and the statement's own frames (SQLAlchemy's) come last. "
            "Walk it from the end with reversed(stack) and return the first frame whose filename does not start "
            "with one of LIBRARY_DIRS (str.startswith accepts a tuple).",
            issuing_frame,
        ),
        q3=LegacyExercise(
            "A budget test that fails for the right reason",
            check_q3,
            "The optimized customer page runs two statements, whatever the customer; the baseline runs two plus "
            "one per order. A budget of 2 separates them. Request f'/customers/{ex.customer}' inside the "
            "with block, and check the status after it.",
            f"def test_customer_page(client):\n"
            f"    with assert_max_queries(2):\n"
            f'        response = client.get("/customers/{customer}")\n'
            f"    assert response.status_code == 200\n",
        ),
        improve=improve,
    )

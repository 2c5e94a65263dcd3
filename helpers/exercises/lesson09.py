"""Exercises for lesson 09 · Profiling and monitoring: a slow-statement header, the line that issued a
statement, a budget test that fails for the right reason for every customer, the line a trace blames (read by
the learner), and the sales report without its lazy loads, still cached as lesson 06 made it."""

from __future__ import annotations

import linecache
import operator
import secrets
import sysconfig
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import lru_cache, partial
from types import FrameType
from typing import Any

from flask import Blueprint, Flask, g, has_request_context, request
from sqlalchemy import Engine, event, func, select, text

from ..config import PROJECT_ROOT
from ..course import Course
from ..db import Executed, make_engine, statements_heard
from ..measure.display import say, show_code
from ..measure.predictions import Predicted
from ..measure.recorder import statement_shape
from ..shop import optimized
from ..shop.db import get_session
from ..shop.models import Order
from ..topics.profiling import Origin, application_frame, report_days, short_path, trace
from ..topics.query_budget import QueryBudgetExceeded, assert_max_queries, compact_sql
from .app_task import AppTask, Call
from .core import Exercise, Incorrect, Question
from .saved_views import my_app_dir

__all__ = [
    "IMPROVE_SOLUTION",
    "LIBRARY_DIRS",
    "Q1",
    "Q2",
    "Q3",
    "Q4",
    "CachedReportTask",
    "Lesson09Exercises",
    "add_slow_statement_header",
    "budget_customers",
    "exercises",
    "improve_task",
    "issuing_frame",
    "statements_by_line",
    "test_customer_page",
]

# q1: statements that sleep _SLEEP_MS are slow, `SELECT 1` is not; the threshold sits far from both.
_THRESHOLD_MS = 30
_SLEEP_MS = 100
_PROBES = ((2, 3), (1, 4), (0, 2))  # (slow, fast) statements per request, in order
_MAX_ORDERS = 8  # q3's busier customer has this many orders at most: the baseline page runs one statement each

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


def test_customer_page(client: Any, customer_id: int) -> None:
    """Reference for q3: the optimized page runs two statements for any customer; the baseline two plus one per
    order, so a budget of 2 catches its N+1 for every customer with an order."""
    with assert_max_queries(2):
        response = client.get(f"/customers/{customer_id}")
    assert response.status_code == 200


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


_STARTER_Q1 = """\
from flask import g, has_request_context  # noqa: F401 (for your hooks: g lives as long as one request)


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
    starter=_STARTER_Q1,
    check=_check_q1,
    hints=(
        "Three hooks share one count per request: the first notes when a statement starts (on the connection, "
        "which the second sees too), the second adds one to the request's count when the statement took "
        "threshold_ms or longer, and the last writes the count, as text, into the response. Something that lives "
        "exactly as long as one request holds the count.",
        "conn.info (a dict per connection) and time.perf_counter() for the timer; flask.g for the count, read "
        "with g.get(name, default); response.headers takes strings.",
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


_STARTER_Q2 = """\
print(LIBRARY_DIRS)


def issuing_frame(stack):
    return ____


ex.q2.check(issuing_frame)"""


Q2 = Question(
    title="The line that issued a statement",
    starter=_STARTER_Q2,
    check=_check_q2,
    hints=(
        "The stack is listed outermost first, and the statement's own frames (SQLAlchemy's, the standard "
        "library's) come last: walk it from the innermost frame outwards and stop at the first one that is not "
        "library code.",
        "reversed(stack); each FrameSummary has .filename; str.startswith accepts a tuple, such as LIBRARY_DIRS.",
    ),
    solution=issuing_frame,
)


# ---------------------------------------------------------------------------------------- q3
def budget_customers(course: Course) -> tuple[tuple[int, int], tuple[int, int]]:
    """q3's customers, (id, orders) each: one with a single order, and one with several (at most _MAX_ORDERS)."""
    return _budget_customers_at(course.url.render_as_string(hide_password=False))


@lru_cache(maxsize=8)
def _budget_customers_at(url: str) -> tuple[tuple[int, int], tuple[int, int]]:
    # Not hundreds of orders: the baseline page runs a statement per order (each a scan of order_lines until
    # lesson 04's index), and the check runs it.
    engine = make_engine(url)
    orders = func.count()
    per_customer = select(Order.customer_id, orders).group_by(Order.customer_id)
    try:
        with engine.connect() as conn:
            one = conn.execute(per_customer.having(orders == 1).order_by(Order.customer_id).limit(1)).one()
            several = conn.execute(
                per_customer.having(orders <= _MAX_ORDERS).order_by(orders.desc(), Order.customer_id).limit(1)
            ).one()
        return (int(one[0]), int(one[1])), (int(several[0]), int(several[1]))
    finally:
        engine.dispose()


def _orders(n: int) -> str:
    return f"{n} order{'s' if n != 1 else ''}"


def _fails_on_the_baseline(answer: Any, baseline: Flask, customer: int, orders: int) -> QueryBudgetExceeded:
    """The learner's test run against the baseline app for `customer`: it must fail on its statement budget."""
    with assert_max_queries(10_000) as counted:
        try:
            answer(baseline.test_client(), customer)
        except QueryBudgetExceeded as exc:
            return exc
        except AssertionError as exc:
            raise Incorrect(
                f"for customer {customer} your test failed on the baseline, but not because of the statement "
                f"budget: {_first_line(exc, 'an assert failed')}"
            ) from None
    raise Incorrect(
        f"your test passed on the baseline app for customer {customer} ({_orders(orders)}), which ran "
        f"{counted.count} statements: a budget test must catch the N+1 for every customer with orders, not only "
        "the busiest"
    )


def _passes_on_the_optimized(answer: Any, better: Flask, customer: int) -> None:
    try:
        answer(better.test_client(), customer)
    except QueryBudgetExceeded as exc:
        raise Incorrect(
            f"your test fails on the optimized app too for customer {customer} ({_first_line(exc)}): raise the "
            "budget"
        ) from None
    except AssertionError as exc:
        raise Incorrect(
            f"your test fails on the optimized app for customer {customer}: {_first_line(exc, 'an assert failed')}"
        ) from None


def _check_q3(course: Course, answer: Any) -> str:
    (one, one_orders), (several, several_orders) = budget_customers(course)
    baseline, better = course.app(), course.app(views=optimized.bp)
    seen: list[str] = []
    for app in (baseline, better):
        app.before_request(lambda: seen.append(request.path))
    failures = []
    try:
        for customer, orders in ((several, several_orders), (one, one_orders)):
            seen.clear()
            failures.append(_fails_on_the_baseline(answer, baseline, customer, orders))
            if f"/customers/{customer}" not in seen:
                raise Incorrect(
                    f"your test should request /customers/{customer}: the page of the customer_id it is given"
                )
            _passes_on_the_optimized(answer, better, customer)
    finally:
        _dispose(baseline, better)
    counts = [str(failure).splitlines()[0] for failure in failures]
    shapes = [line.strip() for line in str(failures[0]).splitlines() if "×" in line]
    return (
        f"it fails on the baseline for customer {several} ({_orders(several_orders)}: {counts[0]}"
        + (f" {shapes[0]}" if shapes else "")
        + f") and for customer {one} ({_orders(one_orders)}: {counts[1]}), and passes on the optimized app."
    )


_STARTER_Q3 = """\
print(f"Customer {ex.customers[0]} has one order, customer {ex.customers[1]} has {ex.customer_orders}.")


def test_customer_page(client, customer_id):
    \"\"\"Fails on the baseline's page of `customer_id` because of its N+1 (for every customer with orders),
    passes on the optimized page.\"\"\"
    ____


ex.q3.check(test_customer_page)"""


Q3 = Question(
    title="A budget test that fails for the right reason, for every customer",
    starter=_STARTER_Q3,
    check=_check_q3,
    hints=(
        "Count the statements each version of the page runs for a customer with n orders: the optimized one "
        "the same number whatever n is, the baseline that number plus one per order. The budget has to sit "
        "below the baseline's count for a customer with a single order too, yet let the optimized page pass. "
        "Request the page inside the budget, and check its status after.",
        "assert_max_queries (a context manager: request the page inside it) and the response's status_code; "
        "the query panel or a trace shows how many statements each page runs.",
    ),
    solution=test_customer_page,
)


# ---------------------------------------------------------------------------------------- q4
def statements_by_line(course: Course, url: str) -> Counter[str]:
    """How many statements each application line issued while the baseline app answered `url`."""
    app = course.app()
    try:
        with trace(app.extensions["engine"]) as traced:
            app.test_client().get(url)
    finally:
        _dispose(app)
    return Counter(statement.where for statement in traced.traced())


def _where(given: Any) -> str | None:
    """A line as `trace` names it ('helpers/shop/baseline.py:107'), from a line number or such a string."""
    if isinstance(given, str):
        given = given.strip()
        return given if ":" in given else _where(int(given)) if given.isdigit() else None
    try:
        return f"helpers/shop/baseline.py:{operator.index(given)}"
    except TypeError:
        return None


def _check_q4(course: Course, answer: Any) -> str:
    url = f"/reports/sales?days={report_days(course.info.rows['orders'])}"
    if not isinstance(answer, tuple | list) or len(answer) != 2:
        raise Incorrect(f"give two values, (line, statements), not {answer!r:.60}")
    where, statements = _where(answer[0]), answer[1]
    if where is None:
        raise Incorrect(f"give the line as its number in helpers/shop/baseline.py, not {answer[0]!r:.40}")
    by_line = statements_by_line(course, url)
    busiest, most = by_line.most_common(1)[0]
    if where != busiest:
        issued = by_line.get(where, 0)
        raise Incorrect(
            f"{where} issued {issued} of the {by_line.total()} statements of GET {url}: another line issued more"
            if issued
            else f"{where} issued none of the statements of GET {url}: read 'issued at' in a trace of that request"
        )
    try:
        counted = operator.index(statements)
    except TypeError:
        raise Incorrect(f"give the number of statements as a whole number, not {statements!r:.40}") from None
    if counted != most:
        raise Incorrect(f"{where} is the line; it issued another number of statements than {counted}: count them")
    path, _, line = busiest.rpartition(":")
    code = linecache.getline(str(PROJECT_ROOT / path), int(line)).split("#")[0].strip()
    return (
        f"{busiest} ({code}) issued {most} of the {by_line.total()} statements of GET {url}: a lazy load per "
        "product, the N+1 the improve task removes."
    )


_STARTER_Q4 = """\
# Trace GET ex.report_url on the baseline app: which line of helpers/shop/baseline.py issued the most statements,
# and how many?
busiest_line = ____  # its line number in helpers/shop/baseline.py
its_statements = ____

ex.q4.check((busiest_line, its_statements))"""


Q4 = Question(
    title="Read the trace: the line that issued the most statements",
    starter=_STARTER_Q4,
    check=_check_q4,
    hints=(
        "Record the request's statements with the line that issued each, then count them per line: one line "
        "stands out.",
        "trace(app_engine), as section 6 uses it, around client.get(ex.report_url); its table() has a column "
        "'issued at' to count (pandas' value_counts), and by_shape() counts per shape with the lines.",
    ),
    solution=(
        "with trace(app_engine) as report_trace:\n"
        "    client.get(ex.report_url)\n"
        "busiest = report_trace.table()['issued at'].value_counts()\n"
        "busiest_line = int(busiest.index[0].rsplit(':', 1)[1])\n"
        "its_statements = int(busiest.iloc[0])\n"
    ),
)


# ---------------------------------------------------------------------------------------- improve the app
_EARLIER = "06_sales_report.py"  # lesson 06's cached report, as saved_views names what a check keeps


def _course_with(course: Course, config: Callable[[], dict[str, Any]]) -> Course:
    """A Course whose every app() gets `config()` on top of what it is given."""

    class Configured(Course):
        def app(self, *, views: Any = None, **given: Any) -> Flask:
            return super().app(views=views, **{**given, **config()})

    return Configured(course.lesson, course.settings, course.url, course.engine, course.info)


def _own_cache() -> dict[str, Any]:
    # A SimpleCache is new with every app; a Redis is shared: a prefix of its own starts each app's cache empty.
    return {"CACHE_KEY_PREFIX": f"lesson09-{secrets.token_hex(5)}:"}


def _no_cache() -> dict[str, Any]:
    return {"CACHE_TYPE": "NullCache", "CACHE_NO_NULL_WARNING": True}  # every request runs its statements


def _statements(response: Any) -> int:
    return int(response.headers.get("X-Statements", 0))


def _still_cached(mine: Flask, *, days: int, budget: int) -> str:
    """Lesson 06's properties, kept: a miss within the budget, a repeat served by the cache, tracking noise in the
    query string served by the same entry."""
    client = mine.test_client()
    url = f"/reports/sales?days={days}&status=paid"  # not among the checked calls: a miss
    miss, again = client.get(url), client.get(url)
    if _statements(miss) > budget:
        raise Incorrect(
            f"GET {url} gave the right answer with {_statements(miss)} statements; the budget is {budget}"
        )
    if _statements(again):
        raise Incorrect(
            f"a repeated GET {url} ran {_statements(again)} statements: the report is no longer served from the "
            "cache lesson 06 gave it; keep that cache on the rewritten view"
        )
    noisy = client.get(f"{url}&utm_source=newsletter")
    if _statements(noisy) or noisy.get_json() != miss.get_json():
        raise Incorrect(
            f"GET {url}&utm_source=newsletter ran {_statements(noisy)} statements: as in lesson 06, the report's "
            "key is its own parameters (days, status, min_total), so a tracking parameter finds the same entry"
        )
    return (
        f"Your sales report gives the baseline's answers with at most {budget} statements on a miss "
        f"({_statements(miss)} here), and is still cached as lesson 06 made it: a repeat, and the same request "
        "with a utm_ parameter, ran no statement."
    )


@dataclass
class CachedReportTask(AppTask):
    """The sales report rewritten for fewer statements, still cached: checked with a cache of its own per app,
    raced without one (every app on NullCache) so that the race compares the queries."""

    uncached: Course | None = None

    def race(
        self, views: Blueprint, *, reference: bool = False, repeat: int = 7, prediction: Predicted = None
    ) -> Any:
        without_cache = replace(self, course=self.uncached or self.course)
        return AppTask.race(without_cache, views, reference=reference, repeat=repeat, prediction=prediction)

    def earlier(self) -> None:
        """Show the report the learner saved in lesson 06, whose cache the rewrite keeps."""
        path = my_app_dir() / _EARLIER
        if path.exists():
            say(
                f"Your lesson 06 report (data/my_app/{_EARLIER}): keep its cache on the view you write below.",
                "#3a6fb0",
            )
            show_code(path.read_text())
        else:
            say(
                f"No lesson 06 report saved yet (data/my_app/{_EARLIER}). Lesson 06 caches this report with "
                "Flask-Caching's cache (from the kit), keyed on its own parameters (days, status, min_total); the "
                "check below wants the rewritten view cached the same way.",
                "#7a6a00",
            )


IMPROVE_SOLUTION = """\
my_views = Blueprint("my_views", __name__)
CENT = Decimal("0.01")


def report_key():
    \"\"\"The report's own parameters, and nothing else of the query string (lesson 06).\"\"\"
    return "report:" + "|".join(request.args.get(name, "").strip() for name in ("days", "status", "min_total"))


@my_views.get("/reports/sales")
@cache.cached(timeout=60, key_prefix=report_key)
def sales_report():
    session = get_session()
    days, conditions = report_window(session)
    if conditions is None:
        return {"days": days, "categories": []}
    per_category = (
        select(
            Product.category,
            func.sum(OrderLine.quantity * OrderLine.unit_price).label("revenue"),
            func.sum(OrderLine.quantity).label("units"),
        )
        .select_from(OrderLine)
        .join(OrderLine.order)
        .join(OrderLine.product)
        .where(*conditions)
        .group_by(Product.category)
    )  # the second statement: one row per category, added up by the database
    categories = [
        {"category": row.category, "revenue": Decimal(row.revenue).quantize(CENT), "units": int(row.units)}
        for row in session.execute(per_category)
    ]  # SQLite adds money up as a float: back to cents
    categories.sort(key=lambda entry: (-entry["revenue"], entry["category"]))
    return {"days": days, "categories": categories}
"""


def improve_task(course: Course) -> CachedReportTask:
    """Improve the app: the sales report in at most two statements on a miss, and cached (its windows sized to the
    dataset)."""
    days = report_days(course.info.rows["orders"])
    budget = 2
    return CachedReportTask(
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
        budget=budget,
        hint_text=(
            "The trace and the profile blamed one lazy load per product. Either load each line's product in the "
            "statement that loads the lines (a loader option), or let the database add up revenue and units per "
            "category and send one row per category. report_window(session) runs the first of the two statements; "
            "the cache decorator stays as lesson 06 had it.",
            "joinedload (the loader for a many-to-one: OrderLine.product), or a select of Product.category and "
            "func.sum of the line amounts with joins and group_by; SQLite sums money as a float: Decimal's "
            "quantize rounds it back to cents.",
        ),
        course=_course_with(course, _own_cache),
        extra=partial(_still_cached, days=days, budget=budget),
        uncached=_course_with(course, _no_cache),
        solution_text=IMPROVE_SOLUTION,
    )


# ---------------------------------------------------------------------------------------- the exercises
@dataclass(frozen=True)
class Lesson09Exercises:
    """Lesson 09's exercises, bound to its database, and what their instructions name."""

    q1: Exercise
    q2: Exercise
    q3: Exercise
    q4: Exercise
    improve: CachedReportTask
    customers: tuple[int, int]  # q3's: one with a single order, one with several
    customer_orders: int  # how many the second has
    report_url: str  # q4's request, and the improve task's
    days: int  # the report's window
    threshold_ms: int = _THRESHOLD_MS


def exercises(course: Course) -> Lesson09Exercises:
    """The lesson's exercises, bound to its database."""
    (one, _), (several, several_orders) = budget_customers(course)
    days = report_days(course.info.rows["orders"])
    return Lesson09Exercises(
        q1=Q1.bind(course),
        q2=Q2.bind(course),
        q3=Q3.bind(course),
        q4=Q4.bind(course),
        improve=improve_task(course),
        customers=(one, several),
        customer_orders=several_orders,
        report_url=f"/reports/sales?days={days}",
        days=days,
    )

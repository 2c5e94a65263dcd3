"""Lesson 09 · Profiling and monitoring: each exercise check passes the reference and rejects plausible wrong
answers with the right reason, on both backends; so does the improve-the-app task."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask import g
from proving import prove, verdict
from sqlalchemy import event

from helpers.course import Course
from helpers.exercises import ____, lesson09
from helpers.exercises.lesson09 import (
    LIBRARY_DIRS,
    Q1,
    Q2,
    Q3,
    Q4,
    add_slow_statement_header,
    budget_customers,
    exercises,
    issuing_frame,
    statements_by_line,
)
from helpers.measure.predictions import Prediction
from helpers.topics.profiling import trace
from helpers.topics.query_budget import assert_max_queries
from tests.cells import notebook_code_cells, run_cell


@pytest.fixture(scope="module")
def ex(course: Course) -> Any:
    return exercises(course)


def said(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().out.strip()


@pytest.mark.parametrize("name", ["q1", "q2", "q3", "q4"])
def test_the_notebooks_starter_is_declared_and_not_answered_yet(
    ex: Any, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    starter = getattr(lesson09, name.upper()).starter
    assert starter in notebook_code_cells("09_profiling_and_monitoring.ipynb")
    namespace = {"ex": ex, "____": ____, "event": event, "LIBRARY_DIRS": LIBRARY_DIRS}
    exec(starter, namespace | {"assert_max_queries": assert_max_queries})
    assert "Not answered yet" in said(capsys)


@pytest.mark.parametrize("question", [Q1, Q2, Q3, Q4], ids=["q1", "q2", "q3", "q4"])
def test_two_hints_the_idea_then_the_api(question: Any) -> None:
    assert len(question.hints) >= 2
    assert all(" = " not in hint and "def " not in hint for hint in question.hints)  # no code spelled out


# ---------------------------------------------------------------------------------------- q1
def hooks(is_slow: Any, add_one: Any, header: Any) -> Any:
    """A q1 answer made of its three parts: what is slow, how it is counted, what the header says."""

    def answer(app: Any, threshold_ms: float) -> None:
        engine = app.extensions["engine"]

        @event.listens_for(engine, "before_cursor_execute")
        def start(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
            conn.info["t"] = time.perf_counter()

        @event.listens_for(engine, "after_cursor_execute")
        def stop(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
            if is_slow(time.perf_counter() - conn.info["t"], threshold_ms):
                add_one()

        @app.after_request
        def add_header(response):  # type: ignore[no-untyped-def]
            response.headers["X-Slow-Statements"] = header()
            return response

    return answer


def in_g() -> None:
    g.slow = g.get("slow", 0) + 1


def said_from_g() -> str:
    return str(g.get("slow", 0))


seconds_not_ms = hooks(lambda s, threshold_ms: s >= threshold_ms, in_g, said_from_g)
counts_everything = hooks(lambda s, threshold_ms: True, in_g, said_from_g)
no_default = hooks(lambda s, threshold_ms: s * 1000 >= threshold_ms, in_g, lambda: str(g.slow))  # none: no g.slow


def global_counter(app: Any, threshold_ms: float) -> None:
    slow = {"count": 0}  # lives as long as the app, not one request

    def add_one() -> None:
        slow["count"] += 1

    hooks(lambda s, limit: s * 1000 >= limit, add_one, lambda: str(slow["count"]))(app, threshold_ms)


def no_header(app: Any, threshold_ms: float) -> None:
    """Counts right, but never says so."""


def test_q1_is_proven(course: Course) -> None:
    prove(
        Q1.bind(course).check,
        right=[
            add_slow_statement_header,
            hooks(lambda s, threshold_ms: s * 1000 >= threshold_ms, in_g, said_from_g),
        ],
        wrong=[
            (seconds_not_ms, "said 0: is the elapsed time in milliseconds"),
            (global_counter, "carried over from the previous requests"),
            (counts_everything, "counted every statement"),
            (no_default, "raised AttributeError in your hooks"),
            (no_header, "no X-Slow-Statements header"),
        ],
    )
    assert verdict(Q1.bind(course).check, add_slow_statement_header)[1].startswith(
        "Correct! X-Slow-Statements said 2, 1, 0"
    )
    assert "\n" not in verdict(Q1.bind(course).check, global_counter)[1]


# ---------------------------------------------------------------------------------------- q2
def innermost(stack: list[Any]) -> Any:
    return stack[-1]


def outermost(stack: list[Any]) -> Any:
    return stack[0]


def forwards(stack: list[Any]) -> Any:
    """The library test, but walking from the start of the program."""
    for frame in stack:
        if not frame.filename.startswith(LIBRARY_DIRS):
            return frame
    return None


def _line_of(text: str) -> int:
    """The line of helpers/shop/baseline.py holding `text`, wherever edits to the file move it."""
    lines = (Path(__file__).resolve().parent.parent / "helpers" / "shop" / "baseline.py").read_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if text in line)


PAGE_QUERY = f"helpers/shop/baseline.py:{_line_of('orders = session.scalars(')}"


def walks_back_by_index(stack: list[Any]) -> Any:
    """Another right answer: an index from the end."""
    i = len(stack) - 1
    while i > 0 and stack[i].filename.startswith(LIBRARY_DIRS):
        i -= 1
    return stack[i]


def test_q2_is_proven(course: Course) -> None:
    prove(
        Q2.bind(course).check,
        right=[issuing_frame, walks_back_by_index],
        wrong=[
            (innermost, f"issued at {PAGE_QUERY}, your function points at sqlalchemy/"),
            (outermost, f"issued at {PAGE_QUERY}, your function points at"),
            (forwards, "(that frame started the request; the statement was issued further in)"),
            (lambda stack: "baseline.py", "return one frame of the stack"),
            (lambda stack: None, "returned None"),
        ],
    )
    said_so = verdict(Q2.bind(course).check, issuing_frame)[1]
    assert said_so.startswith("Correct!") and "helpers/shop/baseline.py:" in said_so
    assert "order.customer.name" in said_so


# ---------------------------------------------------------------------------------------- q3
def budget_test(budget: int, path: str | None = None, status: int = 200) -> Any:
    def test_customer_page(client: Any, customer_id: int) -> None:
        with assert_max_queries(budget):
            response = client.get(path or f"/customers/{customer_id}")
        assert response.status_code == status

    return test_customer_page


def budget_named_outside(client: Any, customer_id: int) -> None:
    """Another right answer: the budget in a name, the status and the JSON checked inside the block."""
    optimized_statements = 2
    with assert_max_queries(optimized_statements) as counted:
        response = client.get(f"/customers/{customer_id}")
        assert response.status_code == 200 and response.get_json()["id"] == customer_id
    assert counted.count <= optimized_statements


def test_q3_is_proven(ex: Any, course: Course) -> None:
    (one, one_orders), (several, several_orders) = budget_customers(course)
    assert one_orders == 1 and 2 <= several_orders <= 8 and ex.customers == (one, several)

    def only_the_busier(client: Any, customer_id: int) -> None:
        budget_test(2)(client, several)

    prove(
        Q3.bind(course).check,
        right=[lesson09.test_customer_page, budget_named_outside],
        wrong=[
            (budget_test(3), f"your test passed on the baseline app for customer {one} (1 order), which ran 3"),
            (budget_test(10_000), f"passed on the baseline app for customer {several} ({several_orders} orders)"),
            (
                budget_test(1),
                f"fails on the optimized app too for customer {several} (2 statements ran, the budget",
            ),
            (budget_test(2, "/customers/0"), "failed on the baseline, but not because of the statement budget"),
            (budget_test(2, status=201), "fails on the optimized app for customer"),
            (only_the_busier, f"your test should request /customers/{one}"),
        ],
    )
    said_so = verdict(Q3.bind(course).check, lesson09.test_customer_page)[1]
    assert said_so.startswith(f"Correct! it fails on the baseline for customer {several} ({several_orders} orders")
    assert f"{several_orders} × SELECT order_lines.id, … FROM order_lines" in said_so  # the repeated shape
    assert f"for customer {one} (1 order: 3 statements ran, the budget is 2.)" in said_so


def test_q3_solution_is_the_reference(course: Course, capsys: pytest.CaptureFixture[str]) -> None:
    Q3.bind(course).solution()
    assert "with assert_max_queries(2):" in said(capsys)


# ---------------------------------------------------------------------------------------- q4
def test_q4_is_proven(ex: Any, course: Course) -> None:
    by_line = statements_by_line(course, ex.report_url)
    busiest, most = by_line.most_common(1)[0]
    assert busiest == f"helpers/shop/baseline.py:{_line_of('category = line.product.category')}" and most >= 2
    line = int(busiest.rsplit(":", 1)[1])
    loop_line = _line_of("for line in session.scalars(select(OrderLine)")
    prove(
        Q4.bind(course).check,
        right=[(line, most), (busiest, most), [np.int64(line), np.int64(most)]],
        wrong=[
            ((loop_line, 1), f"baseline.py:{loop_line} issued 1 of the"),
            ((line + 1, most), "issued none of the statements"),
            ((line, most + 1), f"{busiest} is the line; it issued another number of statements than {most + 1}"),
            (("the lazy load", most), "give the line as its number"),
            (line, "give two values"),
        ],
    )
    said_so = verdict(Q4.bind(course).check, (line, most))[1]
    assert said_so.startswith(f"Correct! {busiest} (category = line.product.category) issued {most} of the")


def test_q4_solution_runs_as_a_cell(ex: Any, course: Course) -> None:
    app = course.app()
    try:
        found = run_cell(
            Q4.solution,
            "cell09_q4",
            trace=trace,
            app_engine=app.extensions["engine"],
            client=app.test_client(),
            ex=ex,
        )
    finally:
        app.extensions["engine"].dispose()
    assert Q4.bind(course).check((found["busiest_line"], found["its_statements"]))


# ---------------------------------------------------------------------------------------- improve the app
# What every answer starts with: the solution's view up to its second statement (its signature, lesson 06's cache
# keyed on the report's own parameters, the first statement).
GIVEN = lesson09.IMPROVE_SOLUTION[: lesson09.IMPROVE_SOLUTION.index("    per_category = (")]
JOINED = (
    GIVEN
    + """    revenue = {}
    units = {}
    lines = select(OrderLine).join(OrderLine.order).where(*conditions).options(joinedload(OrderLine.product))
    for line in session.scalars(lines):
        category = line.product.category
        revenue[category] = revenue.get(category, 0) + line.quantity * line.unit_price
        units[category] = units.get(category, 0) + line.quantity
    ranked = sorted(revenue, key=lambda c: (-revenue[c], c))
    return {"days": days, "categories": [
        {"category": c, "revenue": revenue[c], "units": units[c]} for c in ranked
    ]}
"""
)
AGGREGATED = (  # another key function: Flask-Caching's make_cache_key, called with the view's arguments
    GIVEN.replace("def report_key():", "def report_key(*args, **kwargs):").replace(
        "key_prefix=report_key", "make_cache_key=report_key"
    )
    + """    query = (
        select(Product.category, func.sum(OrderLine.quantity * OrderLine.unit_price), func.sum(OrderLine.quantity))
        .join(OrderLine.order)
        .join(OrderLine.product)
        .where(*conditions)
        .group_by(Product.category)
    )
    rows = [(c, Decimal(r).quantize(CENT), int(u)) for c, r, u in session.execute(query)]
    rows.sort(key=lambda row: (-row[1], row[0]))
    return {"days": days, "categories": [{"category": c, "revenue": r, "units": u} for c, r, u in rows]}
"""
)
SELECTIN = JOINED.replace("joinedload(OrderLine.product)", "selectinload(OrderLine.product)")
ASCENDING = JOINED.replace("key=lambda c: (-revenue[c], c)", "key=lambda c: (revenue[c], c)")
NO_FILTERS = JOINED.replace(  # its own date window, without the status and minimum-total filters
    "    days, conditions = report_window(session)\n",
    "    days = int_arg('days', 7, high=3650)\n"
    "    newest = session.scalar(select(func.max(Order.created_at)))\n"
    "    conditions = [Order.created_at >= newest - timedelta(days=days)]\n",
).replace("my_views = Blueprint", "from datetime import timedelta\n\nmy_views = Blueprint")
UNCACHED = JOINED.replace("@cache.cached(timeout=60, key_prefix=report_key)\n", "")
QUERY_STRING = JOINED.replace("key_prefix=report_key", "query_string=True")
ONE_KEY = JOINED.replace("key_prefix=report_key", "key_prefix='report'")  # the blog's mistake, again
assert len({JOINED, AGGREGATED, UNCACHED, QUERY_STRING, ONE_KEY}) == 5


@pytest.fixture
def private_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("name", ["joinedload", "aggregate-in-sql", "solution"])
def test_improve_accepts_a_join_or_an_aggregate_still_cached(
    ex: Any, private_data: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    source = {"joinedload": JOINED, "aggregate-in-sql": AGGREGATED}.get(name) or ex.improve.solution_text
    assert ex.improve.check(run_cell(source, "cell09_1")["my_views"])
    out = said(capsys)
    assert "Correct! Your sales report gives the baseline's answers with at most 2 statements on a miss" in out
    assert "still cached as lesson 06 made it" in out
    saved = (private_data / "my_app" / "09_sales_report.py").read_text()
    assert "@cache.cached(" in saved  # the capstone serves this file instead of lesson 06's: cached


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (SELECTIN, "statements; the budget is 2"),
        (ASCENDING, "GET /reports/sales?days={days}: your JSON['categories'][0]['category'] is"),
        (NO_FILTERS, "GET /reports/sales?days={twice}&status=delivered: "),
        (UNCACHED, "ran 2 statements: the report is no longer served from the cache lesson 06 gave it"),
        (QUERY_STRING, "utm_source=newsletter ran 2 statements"),
        (ONE_KEY, "GET /reports/sales?days={twice}&status=delivered: your JSON"),
    ],
    ids=["selectinload", "ascending", "filters-ignored", "uncached", "query-string-key", "one-key"],
)
def test_improve_rejects(
    ex: Any, private_data: Path, capsys: pytest.CaptureFixture[str], source: str, reason: str
) -> None:
    assert not ex.improve.check(run_cell(source, "cell09_2")["my_views"])
    out = said(capsys)
    assert out.startswith("Not yet") and reason.format(days=ex.days, twice=2 * ex.days) in out
    assert not (private_data / "my_app" / "09_sales_report.py").exists()


def test_improve_races_without_the_cache_and_keeps_the_prediction(ex: Any, private_data: Path) -> None:
    comparison = ex.improve.race(
        run_cell(JOINED, "cell09_3")["my_views"], reference=True, repeat=2, prediction=Prediction(speedup=4)
    )
    statements = comparison.frame["statements"]
    assert statements["yours"] == 2 and statements["the course's version"] == 2  # not 0: no cache in the race
    assert statements["baseline (lesson 01)"] > 2
    assert comparison.outcome is not None and comparison.outcome.best == "yours"


def test_earlier_shows_the_lesson_06_report_or_what_is_wanted(
    ex: Any, private_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ex.improve.earlier()
    assert "No lesson 06 report saved yet (data/my_app/06_sales_report.py)" in said(capsys)
    (private_data / "my_app").mkdir()
    (private_data / "my_app" / "06_sales_report.py").write_text("@cache.cached(timeout=60, query_string=True)\n")
    ex.improve.earlier()
    out = said(capsys)
    assert "Your lesson 06 report" in out and "query_string=True" in out


def test_improve_hints_name_the_idea_then_the_api(ex: Any, capsys: pytest.CaptureFixture[str]) -> None:
    ex.improve.hint()
    assert said(capsys).startswith("Hint 1 of 2: The trace and the profile blamed one lazy load per product")
    ex.improve.hint(2)
    assert "joinedload" in said(capsys)

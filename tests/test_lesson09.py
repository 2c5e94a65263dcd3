"""Lesson 09 · Profiling and monitoring: each exercise check passes the reference and rejects plausible wrong
answers with the right reason, on both backends; so does the improve-the-app task."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from flask import g
from proving import prove, verdict
from sqlalchemy import event, func, select

from helpers.course import Course
from helpers.exercises import ____, lesson09
from helpers.exercises.lesson09 import (
    LIBRARY_DIRS,
    Q1,
    Q2,
    Q3,
    add_slow_statement_header,
    exercises,
    issuing_frame,
)
from helpers.shop.models import Order
from helpers.topics.query_budget import assert_max_queries
from tests.cells import notebook_code_cells, run_cell


@pytest.fixture(scope="module")
def ex(course: Course) -> Any:
    return exercises(course)


def said(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().out.strip()


@pytest.mark.parametrize("name", ["q1", "q2", "q3"])
def test_the_notebooks_starter_is_declared_and_not_answered_yet(
    ex: Any, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    starter = getattr(lesson09, name.upper()).starter
    assert starter in notebook_code_cells("09_profiling_and_monitoring.ipynb")
    namespace = {"ex": ex, "____": ____, "event": event, "LIBRARY_DIRS": LIBRARY_DIRS}
    exec(starter, namespace | {"assert_max_queries": assert_max_queries})
    assert "Not answered yet" in said(capsys)


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
def budget_test(customer: int, budget: int, path: str | None = None, status: int = 200) -> Any:
    def test_customer_page(client: Any) -> None:
        with assert_max_queries(budget):
            response = client.get(path or f"/customers/{customer}")
        assert response.status_code == status

    return test_customer_page


def test_q3_is_proven(ex: Any, course: Course) -> None:
    assert 2 <= ex.customer_orders <= 8
    prove(
        Q3.bind(course).check,
        right=[budget_test(ex.customer, 2), budget_test(ex.customer, 3)],
        wrong=[
            (budget_test(ex.customer, 10_000), "your test passed on the baseline app, which ran"),
            (
                budget_test(ex.customer, 1),
                "your test fails on the optimized app too (2 statements ran, the budget is 1.)",
            ),
            (
                budget_test(ex.customer, 2, "/customers/0"),
                "failed on the baseline, but not because of the statement budget",
            ),
            (budget_test(ex.customer, 2, status=201), "your test fails on the optimized app: assert 200 == 201"),
        ],
    )
    said_so = verdict(Q3.bind(course).check, budget_test(ex.customer, 2))[1]
    assert (
        said_so.startswith("Correct! it fails on the baseline (") and "statements ran, the budget is 2." in said_so
    )
    assert f"{ex.customer_orders} × SELECT order_lines.id, … FROM order_lines" in said_so  # the repeated shape


def test_q3_solution_names_the_customer_through_ex(course: Course, capsys: pytest.CaptureFixture[str]) -> None:
    Q3.bind(course).solution()
    assert 'client.get(f"/customers/{ex.customer}")' in said(capsys)


def test_q3_wants_the_given_customers_page(ex: Any, course: Course, capsys: pytest.CaptureFixture[str]) -> None:
    with course.session() as session:
        other = session.scalar(
            select(Order.customer_id)
            .where(Order.customer_id != ex.customer)
            .group_by(Order.customer_id)
            .having(func.count() >= 2)
            .limit(1)
        )
    assert not Q3.bind(course).check(budget_test(ex.customer, 2, f"/customers/{other}"))
    assert f"should request /customers/{ex.customer}" in said(capsys)


# ---------------------------------------------------------------------------------------- improve the app
GIVEN = """
my_views = Blueprint("my_views", __name__)
CENT = Decimal("0.01")


@my_views.get("/reports/sales")
def sales_report():
    session = get_session()
    days, conditions = report_window(session)
    if conditions is None:
        return {"days": days, "categories": []}
"""  # what every answer starts with: the notebook's starter, and a constant
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
SELECTIN = JOINED.replace("joinedload(OrderLine.product)", "selectinload(OrderLine.product)")
ASCENDING = JOINED.replace("key=lambda c: (-revenue[c], c)", "key=lambda c: (revenue[c], c)")
NO_FILTERS = JOINED.replace(  # its own date window, without the status and minimum-total filters
    "    days, conditions = report_window(session)\n",
    "    days = int_arg('days', 7, high=3650)\n"
    "    newest = session.scalar(select(func.max(Order.created_at)))\n"
    "    conditions = [Order.created_at >= newest - timedelta(days=days)]\n",
).replace("my_views = Blueprint", "from datetime import timedelta\n\nmy_views = Blueprint")
AGGREGATED = (
    GIVEN
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


@pytest.fixture
def private_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("source", [JOINED, AGGREGATED], ids=["joinedload", "aggregate-in-sql"])
def test_improve_accepts_a_join_or_an_aggregate(
    ex: Any, private_data: Path, capsys: pytest.CaptureFixture[str], source: str
) -> None:
    assert ex.improve.check(run_cell(source, "cell08_1")["my_views"])
    assert "Correct! Your sales report gives the baseline's answers to 5 requests" in said(capsys)
    assert (private_data / "my_app" / "09_sales_report.py").exists()


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (SELECTIN, "statements; the budget is 2"),
        (ASCENDING, "GET /reports/sales?days={days}: your JSON['categories'][0]['category'] is"),
        (NO_FILTERS, "GET /reports/sales?days={twice}&status=delivered: "),
    ],
    ids=["selectinload", "ascending", "filters-ignored"],
)
def test_improve_rejects(
    ex: Any, private_data: Path, capsys: pytest.CaptureFixture[str], source: str, reason: str
) -> None:
    assert not ex.improve.check(run_cell(source, "cell08_2")["my_views"])
    out = said(capsys)
    assert out.startswith("Not yet") and reason.format(days=ex.days, twice=2 * ex.days) in out
    assert not (private_data / "my_app" / "09_sales_report.py").exists()


def test_improve_races_the_uncached_reference(ex: Any, private_data: Path) -> None:
    comparison = ex.improve.race(run_cell(JOINED, "cell08_3")["my_views"], reference=True, repeat=2)
    statements = comparison.frame["statements"]
    assert statements["yours"] == 2 and statements["the course's version"] == 2  # not 0: no cache in the race
    assert statements["baseline (lesson 01)"] > 2

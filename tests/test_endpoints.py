"""Lesson 01's instruments (helpers.topics.endpoints): which tables a request read, the baseline in sentences."""

from __future__ import annotations

from helpers.course import Course
from helpers.exercises import ____
from helpers.measure.harness import Comparison, Measurement
from helpers.measure.recorder import QueryRecorder, Statement, record
from helpers.topics.endpoints import baseline_summary, prediction_beside, statements_reading


def recorded(*sql: str) -> QueryRecorder:
    return QueryRecorder([Statement(text, (), 0.0, False) for text in sql])


def test_statements_reading_a_table_are_those_naming_it_in_a_from() -> None:
    rec = recorded(
        "SELECT orders.id FROM orders ORDER BY orders.id DESC LIMIT 20",
        "SELECT customers.id, customers.name \nFROM customers\nWHERE customers.id = ?",
        "SELECT order_lines.id \nFROM order_lines \nWHERE ? = order_lines.order_id",
        "SELECT order_lines.id \nFROM order_lines \nWHERE ? = order_lines.order_id",
    )
    assert [statements_reading(rec, table) for table in ("orders", "customers", "order_lines", "products")] == [
        1, 1, 2, 0,
    ]  # fmt: skip


def test_the_order_list_reads_customers_once_each_and_lines_once_per_order(course: Course) -> None:
    app = course.app()  # lesson 01's baseline endpoints: lazy loads
    try:
        with record(app.extensions["engine"]) as rec:
            orders = app.test_client().get("/orders?page=1&per_page=5").get_json()
    finally:
        app.extensions["engine"].dispose()
    assert statements_reading(rec, "order_lines") == 5 == len(orders["orders"])
    assert rec.count == 1 + statements_reading(rec, "customers") + 5


BASELINE = Comparison(
    "01",
    "sqlite",
    "tiny",
    [
        Measurement("customer page", [0.004], 12, None),
        Measurement("order list", [0.002], 41, None),
        Measurement("search", [0.009], 1, None),
    ],
)


def test_baseline_summary_says_each_endpoint_then_the_slowest_and_the_chattiest() -> None:
    baseline = BASELINE
    assert baseline_summary(baseline) == (
        "customer page: 4.0 ms median, 12 statements per request\n"
        "order list: 2.0 ms median, 41 statements per request\n"
        "search: 9.0 ms median, 1 statement per request\n"
        "Slowest endpoint: search. Most statements: order list (41 per request, on sqlite, size tiny)."
    )


def test_a_prediction_is_put_beside_the_statements_the_table_counted() -> None:
    measured = "the table counted 41 per request for 'order list', the most of the 3 endpoints."
    assert prediction_beside(("search", 3), BASELINE) == (
        f"You predicted 'search' would run the most, 3 statements per request (it ran 1); {measured}"
    )
    assert prediction_beside([" Order List", 1.0], BASELINE).startswith(
        "You predicted ' Order List' would run the most, 1 statement per request (it ran 41)"
    )
    assert prediction_beside(("the basket", 7), BASELINE).startswith(
        "You predicted 'the basket' would run the most, 7 statements per request;"
    )
    for blank in ((____, ____), ____, ("search", "many"), None, ("search", True)):
        assert (
            prediction_beside(blank, BASELINE)
            == f"No prediction (the cell still holds ____, or is not a pair of a name and a number); {measured}"
        )

"""The query panel's logic, without a browser: what it lists, what it marks, and what EXPLAIN writes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from helpers.course import Course
from helpers.errors import CourseError
from helpers.shop.models import Customer
from helpers.topics.panel import QueryPanel
from helpers.topics.profiling import TracedStatement


@pytest.fixture
def app(course: Course) -> Iterator[Flask]:
    app = course.app()
    yield app
    app.extensions["engine"].dispose()


def test_a_request_lists_its_statements_and_marks_repeated_shapes(app: Flask) -> None:
    panel = QueryPanel(app.extensions["engine"])
    response = panel.request(app.test_client(), "/orders?page=1&per_page=4")
    assert response.status_code == 200
    assert panel.trace.count == int(response.headers["X-Statements"]) == len(panel.rows) == 9
    assert "GET /orders?page=1&amp;per_page=4 → 200" in panel.summary.value
    assert "<b>9</b> statements" in panel.summary.value and "<b>2</b> repeated shapes" in panel.summary.value
    assert panel.shapes.value.count("4×") == 2 and "helpers/shop/baseline.py:" in panel.shapes.value
    repeated = [row for row in panel.rows if "course-query-repeated" in row.widget._dom_classes]
    assert len(repeated) == 8  # every lazy load; the page query is not repeated
    assert "course-query-repeated" not in panel.rows[0].widget._dom_classes
    assert "shape ×4" in panel.rows[1].info.value and "helpers/shop/baseline.py:" in panel.rows[1].info.value
    assert "parameters:" in panel.rows[1].sql.value
    assert repr(panel) == "QueryPanel('GET /orders?page=1&per_page=4 → 200', 9 statements)"


def test_stable_classes_and_descriptions_for_browser_tests(app: Flask) -> None:
    panel = QueryPanel(app.extensions["engine"])
    panel.request(app.test_client(), "/customers/1")
    assert "course-query-panel" in panel.widget._dom_classes
    for row in panel.rows:
        assert "course-query-row" in row.widget._dom_classes
        assert row.button.description == "EXPLAIN" and "course-explain-button" in row.button._dom_classes
        assert "course-explain-output" in row.output._dom_classes
        assert row.output.value == ""  # nothing until clicked


def test_clicking_explain_shows_the_plan_under_the_statement(app: Flask, course: Course) -> None:
    panel = QueryPanel(app.extensions["engine"])
    panel.request(app.test_client(), "/orders?page=1&per_page=3")
    page, lazy = panel.rows[0], panel.rows[1]
    page.button.click()  # what a click in the browser calls
    lazy.explain()
    assert not page.button.disabled
    if course.backend == "postgresql":
        assert "EXPLAIN ANALYZE of statement #1" in page.output.value
        assert "Seq Scan on orders" in page.output.value and "actual time" in page.output.value
        assert "Index Scan using customers_pkey" in lazy.output.value
    else:
        assert "EXPLAIN of statement #1 (sqlite)" in page.output.value
        assert "SCAN orders" in page.output.value and "TEMP B-TREE" in page.output.value
        assert "SEARCH customers USING INTEGER PRIMARY KEY" in lazy.output.value
    assert panel.rows[2].output.value == ""  # other rows untouched


def test_capture_a_block_and_limit_the_rows(course: Course) -> None:
    panel = QueryPanel(course.engine, max_rows=3, title="Mine")
    with Session(course.engine) as session, panel.capture("five lookups") as recorded:
        for customer_id in range(1, 6):
            session.execute(select(Customer.name).where(Customer.id == customer_id)).all()
    assert recorded.count == 5 and len(panel.rows) == 3
    assert panel.list.children[-1].value.startswith("<i>… and 2 more statements")
    assert "<b>Mine</b> · five lookups" in panel.summary.value
    assert panel.rows[0].statement.origin is not None
    assert panel.rows[0].statement.origin.filename == __file__  # the line in this test


def test_statements_without_a_plan_and_failing_explains(course: Course) -> None:
    panel = QueryPanel(course.engine)
    other = "SHOW TIMEZONE" if course.backend == "postgresql" else "PRAGMA user_version"
    with course.engine.connect() as conn, panel.capture():
        conn.execute(text(other))
    [row] = panel.rows
    assert row.button.disabled and "only" in row.button.tooltip
    row.explain()
    assert "EXPLAIN shows plans of queries and data changes" in row.output.value
    broken = TracedStatement("SELECT * FROM no_such_table", (), 0.001, False)
    panel.show(_trace_of(broken), "by hand")
    panel.rows[0].button.click()
    assert "EXPLAIN failed:" in panel.rows[0].output.value and "no_such_table" in panel.rows[0].output.value


class FakeEvents:
    """IPython's shell.events: callbacks by event name."""

    def __init__(self) -> None:
        self.callbacks: dict[str, list[Callable[..., Any]]] = {"pre_run_cell": [], "post_run_cell": []}

    def register(self, name: str, callback: Callable[..., Any]) -> None:
        self.callbacks[name].append(callback)

    def unregister(self, name: str, callback: Callable[..., Any]) -> None:
        self.callbacks[name].remove(callback)

    def cell(self, code: Callable[[], Any]) -> None:
        for callback in list(self.callbacks["pre_run_cell"]):
            callback(None)
        code()
        for callback in list(self.callbacks["post_run_cell"]):
            callback(None)


class FakeShell:
    def __init__(self) -> None:
        self.events = FakeEvents()


def test_watch_follows_cells_and_only_one_panel_watches(course: Course) -> None:
    shell = FakeShell()
    first, second = QueryPanel(course.engine), QueryPanel(course.engine)

    def query(n: int) -> Callable[[], Any]:
        def run() -> None:
            with course.engine.connect() as conn:
                for i in range(n):
                    conn.execute(text(f"SELECT {i}"))

        return run

    first.watch(shell)
    shell.events.cell(query(2))
    assert first.label == "the last cell" and first.trace.count == 2
    shell.events.cell(lambda: None)  # a cell without statements leaves the last one on show
    assert first.trace.count == 2
    second.watch(shell)  # Run All again: the new panel takes over
    assert len(shell.events.callbacks["pre_run_cell"]) == 1
    shell.events.cell(query(3))
    assert (first.trace.count, second.trace.count) == (2, 3)
    second.unwatch()
    assert shell.events.callbacks == {"pre_run_cell": [], "post_run_cell": []}
    shell.events.cell(query(1))
    assert second.trace.count == 3


def test_watch_needs_a_notebook(course: Course) -> None:
    with pytest.raises(CourseError, match="use it in Jupyter"):
        QueryPanel(course.engine).watch()


def _trace_of(*statements: TracedStatement) -> Any:
    from helpers.topics.profiling import Trace

    recorded = Trace()
    recorded.statements.extend(statements)
    return recorded

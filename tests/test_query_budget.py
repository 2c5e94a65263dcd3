"""helpers/topics/query_budget.py: the statement budget a learner copies into their own tests."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

import helpers.topics.query_budget as query_budget_module
from helpers.course import Course
from helpers.shop.models import Order
from helpers.topics.query_budget import (
    QueryBudgetExceeded,
    assert_max_queries,
    compact_sql,
    query_budget,  # noqa: F401 (the fixture, imported as a conftest.py would)
    statement_shape,
)


def test_within_the_budget_passes_and_counts(course: Course) -> None:
    with Session(course.engine) as session, assert_max_queries(2) as budget:
        session.execute(select(Order.id).limit(1)).all()
        session.execute(select(Order.id).limit(2)).all()
    assert budget.count == 2


def test_over_the_budget_lists_repeated_shapes_with_their_line(course: Course) -> None:
    with Session(course.engine) as session:
        # Four orders of four different customers: four lazy loads.
        firsts = select(func.min(Order.id)).group_by(Order.customer_id).order_by(func.min(Order.id)).limit(4)
        orders = session.scalars(select(Order).where(Order.id.in_(firsts)).order_by(Order.id)).all()
        with pytest.raises(QueryBudgetExceeded) as failure, assert_max_queries(2):
            names = [order.customer.name for order in orders]
    assert len(names) == 4
    message = str(failure.value)
    first, *rest = message.splitlines()
    assert first == "4 statements ran, the budget is 2."
    assert "Repeated statement shapes" in message
    repeated = next(line for line in rest if "×" in line)
    assert "FROM customers WHERE customers.id = ?" in repeated
    assert f"test_query_budget.py:{_line_of('names = [order.customer.name')}" in repeated
    assert isinstance(failure.value, AssertionError)  # pytest shows it as a failed assertion


def test_a_long_report_is_cut_after_ten_statements(course: Course) -> None:
    with course.engine.connect() as conn, pytest.raises(QueryBudgetExceeded) as failure, assert_max_queries(0):
        for i in range(12):
            conn.execute(text(f"SELECT {i}"))
    message = str(failure.value)
    assert "12 statements ran, the budget is 0." in message and "… and 2 more" in message
    assert "12 × SELECT ?" in message  # literals are blanked out of shapes


def test_an_engine_can_be_singled_out(course: Course, tmp_path: Path) -> None:
    other = create_engine(f"sqlite:///{tmp_path / 'other.sqlite'}")
    try:
        with assert_max_queries(1, engine=course.engine) as budget:
            with other.connect() as conn:
                conn.execute(text("SELECT 1"))
                conn.execute(text("SELECT 2"))
            with course.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        assert budget.count == 1
    finally:
        other.dispose()


def test_listeners_are_removed_even_when_the_block_fails(course: Course) -> None:
    with pytest.raises(ZeroDivisionError), assert_max_queries(0):
        1 / 0  # noqa: B018
    with course.engine.connect() as conn, assert_max_queries(1) as budget:
        conn.execute(text("SELECT 1"))
    assert budget.count == 1  # only the second block's listener counted


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_a_budget_is_a_whole_number(bad: object) -> None:
    with pytest.raises(ValueError, match="the budget is a number of statements"), assert_max_queries(bad):  # type: ignore[arg-type]
        pass


def test_the_fixture_hands_out_the_context_manager(request: pytest.FixtureRequest, course: Course) -> None:
    budget = request.getfixturevalue("query_budget")
    assert budget is assert_max_queries
    with course.engine.connect() as conn, pytest.raises(QueryBudgetExceeded), budget(0):
        conn.execute(text("SELECT 1"))


def test_shapes_ignore_values_and_in_lists() -> None:
    assert statement_shape("SELECT * FROM t WHERE id IN (1, 2, 3) AND name = 'x'") == statement_shape(
        "SELECT * FROM t\n WHERE id IN (?, ?) AND name = 'yy'"
    )
    assert statement_shape("WHERE a = %(a_1)s::INTEGER") == "WHERE a = ?"


def test_compact_sql_keeps_from_and_where() -> None:
    columns = ", ".join(f"customers.column_{i}" for i in range(20))
    assert compact_sql(f"SELECT {columns}\nFROM customers WHERE customers.id = ?") == (
        "SELECT customers.column_0, … FROM customers WHERE customers.id = ?"
    )
    assert compact_sql("SELECT 1") == "SELECT 1"
    assert len(compact_sql("UPDATE t SET " + "x = 1, " * 50, width=40)) == 40


def test_the_module_is_self_contained() -> None:
    """A learner copies one file: it may import SQLAlchemy, pytest and the standard library, nothing else."""
    tree = ast.parse(Path(query_budget_module.__file__).read_text())
    imported = {
        (node.module or "").split(".")[0] if isinstance(node, ast.ImportFrom) else alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not any(isinstance(n, ast.ImportFrom) and n.level for n in ast.walk(tree))  # no relative imports
    assert imported <= {"__future__", "re", "sys", "sysconfig", "collections", "contextlib", "dataclasses",
                        "pathlib", "types", "typing", "sqlalchemy", "pytest"}  # fmt: skip


def _line_of(fragment: str) -> int:
    lines = Path(__file__).read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if fragment in line)

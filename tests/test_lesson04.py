"""Lesson 04 · Indexes, the fundamentals: plans before and after, on private copies (the shared dataset never
changes), and its three exercises proven on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Index, Select, func, select, text
from sqlalchemy.exc import IntegrityError

from helpers.course import Course
from helpers.data import content_fingerprint, copy_exists
from helpers.exercises.lesson04 import (
    Q1,
    Q2,
    Q3,
    exercises,
    foreign_key_index,
    lookup_customers,
    pending_queue,
    plan_queries,
    plans_read,
)
from helpers.measure.plans import analyze
from helpers.shop.models import Customer, Order, OrderLine
from helpers.topics import indexing
from tests.cells import notebook_code_cells
from tests.proving import prove

NOTEBOOK = "04_index_fundamentals.ipynb"


@pytest.fixture
def lab(course: Course) -> Iterator[Course]:
    with course.scratch_copy("test04") as copy:
        yield copy


def ddl(lab: Course, *statements: str) -> None:
    """The lesson's DDL on a copy, then fresh statistics for the planner."""
    indexing.ddl(lab, *statements)
    analyze(lab.engine)


def busiest_customer(course: Course) -> int:
    with course.session() as s:
        return int(
            s.scalar(select(Order.customer_id).group_by(Order.customer_id).order_by(func.count().desc()).limit(1))
        )


def revenue(status: str):  # the lesson's report on the low-selectivity column
    return select(func.count(), func.sum(Order.total)).where(Order.status == status)


def test_scan_before_the_index_search_after(lab: Course) -> None:
    query = select(Order).where(Order.customer_id == 42)
    lines = select(OrderLine).where(OrderLine.order_id == 42)
    assert lab.explain(query).scans("orders") and not lab.explain(query).uses_index()
    assert lab.explain(lines).scans("order_lines")
    ddl(
        lab,
        "CREATE INDEX ix_orders_customer_id ON orders (customer_id)",
        "CREATE INDEX ix_order_lines_order_id ON order_lines (order_id)",
    )
    after = lab.explain(query)
    assert after.uses_index("ix_orders_customer_id") and after.searches("customer_id")
    assert not after.scans("orders")
    assert lab.explain(lines).uses_index("ix_order_lines_order_id") and not lab.explain(lines).scans("order_lines")


def test_explain_analyze_reports_what_ran(lab: Course) -> None:
    plan = lab.explain(select(Order).where(Order.customer_id == 42), analyze=True)
    assert plan.scans("orders")
    if lab.backend == "postgresql":  # the scan read every order and threw most of them away
        assert "actual rows" in plan.text and "Rows Removed by Filter" in plan.text


def test_compare_counts_statements_on_both_databases(course: Course, lab: Course) -> None:
    def lookups(engine) -> list[tuple]:
        with engine.connect() as conn:
            query = text("SELECT id, total FROM orders WHERE customer_id = :c ORDER BY id")
            return [tuple(r) for c in range(1, 6) for r in conn.execute(query, {"c": c})]

    ddl(lab, "CREATE INDEX ix_orders_customer_id ON orders (customer_id)")
    cmp = course.compare(
        {"scan": lambda: lookups(course.engine), "index": lambda: lookups(lab.engine)},
        engine=[course.engine, lab.engine],
        repeat=2,
        store=False,
    )
    assert cmp["scan"].statements == cmp["index"].statements == 5
    assert cmp.backend == course.backend and cmp.size == "tiny"


def test_unique_email_index_is_used_and_enforced(lab: Course) -> None:
    ddl(lab, "CREATE UNIQUE INDEX ix_customers_email ON customers (email)")
    assert lab.explain(select(Customer.id).where(Customer.email == "x@example.com")).uses_index(
        "ix_customers_email"
    )
    with lab.engine.connect() as conn, pytest.raises(IntegrityError):
        email = conn.execute(select(Customer.email).where(Customer.id == 1)).scalar_one()
        conn.execute(
            text(
                "INSERT INTO customers (name, email, city, address, notes, created_at) "
                "VALUES ('Copy', :email, 'Oslo', '-', '-', '2025-01-01 00:00:00')"
            ),
            {"email": email},
        )


def _latest_orders_of_the_busiest(lab: Course, *columns: Any) -> Select[*tuple[Any, ...]]:
    """The busiest customer's 10 latest orders: a filter, an order and a limit for an index to serve."""
    return (
        select(*columns)
        .where(Order.customer_id == busiest_customer(lab))
        .order_by(Order.created_at.desc())
        .limit(10)
    )


def test_composite_index_serves_filter_order_and_limit(lab: Course) -> None:
    query = _latest_orders_of_the_busiest(lab, Order.id, Order.created_at)
    ddl(lab, "CREATE INDEX ix_orders_customer_id ON orders (customer_id)")
    single = lab.explain(query)
    assert single.uses_index("ix_orders_customer_id") and single.temp_sort()
    ddl(lab, "CREATE INDEX ix_orders_customer_created ON orders (customer_id, created_at)")
    composite = lab.explain(query)
    assert composite.uses_index("ix_orders_customer_created") and not composite.temp_sort()


def test_covering_index_avoids_the_table(lab: Course) -> None:
    query = _latest_orders_of_the_busiest(lab, Order.created_at, Order.total)
    ddl(lab, "CREATE INDEX ix_orders_cov ON orders (customer_id, created_at, total)")
    if lab.backend == "postgresql":
        with lab.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE orders"))
    plan = lab.explain(query)
    assert plan.covering() and plan.uses_index("ix_orders_cov") and not plan.scans("orders")
    assert not plan.temp_sort()


def test_low_selectivity_column(lab: Course) -> None:
    ddl(lab, "CREATE INDEX ix_orders_status ON orders (status)")
    common, rare = lab.explain(revenue("delivered")), lab.explain(revenue("cancelled"))
    if lab.backend == "postgresql":
        # The planner knows the value distribution: it scans for the common value, uses the index for the rare one.
        assert common.scans("orders") and not common.uses_index()
        assert rare.uses_index("ix_orders_status")
    else:
        # SQLite (without STAT4) knows only rows per value on average, and takes the index for both.
        assert common.uses_index("ix_orders_status") and rare.uses_index("ix_orders_status")
        with lab.engine.connect() as conn:
            stat = conn.execute(text("SELECT stat FROM sqlite_stat1 WHERE idx = 'ix_orders_status'")).scalar_one()
        rows, per_value = map(int, stat.split())
        assert rows // per_value == 5  # all the planner knows: five values, on average


def test_lessons_operations_leave_the_shared_dataset_unchanged(course: Course) -> None:
    """What the notebook does to its copy, done to a copy here: the shared dataset's fingerprint stays."""
    before = content_fingerprint(course.engine)
    with course.scratch_copy("test04-fingerprint") as copy:
        ddl(
            copy,
            "CREATE INDEX ix_orders_customer_id ON orders (customer_id)",
            "CREATE UNIQUE INDEX ix_customers_email ON customers (email)",
            "CREATE INDEX ix_orders_status ON orders (status)",
            "CREATE TABLE orders_write_test AS SELECT * FROM orders WHERE 1 = 0",
            "CREATE INDEX ix_wt_customer ON orders_write_test (customer_id)",
            "CREATE TABLE orders_100 AS SELECT id, customer_id, total FROM orders WHERE id <= 100",
        )
        with copy.engine.connect() as conn:
            transaction = conn.begin()
            conn.execute(text("INSERT INTO orders_write_test SELECT * FROM orders ORDER BY id LIMIT 50"))
            transaction.rollback()
        assert content_fingerprint(copy.engine) != before  # the copy did change (its indexes)
    assert not copy_exists(copy.url)  # and is gone
    assert content_fingerprint(course.engine) == before


def test_the_starters_are_the_notebooks_cells() -> None:
    cells = notebook_code_cells(NOTEBOOK)
    assert all(question.starter in cells for question in (Q1, Q2, Q3))


def test_exercises_binds_the_questions_and_their_queries(course: Course, lab: Course) -> None:
    ex = exercises(course, lab)
    assert (ex.q1.question, ex.q2.question, ex.q3.question) == (Q1, Q2, Q3)
    assert ex.q1.course is ex.q3.course is course and ex.q2.course is lab  # q2 reads the lesson's copy
    assert sorted(ex.plan_queries) == ["a", "b", "c", "d"]
    with course.session() as s:
        assert len(s.execute(ex.queue_query).all()) == 20
        assert all(s.execute(query).all() for query in ex.plan_queries.values())


def test_q1_looks_up_two_customers_of_different_sizes(course: Course) -> None:
    typical, busy = lookup_customers(course)
    with course.session() as s:
        count = {c: s.scalar(select(func.count()).where(Order.customer_id == c)) for c in (typical, busy)}
    assert typical != busy and 0 < count[typical] < count[busy]


def test_q1_is_proven(course: Course) -> None:
    table = Order.__table__
    written_from_the_model = Index("ix_t04_orders_customer", Order.customer_id)
    typical, _ = lookup_customers(course)
    prove(
        Q1.bind(course).check,
        right=[
            foreign_key_index(),
            "create index orders_by_customer on orders(customer_id, created_at)",  # a composite starting with it
            written_from_the_model,
        ],
        wrong=[
            ("CREATE INDEX ix_wrong_order ON orders (created_at, customer_id)", "still reads every row"),
            (
                f"CREATE INDEX ix_one ON orders (customer_id) WHERE customer_id = {typical}",  # made for one input
                "holds only the rows its WHERE keeps",
            ),
            ("CREATE UNIQUE INDEX ix_unique ON orders (customer_id)", "the database refused it"),
            ("CREATE INDEX ix_lines ON order_lines (order_id)", "still reads every row"),
            (42, "CREATE INDEX statement"),
        ],
    )
    assert written_from_the_model not in table.indexes  # compiled, then detached from the course's model


@pytest.fixture(scope="module")
def indexed(course: Course) -> Iterator[Course]:
    """A copy with the indexes the lesson has on orders when q2 is asked."""
    with course.scratch_copy("test04-plans") as copy:
        ddl(
            copy,
            "CREATE INDEX ix_orders_customer_id ON orders (customer_id)",
            "CREATE INDEX ix_orders_customer_id_created_at ON orders (customer_id, created_at)",
            "CREATE INDEX ix_orders_customer_created_total ON orders (customer_id, created_at, total)",
            "CREATE INDEX ix_orders_status ON orders (status)",
        )
        yield copy


def test_q2_is_proven(indexed: Course) -> None:
    read = plans_read(indexed)
    assert read["b"] == "ix_orders_customer_created_total" and read["c"] == "ix_orders_status"
    flipped_d = "ix_orders_status" if read["d"] is None else None
    prove(
        Q2.bind(indexed).check,
        right=[read, [name.upper() if name else "scan" for name in read.values()]],
        wrong=[
            ({label: "ix_orders_status" for label in read}, "query a: its plan does not read ix_orders_status"),
            ({**read, "d": flipped_d}, "query d: its plan does"),  # an index where it scans, or the reverse
            ({**read, "b": "ix_orders_total"}, "there is no index called 'ix_orders_total'"),
            ({"a": read["a"]}, "b, c, d missing"),
            ("ix_orders_status", "answer with a dict"),
        ],
    )


def test_q2_reads_the_plans_of_the_copy_it_is_bound_to(indexed: Course) -> None:
    """Each query's plan names the index q2 expects, read on the copy (no answer is written in the module)."""
    for label, query in plan_queries(indexed).items():
        assert (indexing.indexes_used(indexed.explain(query)) or [None])[0] == plans_read(indexed)[label]


def test_q3_is_proven(course: Course) -> None:
    prove(
        Q3.bind(course).check,
        right=[
            pending_queue(),
            "create index pending_queue on orders (status, created_at, id) where status = 'pending'",
        ],
        wrong=[
            ("CREATE INDEX ix_all ON orders (status, created_at, id)", "holds every order"),
            ("CREATE INDEX ix_pending_total ON orders (total) WHERE status = 'pending'", "is on (total)"),
            ("CREATE INDEX ix_pending_at ON orders (created_at) WHERE status = 'pending'", "is on (created_at)"),
            ("CREATE INDEX ix_paid ON orders (created_at, id) WHERE status = 'paid'", "does not use your index"),
        ],
    )

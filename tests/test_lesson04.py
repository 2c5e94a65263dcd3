"""Lesson 04 · Indexing: plans before and after, on private copies; the shared dataset never changes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Index, func, select, text
from sqlalchemy.exc import IntegrityError

from helpers.course import Course
from helpers.data import content_fingerprint, drop_copy
from helpers.exercises.lesson04 import exercises, newest_orders_of_customer, reviews_of_product
from helpers.recorder import analyze
from helpers.shop.models import Customer, Order, OrderLine, Review


@pytest.fixture
def lab(course: Course) -> Iterator[Course]:
    copy = course.private_copy("test04")
    yield copy
    copy.engine.dispose()
    drop_copy(copy.url)


def ddl(course: Course, *statements: str) -> None:
    with course.engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
    analyze(course.engine)


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


def test_composite_index_serves_filter_order_and_limit(lab: Course) -> None:
    query = (
        select(Order.id, Order.created_at)
        .where(Order.customer_id == busiest_customer(lab))
        .order_by(Order.created_at.desc())
        .limit(10)
    )
    ddl(lab, "CREATE INDEX ix_orders_customer_id ON orders (customer_id)")
    single = lab.explain(query)
    assert single.uses_index("ix_orders_customer_id") and single.temp_sort()
    ddl(lab, "CREATE INDEX ix_orders_customer_created ON orders (customer_id, created_at)")
    composite = lab.explain(query)
    assert composite.uses_index("ix_orders_customer_created") and not composite.temp_sort()


def test_covering_index_avoids_the_table(lab: Course) -> None:
    query = (
        select(Order.created_at, Order.total)
        .where(Order.customer_id == busiest_customer(lab))
        .order_by(Order.created_at.desc())
        .limit(10)
    )
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
    copy = course.private_copy("test04-fingerprint")
    try:
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
    finally:
        copy.engine.dispose()
        drop_copy(copy.url)
    assert content_fingerprint(course.engine) == before


def test_q1_passes_the_reference_and_fails_the_wrong_column(course: Course) -> None:
    ex = exercises(course)
    assert ex.q1.check(reviews_of_product())
    assert not ex.q1.check("CREATE INDEX ix_reviews_customer ON reviews (customer_id)")
    assert not ex.q1.check("CREATE INDEX oops ON reviews (no_such_column)")
    assert not ex.q1.check(42)


def test_q1_accepts_an_index_object(course: Course) -> None:
    ex = exercises(course)
    table = Review.__table__
    right = Index("ix_t04_reviews_product", Review.product_id)
    wrong = Index("ix_t04_reviews_rating", Review.rating, Review.product_id)  # the filter column second
    try:
        assert ex.q1.check(right)
        assert not ex.q1.check(wrong)
    finally:  # an Index built from model columns attaches itself to the model's table: detach it again
        table.indexes.discard(right)
        table.indexes.discard(wrong)
    assert not any(ix.name.startswith("ix_t04") for ix in table.indexes)


def test_q2_passes_the_reference_and_fails_the_single_column_index(course: Course) -> None:
    ex = exercises(course)
    assert ex.q2.check(newest_orders_of_customer())
    assert not ex.q2.check("CREATE INDEX ix_orders_customer_id ON orders (customer_id)")
    assert not ex.q2.check("CREATE INDEX ix_orders_customer_total ON orders (customer_id, total)")
    assert not ex.q2.check("CREATE INDEX ix_orders_created_customer ON orders (created_at, customer_id)")

"""Lesson 04 · Indexing: plans before and after, on private copies; the shared dataset never changes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select, text

from helpers.course import Course
from helpers.data import content_fingerprint, drop_copy
from helpers.exercises.lesson04 import exercises, newest_orders_of_customer, reviews_of_product
from helpers.recorder import analyze
from helpers.shop.models import Customer, Order


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


def test_scan_before_the_index_search_after(lab: Course) -> None:
    query = select(Order).where(Order.customer_id == 42)
    before = lab.explain(query)
    assert before.scans("orders") and not before.uses_index()
    ddl(lab, "CREATE INDEX ix_orders_customer_id ON orders (customer_id)")
    after = lab.explain(query)
    assert after.uses_index("ix_orders_customer_id") and not after.scans("orders")


def test_unique_email_index_is_used_and_enforced(lab: Course) -> None:
    from sqlalchemy.exc import IntegrityError

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
    assert plan.covering() and not plan.scans("orders")


def test_low_selectivity_column(lab: Course) -> None:
    ddl(lab, "CREATE INDEX ix_orders_status ON orders (status)")
    common = lab.explain(select(Order.id).where(Order.status == "delivered"))
    rare = lab.explain(select(Order.id).where(Order.status == "cancelled"))
    if lab.backend == "postgresql":
        # The planner knows the value distribution: it scans for the common value, uses the index for the rare one.
        assert common.scans("orders") and not common.uses_index()
        assert rare.uses_index("ix_orders_status")
    else:
        # SQLite (without STAT4) knows only rows per value on average, and takes the index for both.
        assert common.uses_index("ix_orders_status") and rare.uses_index("ix_orders_status")


def test_indexes_on_a_copy_leave_the_shared_dataset_unchanged(course: Course) -> None:
    before = content_fingerprint(course.engine)
    copy = course.private_copy("test04-fingerprint")
    ddl(
        copy,
        "CREATE INDEX ix_a ON orders (customer_id)",
        "CREATE TABLE scratch AS SELECT * FROM orders WHERE 1 = 0",
    )
    copy.engine.dispose()
    drop_copy(copy.url)
    assert content_fingerprint(course.engine) == before


def test_q1_passes_the_reference_and_fails_the_wrong_column(course: Course) -> None:
    ex = exercises(course)
    assert ex.q1.check(reviews_of_product())
    assert not ex.q1.check("CREATE INDEX ix_reviews_customer ON reviews (customer_id)")
    assert not ex.q1.check("CREATE INDEX oops ON reviews (no_such_column)")
    assert not ex.q1.check(42)


def test_q2_passes_the_reference_and_fails_the_single_column_index(course: Course) -> None:
    ex = exercises(course)
    assert ex.q2.check(newest_orders_of_customer())
    assert not ex.q2.check("CREATE INDEX ix_orders_customer_id ON orders (customer_id)")
    assert not ex.q2.check("CREATE INDEX ix_orders_customer_total ON orders (customer_id, total)")

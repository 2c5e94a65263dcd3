"""The recorder counts what reaches the driver; EXPLAIN is read loosely on both backends."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from helpers.course import Course
from helpers.measure.plans import Plan
from helpers.measure.recorder import record, statement_shape
from helpers.shop.models import Customer, Order


def test_counts_one_statement_per_lazy_load(course: Course) -> None:
    with Session(course.engine) as session, record(course.engine) as rec:
        orders = session.scalars(select(Order).order_by(Order.id).limit(10)).all()
        distinct = {o.customer_id for o in orders}
        names = [o.customer.name for o in orders]
    assert len(names) == 10
    assert rec.count == 1 + len(distinct)
    assert [n for shape, n in rec.shapes().items() if "FROM customers" in shape] == [len(distinct)]
    assert all(s.duration_s >= 0 for s in rec.statements)
    assert len(rec.frame()) == rec.count


def test_recording_stops_after_the_block(course: Course) -> None:
    with record(course.engine) as rec, course.engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    with course.engine.connect() as conn:
        conn.exec_driver_sql("SELECT 2")
    assert rec.count == 1


def test_shapes_ignore_values() -> None:
    a = statement_shape("SELECT * FROM t WHERE id = 5 AND name = 'x'")
    b = statement_shape("SELECT *\n  FROM t WHERE id = 77 AND name = 'y''s'")
    assert a == b
    assert statement_shape("SELECT 1 FROM t WHERE id IN (?, ?, ?)") == statement_shape(
        "SELECT 1 FROM t WHERE id IN (%(p1)s, %(p2)s)"
    )


def test_explain_scan_and_primary_key(course: Course) -> None:
    scan = course.explain(select(Customer).where(Customer.email == "nobody@example.com"))
    assert scan.scans("customers") and not scan.uses_index()
    by_id = course.explain(select(Customer).where(Customer.id == 1))
    assert not by_id.scans("customers")


def test_plan_reads_both_backends() -> None:
    sqlite = Plan(
        "sqlite", ("SEARCH orders USING INDEX ix_orders_customer (customer_id=?)", "USE TEMP B-TREE FOR ORDER BY")
    )
    assert sqlite.uses_index("ix_orders_customer") and sqlite.temp_sort() and not sqlite.scans("orders")
    old_sqlite = Plan("sqlite", ("SCAN TABLE orders",))
    assert old_sqlite.scans("orders")
    covering = Plan("sqlite", ("SCAN orders USING COVERING INDEX ix_cov",))
    assert covering.covering() and not covering.scans("orders")
    pg = Plan(
        "postgresql", ("Limit", "  ->  Sort", "        ->  Seq Scan on orders", "              Filter: (x = 1)")
    )
    assert pg.scans("orders") and pg.temp_sort() and not pg.uses_index()
    pg_index = Plan("postgresql", ("Index Only Scan using ix_cov on orders",))
    assert pg_index.uses_index("ix_cov") and pg_index.covering() and not pg_index.scans("orders")
    bitmap = Plan("postgresql", ("Bitmap Heap Scan on orders", "  ->  Bitmap Index Scan on ix_orders_customer"))
    assert bitmap.uses_index("ix_orders_customer")


def test_plan_tells_a_search_from_an_index_read_in_order() -> None:
    search = Plan("sqlite", ("SEARCH orders USING INDEX ix (customer_id=?)",))
    in_order = Plan("sqlite", ("SCAN orders USING COVERING INDEX ix_created_customer",))
    assert search.searches("customer_id") and not in_order.searches("customer_id")
    pg = Plan(
        "postgresql",
        ("Limit", "  ->  Index Scan Backward using ix on orders", "        Index Cond: (customer_id = 5)"),
    )
    pg_filter = Plan("postgresql", ("Index Scan Backward using ix on orders", "  Filter: (customer_id = 5)"))
    assert pg.searches("customer_id") and not pg_filter.searches("customer_id")


def test_shape_of_a_postgresql_statement_keeps_its_column() -> None:
    assert statement_shape("SELECT * FROM customers WHERE customers.id = %(pk_1)s::INTEGER") == (
        "SELECT * FROM customers WHERE customers.id = ?"
    )

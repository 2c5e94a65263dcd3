"""Reads: projection (02), the N+1 and filtering in SQL (03), index lookups (04), keyset paging (05); floors."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, text, tuple_
from sqlalchemy.orm import Session, joinedload

from ..course import Course
from ..data import drop_copy
from ..shop.models import Customer, Order
from ..topics.floors import call_ladder
from .floors import raw_fetch
from .registry import Goal, Race, benchmark

__all__ = ["filter_in_sql", "index_lookup", "keyset_paging", "n_plus_one", "projection"]


@benchmark(lesson="02", repeat=21)
def projection(course: Course) -> Race:
    """5,000 customers as (id, name, email): whole entities vs select(columns) vs the raw driver."""
    n = min(5000, course.info.rows["customers"])
    columns = select(Customer.id, Customer.name, Customer.email).order_by(Customer.id).limit(n)

    def entities() -> list[tuple[int, str, str]]:
        with Session(course.engine) as s:
            return [(c.id, c.name, c.email) for c in s.scalars(select(Customer).order_by(Customer.id).limit(n))]

    def select_columns() -> list[Any]:
        with Session(course.engine) as s:
            return list(s.execute(columns).all())  # rows are tuples already, as lesson 02 returns them

    def select_columns_core() -> list[Any]:
        with Session(course.engine) as s:  # the same statement through Core, without the ORM's row handling
            return list(s.connection().execute(columns).all())

    raw, close = raw_fetch(course, "SELECT id, name, email FROM customers ORDER BY id LIMIT ?", (n,))
    return Race(
        {
            "whole entities": entities,
            "select(columns)": select_columns,
            "select(columns), session's connection": select_columns_core,
            "raw driver fetch (floor)": raw,
        },
        floor="raw driver fetch (floor)",
        goals=(Goal("select(columns)", 2.0),),
        cleanup=[close],
    )


@benchmark(lesson="03", repeat=21)
def n_plus_one(course: Course) -> Race:
    """500 newest orders with their customer's name: lazy vs joinedload vs join + columns vs the raw join."""
    n = min(500, course.info.rows["orders"])
    newest = select(Order).order_by(Order.id.desc()).limit(n)

    def lazy() -> list[tuple[int, str]]:
        with Session(course.engine) as s:
            return [(o.id, o.customer.name) for o in s.scalars(newest)]

    def joined() -> list[tuple[int, str]]:
        with Session(course.engine) as s:
            return [(o.id, o.customer.name) for o in s.scalars(newest.options(joinedload(Order.customer)))]

    def join_columns() -> list[Any]:
        with Session(course.engine) as s:
            q = select(Order.id, Customer.name).join(Order.customer).order_by(Order.id.desc()).limit(n)
            return list(s.execute(q).all())

    raw, close = raw_fetch(
        course,
        "SELECT orders.id, customers.name FROM orders JOIN customers ON customers.id = orders.customer_id "
        "ORDER BY orders.id DESC LIMIT ?",
        (n,),
    )

    def join_columns_core() -> list[Any]:
        q = select(Order.id, Customer.name).join(Order.customer).order_by(Order.id.desc()).limit(n)
        with Session(course.engine) as s:  # the same statement through Core, without the ORM's row handling
            return list(s.connection().execute(q).all())

    return Race(
        {
            "lazy (N+1)": lazy,
            "joinedload": joined,
            "join + columns": join_columns,
            "join + columns, session's connection": join_columns_core,
            "raw driver join (floor)": raw,
        },
        floor="raw driver join (floor)",
        goals=(Goal("join + columns", 2.0),),
        cleanup=[close],
    )


@benchmark(lesson="03", repeat=21)
def filter_in_sql(course: Course) -> Race:
    """The 10 largest delivered orders of a recent window: filtered in Python vs in SQL vs the raw driver."""
    with Session(course.engine) as s:
        latest = s.execute(select(Order.created_at).order_by(Order.id.desc()).limit(1)).scalar_one()
    days = max(1, min(30, round(30 * 200_000 / course.info.rows["orders"])))  # about 5,000 orders
    start = latest - timedelta(days=days)
    window = select(Order.id, Order.total, Order.status).where(Order.created_at >= start)

    def in_python() -> list[tuple[int, Any]]:
        with Session(course.engine) as s:
            rows = [r for r in s.execute(window) if r.status == "delivered"]
        rows.sort(key=lambda r: (-r.total, r.id))
        return [(r.id, r.total) for r in rows[:10]]

    def in_sql() -> list[Any]:
        with Session(course.engine) as s:
            q = (
                select(Order.id, Order.total)
                .where(Order.created_at >= start, Order.status == "delivered")
                .order_by(Order.total.desc(), Order.id)
                .limit(10)
            )
            return list(s.execute(q).all())

    raw, close = raw_fetch(
        course,
        "SELECT id, total FROM orders WHERE created_at >= ? AND status = 'delivered' "
        "ORDER BY total DESC, id LIMIT 10",
        (start if course.backend == "postgresql" else start.strftime("%Y-%m-%d %H:%M:%S.%f"),),
    )
    return Race(
        {"filter in Python": in_python, "filter in SQL": in_sql, "raw driver (floor)": raw},
        floor="raw driver (floor)",
        key=lambda rows: [(int(i), float(t)) for i, t in rows],  # the raw driver returns floats on SQLite
        cleanup=[close],
    )


@benchmark(lesson="04", repeat=15)
def index_lookup(course: Course) -> Race:
    """50 lookups of orders by customer id: no index vs an index (on copies) vs the raw driver on the index."""
    plain = course.private_copy("bench_plain")
    indexed = course.private_copy("bench_indexed")
    with indexed.engine.begin() as conn:
        conn.execute(text("CREATE INDEX ix_orders_customer_id ON orders (customer_id)"))
        conn.execute(text("ANALYZE"))
    ids = list(range(1, 51))
    query = text("SELECT id, total FROM orders WHERE customer_id = :cid ORDER BY id")

    def lookups(engine: Any) -> list[Any]:
        with engine.connect() as conn:
            return [tuple(r) for cid in ids for r in conn.execute(query, {"cid": cid})]

    raw_connection = indexed.engine.raw_connection()
    raw_sql = "SELECT id, total FROM orders WHERE customer_id = ? ORDER BY id"
    if course.backend == "postgresql":
        raw_sql = raw_sql.replace("?", "%s")

    def raw() -> list[Any]:
        cursor = raw_connection.cursor()
        try:
            rows = []
            for cid in ids:
                cursor.execute(raw_sql, (cid,))
                rows += [tuple(r) for r in cursor.fetchall()]
            return rows
        finally:
            cursor.close()
            raw_connection.rollback()  # the transaction ends, as in raw_fetch

    def remove() -> None:
        raw_connection.close()
        for copy in (plain, indexed):
            copy.engine.dispose()
            drop_copy(copy.url)

    return Race(
        {
            "no index (scan)": lambda: lookups(plain.engine),
            "index": lambda: lookups(indexed.engine),
            "raw driver on the index (floor)": raw,
        },
        floor="raw driver on the index (floor)",
        key=lambda rows: [(int(i), float(t)) for i, t in rows],
        cleanup=[remove],
    )


@benchmark(lesson="05", repeat=31)
def keyset_paging(course: Course) -> Race:
    """A deep page of 20 orders, newest first: OFFSET vs keyset (seek) vs the raw driver's seek, on an index."""
    per_page = 20
    page = max(2, min(10_000, course.info.rows["orders"] // per_page))  # the deepest page ?page= reaches
    copy = course.private_copy("bench_keyset")
    with copy.engine.begin() as conn:
        conn.execute(text("CREATE INDEX ix_orders_created_at_id ON orders (created_at, id)"))
        conn.execute(text("ANALYZE"))
    newest = select(Order.id, Order.created_at).order_by(Order.created_at.desc(), Order.id.desc()).limit(per_page)
    with Session(copy.engine) as s:
        cursor_id = s.execute(newest.offset((page - 1) * per_page - 1).limit(1)).one()[0]  # page-1's last order

    def offset() -> list[Any]:
        with Session(copy.engine) as s:
            return [tuple(r) for r in s.execute(newest.offset((page - 1) * per_page))]

    # The cursor's date is read inside the statement, as the course's order list does: a datetime sent back
    # from Python would reach SQLite as differently formatted text and compare wrongly.
    cursor_at_in_sql = select(Order.created_at).where(Order.id == cursor_id).scalar_subquery()

    def keyset() -> list[Any]:
        after = tuple_(Order.created_at, Order.id) < tuple_(cursor_at_in_sql, cursor_id)
        with Session(copy.engine) as s:
            return [tuple(r) for r in s.execute(newest.where(after))]

    # The same statement built once, through a Core connection, then the raw driver (its SQL as the ORM sends
    # it, on a connection from a minimal pool): what each layer adds to a 20-row seek.
    rungs, close = call_ladder(copy.engine, "keyset (same page)", keyset, floor="raw driver seek (floor)")

    def remove() -> None:
        close()
        copy.engine.dispose()
        drop_copy(copy.url)

    return Race(
        {f"OFFSET (page {page:,})": offset, **rungs},
        floor="raw driver seek (floor)",
        goals=(Goal("keyset (same page)", 3.0),),
        key=lambda rows: [int(r[0]) for r in rows],  # the same orders (SQLite's raw driver returns text dates)
        cleanup=[remove],
    )

"""Lesson 05's instruments (helpers.topics.endpoint_indexes): collations and what serves LIKE, including a
PostgreSQL database under a language's collation; timestamps as stored; the paging helpers and ties; statements."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, insert, select, text, tuple_

from helpers.course import Course
from helpers.db import make_engine
from helpers.measure.plans import Plan, analyze
from helpers.measure.recorder import Statement
from helpers.servers import drop_database
from helpers.shop.models import Customer, Order
from helpers.shop.queries import NEWEST_FIRST
from helpers.topics import endpoint_indexes as ei
from helpers.topics import indexing


@pytest.fixture
def lab(course: Course) -> Iterator[Course]:
    with course.scratch_copy("test-endpoint-indexes") as copy:
        yield copy


# ---------------------------------------------------------------------- collations and LIKE
def test_the_courses_databases_sort_text_byte_by_byte(course: Course) -> None:
    assert ei.sorts_by_bytes(course.engine)
    if course.backend == "sqlite":
        assert ei.collation(course.engine) == "BINARY"
        assert ei.like_note(course.engine).startswith("SQLite: LIKE ignores ASCII case")
    else:
        assert ei.collation(course.engine) == "C"  # the course's cluster: initdb --no-locale
        assert ei.like_note(course.engine).startswith("This database's collation is 'C': text sorts byte by byte")


def test_prefix_plans_show_what_serves_a_prefix_on_each_backend(lab: Course) -> None:
    indexing.ddl(lab, "CREATE INDEX ix_customers_name ON customers (name)")
    analyze(lab.engine)
    prefix = select(Customer.id).where(Customer.name.like("An%"))
    plans = ei.prefix_plans(lab, prefix)
    if lab.backend == "sqlite":
        assert not lab.explain(prefix).searches("name")  # LIKE ignores case, the BINARY index does not
        assert all(plan.searches("name") for plan in plans.values()) and len(plans) == 2
        assert not ei.explain_case_sensitive_like(lab.engine, select(Customer.id)).searches("name")
    else:
        assert plans["LIKE 'An%', index on name text_pattern_ops"].searches("name")
        assert not plans["ILIKE 'an%', index on name text_pattern_ops"].searches("name")
        assert lab.explain(prefix).uses_index("ix_customers_name")  # put back as it was
    assert indexing.secondary_indexes(lab.engine, "customers") == {"ix_customers_name"}


@pytest.fixture
def language_collation(course: Course) -> Iterator[Course]:
    """The customers of the tiny dataset in a PostgreSQL database whose collation is a language's (libc's
    C.utf8, which PostgreSQL does not treat as byte order): what a learner's own server usually has."""
    if course.backend != "postgresql":
        pytest.skip("a collation of PostgreSQL's")
    admin = course.url.set(database="postgres").render_as_string(hide_password=False)
    name = "test_language_collation"
    drop_database(name, server_url=admin)
    server = make_engine(admin, isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name} TEMPLATE template0 LC_COLLATE 'C.utf8' LC_CTYPE 'C.utf8'")
    server.dispose()
    url = course.url.set(database=name)
    engine = make_engine(url)
    Customer.__table__.create(engine)
    with course.engine.connect() as source, engine.begin() as target:
        rows = [row._asdict() for row in source.execute(select(Customer.__table__))]
        target.execute(insert(Customer), rows)
    try:
        yield Course("tests", course.settings, url, engine, course.info)
    finally:
        engine.dispose()
        drop_database(name, server_url=admin)


@pytest.mark.postgres
def test_under_a_languages_collation_only_the_pattern_operator_class_serves_a_prefix(
    language_collation: Course,
) -> None:
    lab = language_collation
    assert ei.collation(lab.engine) == "C.utf8" and not ei.sorts_by_bytes(lab.engine)
    assert "a language's sort order" in ei.like_note(lab.engine)
    indexing.ddl(
        lab,
        "CREATE INDEX ix_customers_name ON customers (name)",
        "CREATE INDEX ix_customers_lower_name ON customers (lower(name))",
    )
    analyze(lab.engine)
    prefix = select(Customer.id).where(Customer.name.like("An%"))
    lower_prefix = select(Customer.id).where(func.lower(Customer.name).like("an%"))
    assert not lab.explain(prefix).searches("name")  # what the lesson asserts when sorts_by_bytes is False
    assert not indexing.seeks(lab.explain(lower_prefix), "customers")
    assert ei.prefix_plans(lab, prefix)["LIKE 'An%', index on name text_pattern_ops"].searches("name")
    indexing.ddl(lab, "CREATE INDEX ix_lower_pattern ON customers (lower(name) text_pattern_ops)")
    analyze(lab.engine)
    assert indexing.seeks(lab.explain(lower_prefix), "customers")
    assert lab.explain(select(Customer.id).where(func.lower(Customer.name) == "ana silva")).uses_index()


def test_like_respects_case_once_asked(lab: Course) -> None:
    engine = make_engine(lab.url)
    try:
        if lab.backend == "sqlite":
            with engine.connect() as conn:
                assert conn.exec_driver_sql("SELECT 'An' LIKE 'an'").scalar() == 1
        assert ei.like_respects_case(engine)
        with engine.connect() as conn:  # every connection of the engine, not one
            assert not conn.execute(text("SELECT 'An' LIKE 'an'")).scalar()
    finally:
        engine.dispose()


# ---------------------------------------------------------------------- timestamps
def test_timestamps_are_stored_as_the_orm_writes_them(lab: Course) -> None:
    """The dataset writes created_at as SQLAlchemy's DateTime does on SQLite: a bound datetime finds its row."""
    newest = ei.row_before(lab, 2, 1)
    assert newest is not None
    stored = ei.stored_timestamp(lab, newest.id)
    if lab.backend == "sqlite":
        assert stored["stored as"] == "text" and stored["value"] == f"{newest.created_at:%Y-%m-%d %H:%M:%S}.000000"
    else:
        assert stored["stored as"] == "timestamp without time zone"
    with lab.session() as session:
        assert newest.id in session.scalars(select(Order.id).where(Order.created_at == newest.created_at)).all()
        after = session.scalars(
            select(Order.id)
            .where(tuple_(Order.created_at, Order.id) < tuple_(newest.created_at, newest.id))
            .order_by(*NEWEST_FIRST)
            .limit(1)
        ).all()
    assert after == ei.order_ids(lab, offset=1, limit=1)  # a cursor sent back from Python: the next order
    # The trap left is SQLite's: a timestamp typed without its fraction compares as other text.
    assert ei.literal_matches(lab, newest.id) == (0 if lab.backend == "sqlite" else 1)


# ---------------------------------------------------------------------- pages and ties
def test_keyset_from_the_cursor_is_the_offset_page(lab: Course) -> None:
    assert ei.cursor_before(lab, 1, 20) is None and ei.row_before(lab, 1, 20) is None
    cursor = ei.cursor_before(lab, 3, 20)
    assert cursor == ei.order_ids(lab, offset=39, limit=1)[0]
    row = ei.row_before(lab, 3, 20)
    assert row is not None and row.id == cursor
    listing = select(Order.id).order_by(*NEWEST_FIRST).limit(20)
    created_at = select(Order.created_at).where(Order.id == cursor).scalar_subquery()
    keyset = listing.where(tuple_(Order.created_at, Order.id) < tuple_(created_at, cursor))
    rows = indexing.reader(lab.engine, keyset)()
    assert [row.id for row in rows] == ei.order_ids(lab, offset=40, limit=20)


def test_ensure_ties_makes_neighbours_share_a_second_and_keeps_the_order(lab: Course) -> None:
    before = ei.order_ids(lab, offset=0, limit=30)
    pairs = ei.ensure_ties(lab)
    assert pairs == [(before[6], before[7]), (before[19], before[20])]
    assert ei.ensure_ties(lab) == pairs and ei.order_ids(lab, offset=0, limit=30) == before  # idempotent
    with lab.session() as session:
        for first, second in pairs:
            stamps = session.scalars(select(Order.created_at).where(Order.id.in_([first, second]))).all()
            assert len(set(stamps)) == 1


SQLITE = Plan("sqlite", ("SCAN orders USING INDEX ix_orders_created_at_id",))
POSTGRES = Plan(
    "postgresql",
    (
        "Limit (actual rows=20 loops=1)",
        "  ->  Index Scan Backward using ix_orders_created_at_id on orders (actual rows=1020 loops=1)",
        "        Index Cond: (ROW(created_at, id) < ROW($1, 42))",
    ),
)


def test_entries_read_are_postgresqls_to_tell() -> None:
    assert ei.index_entries_read(POSTGRES, "ix_orders_created_at_id") == 1020
    assert ei.index_entries_read(SQLITE, "ix_orders_created_at_id") is None


def statement(sql: str, params: object) -> Statement:
    return Statement(sql, params, 0.0, False)


def test_offsets_are_read_from_sql_and_parameters() -> None:
    assert ei.offsets(statement("SELECT 1 FROM t LIMIT ? OFFSET ?", (20, 40))) == [40]
    assert ei.offsets(
        statement("SELECT (SELECT 1 LIMIT ? OFFSET ?) FROM t WHERE a = ? LIMIT ?", (1, 0, 3, 4))
    ) == [0]
    postgres = statement("SELECT 1 FROM t LIMIT %(l)s::INTEGER OFFSET %(o)s::INTEGER", {"l": 2, "o": 7})
    assert ei.offsets(postgres) == [7]
    assert ei.offsets(statement("SELECT 1 FROM t LIMIT 5 OFFSET 10", ())) == [10]
    assert ei.offsets(statement("SELECT 1 FROM t LIMIT ? OFFSET (SELECT count(*) FROM t)", (5,))) == [None]
    assert ei.offsets(statement("SELECT 1 FROM t WHERE id < ? LIMIT ?", (5, 20))) == []


def test_statements_on_a_table() -> None:
    found = [statement("SELECT id FROM orders", ()), statement("SELECT id FROM orders_archive", ())]
    assert ei.statements_on([*found, statement("SELECT 1", ())], "orders") == found[:1]

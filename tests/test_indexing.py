"""Lesson 04's instruments (helpers.topics.indexing): plans read beyond `Plan`, the catalogs, the two sweeps, the
paging helpers and the recorded statements' OFFSETs, each pinned to what it reads or counts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select, text, tuple_

from helpers.course import Course
from helpers.data import copy_exists
from helpers.measure.harness import Measurement
from helpers.measure.plans import Plan, analyze
from helpers.measure.recorder import Statement
from helpers.shop.models import Customer, Order
from helpers.shop.queries import NEWEST_FIRST
from helpers.topics import indexing


@pytest.fixture(scope="module")
def lab(course: Course) -> Iterator[Course]:
    """One copy for the module's tests, each of which adds only what no other test minds."""
    with course.scratch_copy("test-indexing") as copy:
        yield copy
    assert not copy_exists(copy.url)


SQLITE = Plan("sqlite", ("SCAN orders USING INDEX ix_orders_created_at_id", "USE TEMP B-TREE FOR ORDER BY"))
SQLITE_SEEK = Plan(
    "sqlite", ("SEARCH customers USING COVERING INDEX ix_customers_city_name_id (city=?)", "SCAN customers")
)
POSTGRES = Plan(
    "postgresql",
    (
        "Limit (actual rows=20 loops=1)",
        "  ->  Index Scan Backward using ix_orders_created_at_id on orders (actual rows=1020 loops=1)",
        "        Index Cond: (ROW(created_at, id) < ROW($1, 42))",
    ),
)


def test_plans_read_on_one_line_and_for_the_line_that_reads_the_table() -> None:
    assert (
        indexing.plan_line(SQLITE)
        == "SCAN orders USING INDEX ix_orders_created_at_id / USE TEMP B-TREE FOR ORDER BY"
    )
    assert (
        indexing.key_line(POSTGRES)
        == "Index Scan Backward using ix_orders_created_at_id on orders (actual rows=1020 loops=1)"
    )
    assert indexing.key_line(Plan("postgresql", ("Result",))) == "Result"
    assert indexing.seek_line(SQLITE_SEEK, "city").startswith("SEARCH customers USING COVERING INDEX")
    assert indexing.seek_line(POSTGRES, "created_at") == (
        "Index Scan Backward using ix_orders_created_at_id on orders (actual rows=1020 loops=1), "
        "Index Cond: (ROW(created_at, id) < ROW($1, 42))"
    )
    assert indexing.seek_line(SQLITE, "city") == indexing.key_line(SQLITE)  # no seek: the line that reads


def test_seeks_sorts_and_the_indexes_a_plan_reads() -> None:
    assert indexing.seeks(SQLITE_SEEK, "customers") and not indexing.seeks(SQLITE, "orders")
    assert indexing.seeks(POSTGRES, "orders")
    assert indexing.full_sort(SQLITE) and not indexing.full_sort(POSTGRES)
    assert not indexing.full_sort(Plan("sqlite", ("USE TEMP B-TREE FOR RIGHT PART OF ORDER BY",)))
    assert indexing.full_sort(Plan("postgresql", ("Limit", "  ->  Sort", "        ->  Seq Scan on orders")))
    assert not indexing.full_sort(Plan("postgresql", ("Incremental Sort", "  ->  Index Scan using ix on t")))
    assert indexing.indexes_used(SQLITE) == ["ix_orders_created_at_id"]
    assert indexing.indexes_used(SQLITE_SEEK) == ["ix_customers_city_name_id"]
    assert indexing.indexes_used(POSTGRES) == ["ix_orders_created_at_id"]
    assert indexing.index_entries_read(POSTGRES, "ix_orders_created_at_id") == 1020
    assert indexing.index_entries_read(SQLITE, "ix_orders_created_at_id") is None
    table = indexing.seek_table({"seek": SQLITE_SEEK, "scan": SQLITE}, "city")
    assert list(table["seeks in the index"]) == [True, False] and table.loc["scan", "plan"].startswith("SCAN")


def statement(sql: str, params: object) -> Statement:
    return Statement(sql, params, 0.0, False)


def test_offsets_are_read_from_sql_and_parameters() -> None:
    assert indexing.offsets(statement("SELECT 1 FROM t LIMIT ? OFFSET ?", (20, 40))) == [40]
    assert indexing.offsets(
        statement("SELECT (SELECT 1 LIMIT ? OFFSET ?) FROM t WHERE a = ? LIMIT ?", (1, 0, 3, 4))
    ) == [0]
    postgres = statement("SELECT 1 FROM t LIMIT %(l)s::INTEGER OFFSET %(o)s::INTEGER", {"l": 2, "o": 7})
    assert indexing.offsets(postgres) == [7]
    assert indexing.offsets(statement("SELECT 1 FROM t LIMIT 5 OFFSET 10", ())) == [10]
    assert indexing.offsets(statement("SELECT 1 FROM t LIMIT ? OFFSET (SELECT count(*) FROM t)", (5,))) == [None]
    assert indexing.offsets(statement("SELECT 1 FROM t WHERE id < ? LIMIT ?", (5, 20))) == []


def test_statements_on_a_table() -> None:
    found = [statement("SELECT id FROM orders", ()), statement("SELECT id FROM orders_archive", ())]
    assert indexing.statements_on([*found, statement("SELECT 1", ())], "orders") == found[:1]


def test_ddl_and_the_catalogs(lab: Course) -> None:
    indexing.ddl(lab, "CREATE INDEX ix_t_lower_email ON customers (lower(email))")
    with lab.engine.connect() as conn:
        assert "ix_t_lower_email" in indexing.index_names(conn, "customers")  # expression indexes too
    assert "ix_t_lower_email ON" in indexing.index_definition(lab.engine, "ix_t_lower_email")
    assert indexing.index_definition(lab.engine, "ix_no_such_index") == ""
    if lab.backend == "sqlite":
        assert indexing.like_note(lab.engine).startswith("SQLite: LIKE ignores ASCII case")
        assert isinstance(indexing.has_stat4(lab.engine), bool)
    else:
        assert indexing.collation(lab.engine) == "C"  # the course's cluster: initdb --no-locale
        assert indexing.like_note(lab.engine).startswith("This database's collation is 'C' (the course's cluster")


def test_case_sensitive_like_is_set_for_one_plan_and_undone(lab: Course) -> None:
    if lab.backend != "sqlite":
        pytest.skip("PRAGMA case_sensitive_like is SQLite's")
    indexing.ddl(lab, "CREATE INDEX IF NOT EXISTS ix_t_name ON customers (name)")
    analyze(lab.engine)
    prefix = select(Customer.id).where(Customer.name.like("An%"))
    assert indexing.explain_case_sensitive_like(lab.engine, prefix).searches("name")
    assert not lab.explain(prefix).searches("name")  # every other connection: LIKE ignores case again


def measurement(median_ms: float) -> Measurement:
    return Measurement("v", [median_ms / 1000], statements=1, rows=1)


def test_index_effect_in_words() -> None:
    assert indexing.index_effect(measurement(10), measurement(2)) == "5.0× faster with the index"
    assert indexing.index_effect(measurement(2), measurement(3)) == "1.5× as long with the index"
    assert indexing.index_effect(measurement(10), measurement(9.5)) == "about the same"


def test_insert_cost_creates_the_indexes_in_turn_and_rolls_every_insert_back(lab: Course) -> None:
    indexing.ddl(lab, "CREATE TABLE t_write AS SELECT * FROM orders WHERE 1 = 0")
    indexes = [f"CREATE INDEX ix_t_write_{c} ON t_write ({c})" for c in ("customer_id", "status")]
    insert = text("INSERT INTO t_write SELECT * FROM orders ORDER BY id LIMIT 50")
    frame = indexing.insert_cost(lab, insert, indexes, [0, 2], label="insert 50 rows", repeat=2)
    assert list(frame["n"]) == [0, 2] and set(frame["variant"]) == {"insert 50 rows"}
    with lab.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t_write")).scalar_one() == 0
        assert {"ix_t_write_customer_id", "ix_t_write_status"} <= indexing.index_names(conn, "t_write")


def test_size_sweep_returns_the_same_rows_at_every_size(lab: Course) -> None:
    frame = indexing.size_sweep(lab, [100, 200], matches=5, repeat=1)
    assert set(frame["rows"]) == {50} and sorted(set(frame["n"])) == [100, 200]
    assert set(frame["variant"]) == {"scan", "index"}
    with lab.engine.connect() as conn:
        assert indexing.index_names(conn, "orders_200_ix") == {"ix_orders_200_ix_k"}
        assert indexing.index_names(conn, "orders_200") == set()


def test_keyset_from_the_cursor_is_the_offset_page(lab: Course) -> None:
    assert indexing.cursor_before(lab, 1, 20) is None
    cursor = indexing.cursor_before(lab, 3, 20)
    assert cursor == indexing.order_ids(lab, offset=39, limit=1)[0]
    listing = select(Order.id).order_by(*NEWEST_FIRST).limit(20)
    created_at = select(Order.created_at).where(Order.id == cursor).scalar_subquery()
    keyset = listing.where(tuple_(Order.created_at, Order.id) < tuple_(created_at, cursor))
    rows = indexing.reader(lab.engine, keyset)()
    assert [row.id for row in rows] == indexing.order_ids(lab, offset=40, limit=20)

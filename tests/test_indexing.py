"""Lesson 04's instruments (helpers.topics.indexing): plans read beyond `Plan`, the catalogs and sizes, the
learner's index put on the copy, the two sweeps, each pinned to what it reads or counts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Index, select, text

from helpers.course import Course
from helpers.data import copy_exists
from helpers.measure.harness import Measurement
from helpers.measure.plans import Plan
from helpers.shop.models import Customer, Order
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
    table = indexing.seek_table({"seek": SQLITE_SEEK, "scan": SQLITE}, "city")
    assert list(table["seeks in the index"]) == [True, False] and table.loc["scan", "plan"].startswith("SCAN")


def test_ddl_and_the_catalogs(lab: Course) -> None:
    indexing.ddl(lab, "CREATE INDEX ix_t_lower_email ON customers (lower(email))")
    with lab.engine.connect() as conn:
        assert "ix_t_lower_email" in indexing.index_names(conn, "customers")  # expression indexes too
    assert "ix_t_lower_email ON" in indexing.index_definition(lab.engine, "ix_t_lower_email")
    assert indexing.index_definition(lab.engine, "ix_no_such_index") == ""
    if lab.backend == "sqlite":
        assert isinstance(indexing.has_stat4(lab.engine), bool)
    assert "ix_t_lower_email" in indexing.secondary_indexes(lab.engine, "customers")
    assert not {name for name in indexing.secondary_indexes(lab.engine, "customers") if "pkey" in name}


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


def test_sql_text_writes_the_values_in(lab: Course) -> None:
    query = select(Order.id).where(Order.customer_id == 42, Order.status == "paid")
    assert indexing.sql_text(query, lab.engine) == (
        "SELECT orders.id FROM orders WHERE orders.customer_id = 42 AND orders.status = 'paid'"
    )
    prefix = select(Customer.id).where(Customer.name.like("An%"))  # one '%', as the database runs it
    assert indexing.sql_text(prefix, lab.engine).endswith("WHERE customers.name LIKE 'An%'")


def test_planner_knowledge_says_whether_the_choices_differed(lab: Course) -> None:
    alike = {"a": SQLITE, "b": SQLITE}
    differ = {"a": SQLITE, "b": Plan("sqlite", ("SCAN orders",))}
    if lab.backend == "sqlite":
        assert "STAT4; its planner made the same choice" in indexing.planner_knowledge(lab.engine, alike)
    assert indexing.planner_knowledge(lab.engine, differ).endswith(
        "chose differently for the common and the rare value."
    )


def test_index_sql_reads_a_statement_or_an_index_and_detaches_it_from_the_courses_models(lab: Course) -> None:
    assert indexing.index_sql("CREATE INDEX ix ON t (c)", lab.engine) == "CREATE INDEX ix ON t (c)"
    assert indexing.index_sql(object(), lab.engine) is None
    on_the_model = Index("ix_t_orders_total", Order.total)
    assert on_the_model in Order.__table__.indexes  # an Index built from a model's column attaches itself
    assert indexing.index_sql(on_the_model, lab.engine) == "CREATE INDEX ix_t_orders_total ON orders (total)"
    assert on_the_model not in Order.__table__.indexes


def test_create_yours_starts_the_table_afresh_and_says_why_not(
    lab: Course, capsys: pytest.CaptureFixture[str]
) -> None:
    indexing.ddl(lab, "CREATE INDEX ix_t_old ON orders (status)")
    assert indexing.create_yours(lab, "CREATE INDEX ix_t_mine ON orders (customer_id)")
    assert indexing.secondary_indexes(lab.engine, "orders") == {"ix_t_mine"}  # the old one went first
    assert not indexing.create_yours(lab, object())  # a starter's ____
    assert "not written yet" in capsys.readouterr().out and not indexing.secondary_indexes(lab.engine, "orders")
    assert not indexing.create_yours(lab, "CREATE INDEX ix_t_bad ON orders (no_such_column)")
    assert "refused" in capsys.readouterr().out


def test_index_sizes_reports_the_table_and_its_indexes(lab: Course) -> None:
    indexing.ddl(lab, "CREATE INDEX ix_t_size ON reviews (product_id)")
    sizes = indexing.index_sizes(lab.engine, "reviews")
    if sizes.empty:  # a SQLite without dbstat: nothing to report, said by the lesson
        assert lab.backend == "sqlite"
        return
    assert {"reviews", "ix_t_size"} <= set(sizes.index) and sizes.loc["reviews", "× the table"] == 1
    assert 0 < sizes.loc["ix_t_size", "MB"] < sizes.loc["reviews", "MB"]


def test_lookup_customers_are_fewer_at_larger_sizes(course: Course) -> None:
    assert indexing.lookup_customers(course) == list(range(1, 51))  # tiny: 50

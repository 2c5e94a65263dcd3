"""Lesson 02's instruments (helpers.topics.projection): row widths, bytes moved, and the sentences computed from
a measurement, each pinned to the numbers it is computed from."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import load_only

from helpers.course import Course
from helpers.measure.harness import Comparison, Measurement
from helpers.measure.recorder import bytes_fetched, record
from helpers.shop.models import Customer, Order, Product
from helpers.topics import projection


def test_text_widths_finds_the_wide_columns(course: Course) -> None:
    widths = projection.text_widths(course.engine, (Customer, Product, Order), n=50)
    assert {"customers.name", "customers.notes", "products.description", "orders.shipping_address"} <= set(
        widths.index
    )
    assert "customers.id" not in widths.index  # text columns only
    assert widths["customers.notes"] > widths["customers.name"] > 0
    assert "× as much." in projection.width_sentence(widths)


def customers(course: Course, *columns: Any) -> Callable[[], list[tuple[int, str]]]:
    """The first 20 customers' (id, name), read from whole objects, or from objects with only `columns` loaded."""

    def run() -> list[tuple[int, str]]:
        query = select(Customer).order_by(Customer.id).limit(20)
        with course.session() as session:
            found = session.scalars(query.options(load_only(*columns)) if columns else query)
            return [(c.id, c.name) for c in found]

    return run


def test_bytes_moved_is_what_the_statements_fetch(course: Course) -> None:
    whole, two = customers(course), customers(course, Customer.id, Customer.name)
    with record(course.engine) as rec:
        whole()
    assert projection.bytes_moved(course.engine, whole) == bytes_fetched(course.engine, rec)
    assert 0 < projection.bytes_moved(course.engine, two) < projection.bytes_moved(course.engine, whole) / 5


def test_with_bytes_moved_adds_bytes_in_all_and_per_row(course: Course) -> None:
    variants = {"whole": customers(course), "two columns": customers(course, Customer.id, Customer.name)}
    race = course.compare(variants, repeat=1, title="test: bytes moved")
    table = projection.with_bytes_moved(race, variants, course.engine)
    assert list(table.columns) == [
        "median_ms", "iqr_ms", "runs", "statements", "rows", "bytes moved", "bytes per row", "speedup",
    ]  # fmt: skip
    assert (table["bytes per row"] == (table["bytes moved"] / 20).round().astype(int)).all()
    assert table.loc["two columns", "bytes moved"] < table.loc["whole", "bytes moved"]


def four_ways_table() -> pd.DataFrame:
    return pd.DataFrame(
        {"median_ms": [10.0, 7.0, 2.0, 2.5], "bytes moved": [10_000, 2_000, 2_000, 2_000]},
        index=["whole entities", "load_only", "select(columns)", "Bundle"],
    )


def test_bytes_and_time_sentences() -> None:
    table = four_ways_table()
    assert projection.bytes_and_time_sentence(table, "sqlite") == (
        "The projections moved the same 2,000 bytes, 20% of what whole entities moved; their times were "
        "70% (load_only), 20% (select(columns)), 25% (Bundle) of the whole entities' time.\n"
        "Medians: whole entities 10.0 ms, load_only 7.0 ms (fewer bytes, same objects), select(columns) 2.0 ms "
        "(no objects). On sqlite, most of the gap is building ORM objects."
    )
    assert projection.bytes_summary(table) == (
        "Bytes against time: the projections moved 20% of the whole entities' bytes, in 70% of their time "
        "(load_only), 20% of their time (select(columns)), 25% of their time (Bundle)."
    )
    table.loc["load_only", "median_ms"] = 3.0  # now the bytes were the larger cost
    assert projection.bytes_and_time_sentence(table, "postgresql").endswith(
        "most of the gap is moving the wide columns."
    )


def test_growth_sentences_read_the_largest_list() -> None:
    by_size = pd.DataFrame(
        {"whole entities": [1.0, 40.0], "load_only": [0.8, 30.0], "select(columns)": [0.2, 8.0]}, index=[100, 2000]
    )
    assert projection.growth_sentence(by_size) == (
        "At 2,000 rows: whole entities 20.0 µs per row, load_only 15.0 µs per row, select(columns) 4.0 µs per "
        "row; whole entities took 5.0× as long as select(columns)."
    )
    assert projection.growth_summary(by_size) == (
        "Time against rows: at 2,000 customers, whole entities took 5.0× as long as select(columns)."
    )


def measurement(variant: str, ms: float, statements: int | None = 1) -> Measurement:
    return Measurement(variant, [ms / 1000], statements, None)


def test_driver_sentence_splits_the_orms_row_handling() -> None:
    to_driver = Comparison(
        "02",
        "sqlite",
        "tiny",
        [
            measurement(projection.SESSION, 4.0),
            measurement(projection.CONNECTION, 3.0),
            measurement(projection.DRIVER, 2.0, None),
        ],
    )
    assert projection.driver_sentence(to_driver, rows=500) == (
        "select(columns) took 2.00× the raw driver's time through the session and 1.50× through the session's "
        "connection. The ORM's row handling accounts for 1.00 ms of 4.00 ms here: 2.00 µs per row, 40.0 µs for a "
        "page of 20 rows."
    )
    to_driver.measurements[1].times_s[0] = 0.005  # the connection slower than the session: noise, said so
    assert projection.driver_sentence(to_driver, rows=500).endswith("was lost in the noise: rerun to see it.")


def test_trap_and_memory_sentences() -> None:
    trap = Comparison(
        "02", "sqlite", "tiny", [measurement("touch", 5.0, 51), measurement("loaded", 1.0, 1)], title="trap"
    )
    assert projection.trap_summary(trap).startswith(
        "The trap: touching one deferred column in a loop over 50 customers ran 51 statements instead of 1. "
    )
    star = pd.DataFrame({"id": [1, 2], "name": ["a", "b"], "notes": ["x" * 100, "y" * 100], "city": ["c", "d"]})
    memory = projection.frame_memory({"SELECT *": star, "three": star[["id", "name", "city"]]})
    assert list(memory["columns"]) == [4, 3] and memory["memory_MB"].iloc[1] < memory["memory_MB"].iloc[0]
    assert projection.memory_sentence(memory, faster=2.5).endswith("and loading it was 2.5× faster.")

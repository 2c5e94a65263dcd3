"""Lesson 08 · Batch operations: the write harness, the exercises and the improve-the-app task, on both backends.

Every check runs on a private copy; the shared tiny dataset is never written.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from proving import prove, verdict
from sqlalchemy import bindparam, delete, func, insert, select, text, update
from sqlalchemy.orm import Session

from helpers.course import Course
from helpers.data import content_fingerprint
from helpers.errors import CourseError
from helpers.exercises import ____, lesson08
from helpers.exercises.lesson08 import (
    Q1,
    Q2,
    Q3,
    Q4,
    Q5,
    apply_price_list,
    bulk_insert,
    exercises,
    import_in_chunks,
    purge_low_ratings,
    with_yours,
)
from helpers.measure.harness import ResultMismatch
from helpers.measure.predictions import Prediction
from helpers.measure.recorder import count_commits, objects_built, record
from helpers.shop.models import Customer, Order, Product, Review
from helpers.topics.batching import (
    InsertedRows,
    SavedRows,
    SimulatedLatency,
    chunk_sizes_said,
    compare_writes,
    driver_floor,
    durability_sweep,
    in_session,
    merged,
    round_trip_sweep,
    round_trips_said,
)
from tests.cells import notebook_code_cells, private_copy, run_cell


@pytest.fixture(scope="module")
def ex(course: Course) -> Any:
    return exercises(course)


@pytest.fixture
def lab(course: Course) -> Iterator[Course]:
    with private_copy(course, "test08") as copy:
        yield copy


def said(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().out.strip()


# ---------------------------------------------------------------------- the write harness
def test_compare_writes_resets_reads_back_and_counts(lab: Course) -> None:
    when = datetime(2026, 1, 1)
    rows = [
        {"name": f"n{i}", "email": f"e{i}@x", "city": "Oslo", "address": "-", "notes": "-", "created_at": when}
        for i in range(20)
    ]
    with lab.engine.connect() as conn:
        top = conn.execute(select(func.max(Customer.id))).scalar_one()
    resets = []

    def reset() -> None:
        resets.append(1)
        with lab.engine.begin() as conn:
            conn.execute(delete(Customer).where(Customer.id > top))

    def read() -> list[tuple[Any, ...]]:
        with lab.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(select(Customer.name).where(Customer.id > top).order_by("id"))]

    def per_row() -> None:
        with Session(lab.engine) as session:
            for row in rows:
                session.add(Customer(**row))
                session.commit()

    def bulk() -> None:
        with Session(lab.engine) as session:
            session.execute(insert(Customer), rows)
            session.commit()

    def raw() -> None:
        connection = lab.engine.raw_connection()
        try:
            mark = "?" if lab.backend == "sqlite" else "%s"
            connection.cursor().executemany(
                f"INSERT INTO customers (name, email, city, address, notes, created_at) VALUES "
                f"({', '.join([mark] * 6)})",
                [tuple(r.values()) if lab.backend != "sqlite" else (*list(r.values())[:5], "2026-01-01 00:00:00")
                 for r in rows],
            )  # fmt: skip
            connection.commit()
        finally:
            connection.close()

    cmp = compare_writes(
        lab,
        {"per row": per_row, "bulk": bulk, "raw": raw},
        reset=reset,
        read=read,
        title="t",
        repeat=2,
        store=False,
    )
    assert len(resets) == 3 * (1 + 2) + 1  # before every call, and once at the end
    assert read() == []  # the database is as the variants found it
    assert [m.rows for m in cmp.measurements] == [20, 20, 20]
    assert cmp["per row"].statements == 20 and cmp.commits["per row"] == 20
    assert cmp["bulk"].statements == 1 and cmp.commits["bulk"] == 1
    assert cmp["raw"].statements is None and cmp.commits["raw"] is None  # SQLAlchemy never saw it
    frame = cmp.frame
    assert list(frame.columns[:5]) == ["median_ms", "iqr_ms", "runs", "statements", "commits"]
    assert frame.loc["per row", "commits"] == 20 and all(frame["runs"] == 2)


def reviews_in(lab: Course) -> int:
    with lab.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Review)).scalar_one())


def commit_nothing(lab: Course) -> None:
    with lab.engine.begin():
        pass


def test_comparisons_measured_apart_merge_into_one_table(lab: Course) -> None:
    read, nothing = partial(reviews_in, lab), partial(commit_nothing, lab)
    first = compare_writes(lab, {"a": nothing}, read=read, title="one", repeat=1, store=False)
    second = compare_writes(lab, {"b": nothing}, read=read, title="two", repeat=1, store=False)
    both = merged([first, second], title="both")
    assert [m.variant for m in both.measurements] == ["a", "b"] and both.title == "both"
    assert both.commits == {"a": 1, "b": 1} and list(both.frame["commits"]) == [1, 1]
    assert both["a"].statements == 0  # a commit alone sends no statement, but SQLAlchemy saw it
    with pytest.raises(CourseError):
        merged([], title="none")


def test_compare_writes_catches_a_variant_that_writes_something_else(lab: Course) -> None:
    def read() -> int:
        with lab.engine.connect() as conn:
            return int(conn.execute(select(func.sum(Review.rating))).scalar_one())

    def nothing() -> None:
        pass

    def another_rating() -> None:
        with lab.engine.begin() as conn:
            conn.execute(update(Review).where(Review.id == 1).values(rating=Review.rating % 5 + 1))

    with pytest.raises(ResultMismatch, match="'changed' returned a different result"):
        compare_writes(
            lab, {"nothing": nothing, "changed": another_rating}, read=read, title="t", repeat=1, store=False
        )
    with pytest.raises(CourseError, match="warmup >= 1"):
        compare_writes(lab, {"x": nothing}, read=read, title="t", warmup=0, store=False)


def test_commits_and_objects_are_counted(lab: Course) -> None:
    with count_commits(lab.engine) as commits, objects_built(Review) as built, Session(lab.engine) as session:
        reviews = session.scalars(select(Review).order_by(Review.id).limit(3)).all()
        session.commit()
        session.add(Review(product_id=1, customer_id=1, rating=5, body="x", created_at=reviews[0].created_at))
        session.rollback()
        with lab.engine.begin() as conn:
            conn.execute(text("SELECT 1"))
    assert commits.count == 2 and built.count == 4  # 3 loaded + 1 constructed; the rollback is not a commit


def test_simulated_latency_delays_each_statement_and_commit(lab: Course) -> None:
    def three_statements_one_commit() -> None:
        with lab.engine.begin() as conn:
            for _ in range(3):
                conn.execute(text("SELECT 1"))

    three_statements_one_commit()  # a connection in the pool already
    with SimulatedLatency(lab.engine, 20) as latency:
        started = time.perf_counter()
        three_statements_one_commit()
        slow = time.perf_counter() - started
        latency.delay_ms = 0
        started = time.perf_counter()
        three_statements_one_commit()
        fast = time.perf_counter() - started
    assert slow >= 4 * 0.020 and fast < 0.020
    started = time.perf_counter()
    three_statements_one_commit()
    assert time.perf_counter() - started < 0.020  # closed: the listeners are gone


def test_saved_rows_are_read_and_put_back_after_updates_and_deletes(lab: Course) -> None:
    before = content_fingerprint(lab.engine)
    reviews = SavedRows(lab.engine, Review, Review.rating == 1, Review.id <= 400)
    orders = SavedRows(lab.engine, Order, Order.status == "shipped", Order.id <= 400, columns=["status"])
    notes = SavedRows(lab.engine, Order, Order.id.in_(orders.ids), columns=["note"])
    assert reviews.ids and orders.ids and reviews.gone() == []
    assert [tuple(row) for row in orders.read()] == [(i, "shipped") for i in orders.ids]
    with lab.engine.begin() as conn:
        conn.execute(delete(Review).where(Review.id.in_(reviews.ids[1:])))
        conn.execute(update(Order).where(Order.id.in_(orders.ids)).values(status="delivered", note="changed"))
    assert reviews.gone() == reviews.ids[1:]
    assert {row.status for row in orders.read()} == {"delivered"}
    reviews.restore()
    orders.restore()
    assert reviews.gone() == [] and [tuple(row) for row in orders.read()] == [(i, "shipped") for i in orders.ids]
    assert {row.note for row in notes.read()} == {"changed"}  # only the columns given are written back
    notes.restore()
    assert content_fingerprint(lab.engine) == before


def test_inserted_rows_are_read_back_in_order_and_forgotten(lab: Course) -> None:
    with lab.engine.connect() as conn:
        top = conn.execute(select(func.max(Customer.id))).scalar_one()
    new = InsertedRows(lab.engine, Customer, above_id=top, columns=["name", "city"])
    when = datetime(2026, 1, 1)
    with Session(lab.engine) as session:
        customer = {"email": "e@x", "city": "Oslo", "address": "-", "notes": "-", "created_at": when}
        session.execute(insert(Customer), [{**customer, "name": f"n{i}"} for i in range(3)])
        session.commit()
    assert [tuple(row) for row in new.read()] == [("n0", "Oslo"), ("n1", "Oslo"), ("n2", "Oslo")]
    new.forget()
    assert new.read() == []


def test_a_durability_sweep_races_each_setting_and_leaves_wal(lab: Course) -> None:
    with lab.engine.connect() as conn:
        top = conn.execute(select(func.max(Review.id))).scalar_one()
    new = InsertedRows(lab.engine, Review, above_id=top, columns=["body"])
    rows = [{"product_id": 1, "customer_id": 1, "rating": 5, "body": f"r{i}", "created_at": datetime(2026, 1, 1)}
            for i in range(3)]  # fmt: skip

    def commit_each_on(engine: Any) -> Any:
        def run() -> None:
            with Session(engine) as session:
                for row in rows:
                    session.execute(insert(Review), [row])
                    session.commit()

        return run

    sweep = durability_sweep(lab, commit_each_on, reset=new.forget, read=new.read, title="3 commits")
    if lab.backend == "sqlite":
        assert [c.title for c in sweep] == ["3 commits, journal_mode=wal", "3 commits, journal_mode=delete"]
        assert list(sweep[1].commits) == ["DELETE + FULL", "DELETE + NORMAL", "DELETE + OFF"]
        with lab.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    else:
        assert list(sweep[0].commits) == ["synchronous_commit = on", "synchronous_commit = off"]
    assert all(n == 3 for c in sweep for n in c.commits.values())
    assert new.read() == []  # put back after the last call


def test_a_round_trip_sweep_delays_each_statement(lab: Course) -> None:
    def variants_on(engine: Any) -> dict[str, Any]:
        def three_statements() -> None:
            with engine.begin() as conn:
                for _ in range(3):
                    conn.execute(text("SELECT 1"))

        return {"three statements": three_statements}

    network, kind = round_trip_sweep(lab, variants_on, delays_ms=[0, 20])
    assert kind.startswith("simulated" if lab.backend == "sqlite" else "added delay")
    by_delay = network.set_index("n")["median_ms"]
    assert by_delay[20] - by_delay[0] >= 3 * 20 and list(network["statements"]) == [3, 3]


def test_the_round_trip_and_chunk_sentences() -> None:
    network = pd.DataFrame(
        {"n": [0, 5, 0, 5], "variant": ["per row", "per row", "bulk", "bulk"],
         "median_ms": [1.0, 101.0, 0.5, 10.5], "statements": [20, 20, 1, 1]}
    )  # fmt: skip
    assert round_trips_said(network, 5) == (
        "bulk: 0.5 ms with no delay, 10 ms at 5 ms: 10 ms more, the cost of about 2 round trips (1 statements).\n"
        "per row: 1.0 ms with no delay, 101 ms at 5 ms: 100 ms more, the cost of about 20 round trips "
        "(20 statements)."
    )
    each, once = "a commit per chunk", "one commit at the end"
    chunks = pd.DataFrame(
        {"n": [1, 1, 5, 5, 10, 10], "variant": [each, once] * 3,
         "median_ms": [30.0, 12.0, 9.0, 4.0, 2.5, 2.5], "statements": [10, 10, 2, 2, 1, 1]}
    )  # fmt: skip
    assert chunk_sizes_said(chunks, rows=10) == (
        "A commit per chunk: 30 ms in chunks of 1, 2.5 ms in chunks of 10. One commit at the end: 12.0 ms "
        "(10 statements) against 2.5 ms (1).\n"
        "What committing each chunk added: 18.0 ms for 9 more commits (chunks of 1), 5.0 ms for 1 more commit "
        "(chunks of 5)."
    )


def test_compare_writes_declares_roles_a_prediction_and_a_claim(lab: Course) -> None:
    read, nothing = partial(reviews_in, lab), partial(commit_nothing, lab)
    race = compare_writes(
        lab,
        {"slow": nothing, "fast": nothing},
        read=read,
        title="t",
        repeat=1,
        store=False,
        naive="slow",
        best="fast",
        prediction=Prediction(speedup=3, statements=0),
        claim="batching",
    )
    assert race.roles == {"slow": "naive", "fast": "best"} and race.claim == "batching"
    assert race.outcome is not None and race.outcome.predicted_speedup == 3
    with pytest.raises(CourseError, match="No variant called 'quick'"):
        compare_writes(lab, {"slow": nothing}, read=read, title="t", repeat=1, store=False, best="quick")
    with pytest.raises(CourseError, match="names its best variant"):
        compare_writes(lab, {"slow": nothing}, read=read, title="t", repeat=1, store=False, claim="batching")


def test_the_driver_floor_writes_what_the_orm_writes(lab: Course, ex: Any) -> None:
    with lab.engine.connect() as conn:
        top = conn.execute(select(func.max(Order.id))).scalar_one()
        newest = conn.execute(select(func.max(Order.created_at))).scalar_one()
    rows = lesson08.order_batches(newest, 50)[1]
    new = InsertedRows(lab.engine, Order, above_id=top, columns=list(rows[0]))
    floors = driver_floor(lab.engine, Order, rows)
    assert list(floors) == (
        ["raw driver executemany"] if lab.backend == "sqlite" else ["raw driver executemany", "COPY (PostgreSQL)"]
    )
    written = []
    for write in [in_session(lab.engine, bulk_insert, rows), *floors.values()]:
        write()
        written.append(new.read())
        new.forget()
    assert written[0] == written[1] == written[-1] and len(written[0]) == len(rows)


def test_with_yours_joins_the_race_or_says_why_not(lab: Course, capsys: pytest.CaptureFixture[str]) -> None:
    variants = {"naive": lambda: None, "the course's": lambda: None, "floor": lambda: None}

    def unanswered(session: Session, rows: list[Any]) -> None:
        session.execute(____)

    same, best = with_yours(variants, unanswered, lab.engine, [], instead="the course's")
    assert list(same) == list(variants) and best == "the course's"
    assert "still has ____ in it" in said(capsys)
    joined, best = with_yours(variants, bulk_insert, lab.engine, [], instead="the course's")
    assert list(joined) == ["naive", "yours", "the course's", "floor"] and best == "yours"


# ---------------------------------------------------------------------- what the lesson demonstrates
def test_orm_flush_needs_ids_back_bulk_insert_does_not(lab: Course, ex: Any) -> None:
    """On SQLite the unit of work sends an INSERT per object (it needs each new id, in order); bulk sends one."""
    rows = ex.reviews[:25]
    with Session(lab.engine) as session, record(lab.engine) as flushed:
        session.add_all([Review(**row) for row in rows])
        session.commit()
    with Session(lab.engine) as session, record(lab.engine) as bulk:
        session.execute(insert(Review), rows)
        session.commit()
    with Session(lab.engine) as session, record(lab.engine) as in_order:
        ids = session.scalars(insert(Review).returning(Review.id, sort_by_parameter_order=True), rows).all()
        session.commit()
    assert flushed.count == in_order.count == (25 if lab.backend == "sqlite" else 1)
    assert bulk.count == 1 and ids == sorted(ids) and len(ids) == 25


def test_update_where_and_by_primary_key_are_one_statement_each(lab: Course) -> None:
    with Session(lab.engine) as session, record(lab.engine) as where:
        changed = session.execute(
            update(Order).where(Order.status == "shipped", Order.id <= 200).values(status="delivered")
        ).rowcount
        session.commit()
    with Session(lab.engine) as session, record(lab.engine) as by_key:
        session.execute(update(Order), [{"id": i, "note": f"n{i}"} for i in range(1, 51)])
        session.commit()
    assert where.count == 1 and changed > 0 and by_key.count == 1 and by_key.statements[0].executemany
    with lab.session() as session:
        assert session.scalar(select(func.count()).where(Order.note.like("n%"), Order.id <= 50)) == 50


# ---------------------------------------------------------------------- q1 · the bulk insert
def per_row_orders(session: Session, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        session.add(Order(**row))
        session.commit()


def add_all_orders(session: Session, rows: list[dict[str, Any]]) -> None:
    """One statement on PostgreSQL, one per row on SQLite: refused on both for the objects it builds."""
    session.add_all([Order(**row) for row in rows])
    session.commit()


def bulk_without_render_nulls(session: Session, rows: list[dict[str, Any]]) -> None:
    session.execute(insert(Order), rows)
    session.commit()


def bulk_not_committed(session: Session, rows: list[dict[str, Any]]) -> None:
    session.execute(insert(Order).execution_options(render_nulls=True), rows)


def bulk_in_tens(session: Session, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), 10):
        session.execute(insert(Order).execution_options(render_nulls=True), rows[start : start + 10])
    session.commit()


def orders_in_one_values_clause(session: Session, rows: list[dict[str, Any]]) -> None:
    """Another right answer: one INSERT with a VALUES row per order."""
    session.execute(insert(Order).values(rows))
    session.commit()


def core_executemany(session: Session, rows: list[dict[str, Any]]) -> None:
    """Another right answer: Core's INSERT on the table, through the session's connection."""
    session.connection().execute(insert(Order.__table__), rows)
    session.commit()


# ---------------------------------------------------------------------- q2-q4
def load_and_delete(session: Session, category: str) -> int:
    doomed = session.scalars(
        select(Review).join(Product).where(Product.category == category, Review.rating <= 2)
    ).all()
    for review in doomed:
        session.delete(review)
    session.commit()
    return len(doomed)


def every_low_rating(session: Session, category: str) -> int:
    result = session.execute(delete(Review).where(Review.rating <= 2))
    session.commit()
    return result.rowcount  # type: ignore[attr-defined, no-any-return]


def forgets_the_count(session: Session, category: str) -> None:
    purge_low_ratings(session, category)


def counts_by_loading(session: Session, category: str) -> int:
    """Right rows, one DELETE, but it loads the reviews first to count them."""
    doomed = select(Review.id).join(Product).where(Product.category == category, Review.rating <= 2)
    count = len(session.scalars(doomed).all())
    purge_low_ratings(session, category)
    return count


def purge_with_exists(session: Session, category: str) -> int:
    """Another right answer: a correlated EXISTS instead of IN, and ratings below 3."""
    of_category = select(Product.id).where(Product.id == Review.product_id, Product.category == category)
    deleted = session.execute(delete(Review).where(of_category.exists(), Review.rating < 3)).rowcount  # type: ignore[attr-defined]
    session.commit()
    return int(deleted)


def get_and_set(session: Session, prices: dict[int, Decimal]) -> None:
    for product_id, price in prices.items():
        product = session.get(Product, product_id)
        assert product is not None
        product.price = price
    session.commit()


def an_update_each(session: Session, prices: dict[int, Decimal]) -> None:
    for product_id, price in prices.items():
        session.execute(update(Product).where(Product.id == product_id).values(price=price))
    session.commit()


def one_price_for_all(session: Session, prices: dict[int, Decimal]) -> None:
    session.execute(update(Product).where(Product.id.in_(list(prices))).values(price=max(prices.values())))
    session.commit()


def prices_through_core(session: Session, prices: dict[int, Decimal]) -> None:
    """Another right answer: Core's UPDATE … WHERE id = :pid, executed with a list of parameters."""
    products = Product.__table__
    by_id = update(products).where(products.c.id == bindparam("pid")).values(price=bindparam("new_price"))
    session.execute(by_id, [{"pid": pid, "new_price": price} for pid, price in prices.items()])
    session.commit()


def all_at_once(session: Session, rows: list[dict[str, Any]], size: int) -> None:
    session.execute(insert(Customer), rows)
    session.commit()


def chunks_one_commit(session: Session, rows: list[dict[str, Any]], size: int) -> None:
    for start in range(0, len(rows), size):
        session.execute(insert(Customer), rows[start : start + size])
    session.commit()


def loses_the_last_chunk(session: Session, rows: list[dict[str, Any]], size: int) -> None:
    for start in range(0, len(rows) - size, size):
        session.execute(insert(Customer), rows[start : start + size])
        session.commit()


def chunks_with_add_all(session: Session, rows: list[dict[str, Any]], size: int) -> None:
    """Right chunks and commits, but through ORM objects."""
    for start in range(0, len(rows), size):
        session.add_all([Customer(**row) for row in rows[start : start + size]])
        session.commit()


def chunks_of_500_whatever_the_size(session: Session, rows: list[dict[str, Any]], size: int) -> None:
    import_in_chunks(session, rows, 500)


def chunks_by_slicing(session: Session, rows: list[dict[str, Any]], size: int) -> None:
    """Another right answer: take chunks off the front until none is left."""
    while rows:
        chunk, rows = rows[:size], rows[size:]
        session.execute(insert(Customer), chunk)
        session.commit()


PROOFS = {
    "q1": (
        Q1,
        [bulk_insert, orders_in_one_values_clause, core_executemany],
        [
            (per_row_orders, "built 60 Order objects"),
            (add_all_orders, "built 60 Order objects: a bulk insert takes the dicts themselves"),
            (bulk_without_render_nulls, "statements; the budget is 1: its INSERTs name different columns"),
            (bulk_not_committed, "no order was kept"),
            (bulk_in_tens, "the right 60 orders in 6 statements; the budget is 1: hand the whole list"),
        ],
        "Correct! two batches of new orders (60 and 25, some without a note), each in one statement",
    ),
    "q2": (
        Q2,
        [purge_low_ratings, purge_with_exists],
        [
            (load_and_delete, "Review objects: one DELETE … WHERE removes them without loading any"),
            (every_low_rating, "that should stay"),
            (forgets_the_count, "it returned None: return how many were deleted"),
            (counts_by_loading, "statements; the budget is 1"),
        ],
        "reviews deleted, each by one DELETE … WHERE, nothing loaded.",
    ),
    "q3": (
        Q3,
        [apply_price_list, prices_through_core],
        [
            (get_and_set, "Product objects"),
            (an_update_each, "statements; the budget is 1"),
            (one_price_for_all, "have the wrong price"),
        ],
        "each set by primary key in one statement.",
    ),
    "q4": (
        Q4,
        [import_in_chunks, chunks_by_slicing],
        [
            (all_at_once, "with size=500 it committed 1 time(s)"),
            (chunks_one_commit, "commit after each chunk"),
            (loses_the_last_chunk, "1,000 of the 1,200 customers were kept"),
            (chunks_with_add_all, "Customer objects: pass each chunk of dicts"),
            (chunks_of_500_whatever_the_size, "with size=250 it committed 3 time(s)"),
        ],
        "Correct! 1,200 customers, one bulk INSERT and one commit per chunk (chunks of 500: 3 commits; "
        "chunks of 250: 5 commits).",
    ),
}


@pytest.mark.parametrize("name", PROOFS)
def test_the_check_is_proven(course: Course, name: str) -> None:
    """Two right answers or more pass, three wrong ones or more fail with their reason, on both backends."""
    question, right, wrong, praise = PROOFS[name]
    prove(question.bind(course).check, right=right, wrong=wrong)
    assert praise in verdict(question.bind(course).check, right[0])[1]


def test_q2_refuses_a_category_written_into_the_code(course: Course) -> None:
    first, second = lesson08.low_categories(course)

    def always_the_first(session: Session, category: str) -> int:
        return purge_low_ratings(session, first)

    passed, said_so = verdict(Q2.bind(course).check, always_the_first)
    assert not passed and f"low ratings of {second!r}" in said_so


# ---------------------------------------------------------------------- q5 · counted by the learner
def test_q5_is_proven(course: Course, ex: Any) -> None:
    with private_copy(course, "test08q5") as lab_copy:  # the solution, run as the notebook runs it
        answer = run_cell(Q5.solution, "cell08_q5", lab=lab_copy, ex=ex, Session=Session, Review=Review)
    measured = (answer["add_all_statements"], answer["bulk_statements"])
    assert measured == ((300, 1) if course.backend == "sqlite" else (1, 1))
    other_backend = (1, 1) if course.backend == "sqlite" else (300, 1)
    prove(
        Q5.bind(course).check,
        right=[measured, [float(n) for n in measured]],
        wrong=[
            (other_backend, f"measure it on {course.backend} instead of reasoning"),
            ((measured[0] + 1, measured[1]), "a commit is not a statement"),
            ((0, 0), "add_all sent another number of statements here than 0: record the statements"),
            ((measured[0], measured[1] + 1), "a commit is not a statement"),
            ("300, 1", "give two whole numbers"),
        ],
    )
    said_so = verdict(Q5.bind(course).check, measured)[1]
    assert said_so.startswith(f"Correct! on {course.backend}, add_all sent {measured[0]} statement")


# ---------------------------------------------------------------------- the questions as the notebook holds them
@pytest.mark.parametrize("name", ["q1", "q2", "q3", "q4", "q5"])
def test_the_notebooks_starter_is_declared_and_not_answered_yet(
    ex: Any, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    starter = getattr(lesson08, name.upper()).starter
    assert starter in notebook_code_cells("08_batch_operations.ipynb")
    exec(starter, {"ex": ex, "____": ____})
    assert said(capsys).splitlines()[-1].startswith("Not answered yet")


@pytest.mark.parametrize("question", [Q1, Q2, Q3, Q4, Q5], ids=["q1", "q2", "q3", "q4", "q5"])
def test_hints_name_the_idea_then_the_api_and_no_code(question: Any) -> None:
    assert len(question.hints) >= 2
    for hint in question.hints:
        assert "session.execute(" not in hint and "=" not in hint.replace("==", "")  # no statement spelled out


def test_every_name_a_solution_uses_is_imported_before_its_exercise() -> None:
    cells = notebook_code_cells("08_batch_operations.ipynb")
    setup_cell = cells[0]
    for name in ("insert", "delete", "update", "select", "Session", "Order", "Product", "Customer", "Review"):
        assert re.search(rf"\b{name}\b", setup_cell), name


def test_hints_and_solutions(course: Course, capsys: pytest.CaptureFixture[str]) -> None:
    q2 = Q2.bind(course)
    q2.hint()
    assert said(capsys).startswith("Hint 1 of 2: A DELETE's WHERE")
    q2.hint(2)
    assert "rowcount" in said(capsys)
    q2.solution()
    assert "def purge_low_ratings(session: Session, category: str) -> int:" in said(capsys)


# ---------------------------------------------------------------------- improve the app: POST /orders
RIGHT = lesson08.IMPROVE_SOLUTION  # the solution the notebook shows; the wrong answers below are edits of it
# Another right answer: the customer and the order as objects (one statement each), the lines as dicts.
WITH_OBJECTS = RIGHT.replace(
    "    address = session.scalar(select(Customer.address).where(Customer.id == wanted.customer_id))\n"
    "    if address is None:",
    "    customer = session.get(Customer, wanted.customer_id)\n"
    "    address = customer.address if customer is not None else None\n"
    "    if customer is None:",
).replace(
    "    order_id = session.execute(insert(Order).values(**order).returning(Order.id)).scalar_one()",
    "    placed = Order(**order)\n    session.add(placed)\n    session.flush()  # its INSERT, and its id\n"
    "    order_id = placed.id",
)
SELECT_PER_PRODUCT = RIGHT.replace(
    "prices = dict(session.execute(in_order).all())",
    "prices = {p: session.get(Product, p).price for p in wanted.product_ids if session.get(Product, p)}",
)
TWO_COMMITS = RIGHT.replace(").scalar_one()\n", ").scalar_one()\n    session.commit()\n")
FIRST_PRICE = RIGHT.replace("prices[line.product_id]}", "prices[wanted.lines[0].product_id]}")
WRONG_TOTAL = RIGHT.replace("line.quantity * prices[line.product_id] for", "prices[line.product_id] for")
WRONG_METHOD = RIGHT.replace('@my_views.post("/orders")', '@my_views.get("/orders")')
ADD_ALL_LINES = RIGHT.replace(
    "    session.execute(insert(OrderLine), lines)",
    "    session.add_all([OrderLine(**line) for line in lines])",
)
WRITES_BEFORE_CHECKING = (
    RIGHT.replace(
        """    for line in wanted.lines:
        if line.product_id not in prices:
            unknown_product(line.product_id)
""",
        "",
    )
    .replace("line.quantity * prices[line.product_id] for", "line.quantity * prices.get(line.product_id, 0) for")
    .replace(
        "    lines = [",
        "    for line in wanted.lines:  # checked once the order is written, and kept on a refusal\n"
        "        if line.product_id not in prices:\n"
        "            session.commit()\n"
        "            unknown_product(line.product_id)\n"
        "    lines = [",
    )
)
assert len({RIGHT, WITH_OBJECTS, SELECT_PER_PRODUCT, TWO_COMMITS, FIRST_PRICE, WRONG_TOTAL, ADD_ALL_LINES}) == 7


@pytest.fixture
def improve(ex: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))  # answers are saved here, not in data/my_app/
    return ex.improve


def test_improve_reference_passes_is_saved_and_leaves_the_dataset(
    course: Course, improve: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = content_fingerprint(course.engine)
    assert improve.check(run_cell(RIGHT, "cell08_1")["my_views"])
    out = said(capsys)
    assert "Correct! Your endpoint stores the same orders and lines as the baseline with 4 statements" in out
    assert "baseline (lesson 01)" in out  # the race ran, baseline and yours side by side
    saved = (tmp_path / "my_app" / "08_place_order.py").read_text()
    assert "(POST /orders), written in lesson 08" in saved and "ex.improve" not in saved
    assert content_fingerprint(course.engine) == before  # everything happened on private copies


def test_improve_accepts_the_order_as_an_object(improve: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert improve.check(run_cell(WITH_OBJECTS, "cell08_5")["my_views"]), said(capsys)


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (SELECT_PER_PRODUCT, "the budget is 4"),
        (TWO_COMMITS, "committed 2 times"),
        (FIRST_PRICE, "item 1 of your order as stored['lines'] is"),
        (WRONG_TOTAL, "your JSON['total']"),
        (WRONG_METHOD, "not POST /orders"),
        (ADD_ALL_LINES, "built 10 OrderLine objects"),  # on both backends, though PostgreSQL sends 4 statements
        (WRITES_BEFORE_CHECKING, "left 1 order(s) and 0 line(s) behind"),
    ],
    ids=[
        "select-per-product",
        "two-commits",
        "first-price",
        "wrong-total",
        "get-not-post",
        "add-all",
        "writes-first",
    ],
)
def test_improve_rejects(
    improve: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str, reason: str
) -> None:
    assert not improve.check(run_cell(source, "cell08_2")["my_views"])
    out = said(capsys)
    assert out.startswith("Not yet") and reason in out
    assert not (tmp_path / "my_app" / "08_place_order.py").exists()


def test_improve_race_beside_the_reference(improve: Any, capsys: pytest.CaptureFixture[str]) -> None:
    race = improve.race(run_cell(RIGHT, "cell08_3")["my_views"], reference=True, repeat=2)
    assert [m.variant for m in race.measurements] == ["baseline (lesson 01)", "yours", "the course's version"]
    assert race["yours"].statements == race["the course's version"].statements == 4
    assert race["baseline (lesson 01)"].statements > 4
    assert race.roles == {"baseline (lesson 01)": "naive", "yours": "best"}


def test_improve_starter_is_not_answered(improve: Any, capsys: pytest.CaptureFixture[str]) -> None:
    starter = next(cell for cell in notebook_code_cells("08_batch_operations.ipynb") if "def place_order" in cell)
    assert not improve.check(run_cell(starter, "cell08_4")["my_views"])
    assert "Not answered yet" in said(capsys)
    race = improve.race(run_cell(starter, "cell08_6")["my_views"], reference=True, repeat=1)
    assert "your view still has ____" in said(capsys).lower() and "yours" not in race.roles


def test_improve_hints_and_the_solution_a_cell_can_hold(improve: Any, capsys: pytest.CaptureFixture[str]) -> None:
    improve.hint()
    assert said(capsys).startswith("Hint 1 of 2: Four statements")
    improve.hint(2)
    assert "returning" in said(capsys)
    improve.solution()
    out = said(capsys)
    assert '@my_views.post("/orders")' in out and "insert(OrderLine)" in out
    assert improve.solution_text == RIGHT  # and test_improve_reference_passes... proves it right


def test_exercise_data_is_deterministic(course: Course, ex: Any) -> None:
    again = lesson08.exercises(course)
    assert again.reviews == ex.reviews and again.prices == ex.prices and again.category == ex.category
    assert len(ex.customers) == 1200 and all(isinstance(p, Decimal) for p in ex.prices.values())

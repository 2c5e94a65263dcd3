"""Exercises for lesson 08 · Batch operations: each check runs the answer on a fresh private copy.

An answer is a function of an ORM `Session` (and the task's data) that writes. The check runs it on a copy of
the dataset, reads back what it wrote and compares that with what the reference writes, then counts what it
cost: statements, commits, and ORM objects built (a bulk statement builds none). The copy is removed after.

What "one statement" means, on every backend alike: objects added to a session are written by the unit of
work, which needs each new row's key back. SQLAlchemy folds their INSERTs into one only where its dialect can
match the keys a multi-row INSERT returns to the objects, in order (PostgreSQL's can); elsewhere (SQLite) it
sends one INSERT per object. So `add_all` is one statement on PostgreSQL and one per row on SQLite. The checks
hold code to what it costs wherever it runs: rows that a bulk statement could write must not be built as
objects, and then the statements counted are the same on both backends.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache, partial
from typing import Any

from flask import Flask
from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.orm import Session

from ..course import Course
from ..data import drop_copy
from ..db import make_engine
from ..measure.display import say
from ..measure.recorder import count_commits, objects_built, record
from ..shop.app import create_app
from ..shop.models import Customer, Order, OrderLine, Product, Review
from ..topics.batching import in_session
from .app_task import AppTask, Call
from .core import Exercise, Incorrect, Question, contains_blank, same_result

__all__ = [
    "IMPROVE_SOLUTION",
    "Q1",
    "Q2",
    "Q3",
    "Q4",
    "Q5",
    "Lesson08Exercises",
    "apply_price_list",
    "bulk_insert",
    "exercises",
    "import_in_chunks",
    "improve_task",
    "low_categories",
    "measured_statements",
    "order_batches",
    "order_counts",
    "purge_low_ratings",
    "stored_order",
    "with_yours",
]

_CENT = Decimal("0.01")
_CHUNK_SIZE = 500  # q4: rows per statement and per commit
_YOURS = "yours"


# ---------------------------------------------------------------------- reference solutions
def bulk_insert(session: Session, rows: list[dict[str, Any]]) -> None:
    """Reference for q1: the ORM bulk insert of the dicts, None sent as NULL so that every row fits one INSERT."""
    session.execute(insert(Order).execution_options(render_nulls=True), rows)
    session.commit()


def purge_low_ratings(session: Session, category: str) -> int:
    """Reference for q2: one DELETE whose WHERE picks the rows; the database says how many it removed."""
    in_category = select(Product.id).where(Product.category == category)
    result = session.execute(delete(Review).where(Review.product_id.in_(in_category), Review.rating <= 2))
    session.commit()
    return result.rowcount  # type: ignore[attr-defined, no-any-return]


def apply_price_list(session: Session, prices: dict[int, Decimal]) -> None:
    """Reference for q3: an ORM bulk UPDATE by primary key, one executemany for the whole list."""
    session.execute(update(Product), [{"id": product_id, "price": price} for product_id, price in prices.items()])
    session.commit()


def import_in_chunks(session: Session, rows: list[dict[str, Any]], size: int) -> None:
    """Reference for q4: one bulk INSERT and one commit per chunk of `size` rows."""
    for start in range(0, len(rows), size):
        session.execute(insert(Customer), rows[start : start + size])
        session.commit()


def measured_statements(course: Course, reviews: list[dict[str, Any]]) -> tuple[int, int]:
    """Reference for q5: the statements add_all and one bulk insert send for `reviews`, counted on a copy."""
    with course.scratch_copy("exercise08q5") as copy:
        with copy.record() as flushed, Session(copy.engine) as session:
            session.add_all([Review(**row) for row in reviews])
            session.commit()
        with copy.record() as bulk, Session(copy.engine) as session:
            session.execute(insert(Review), reviews)
            session.commit()
    return flushed.count, bulk.count


# ---------------------------------------------------------------------- the tasks' data (seeded)
def order_batches(newest: datetime, customers: int) -> list[list[dict[str, Any]]]:
    """q1's two batches of new orders, placed after `newest`: 60 with a note on every third, 25 with the first 10
    without one (a bulk insert must write both in one statement each, whatever rows leave a column None)."""

    def order(i: int, note: str | None) -> dict[str, Any]:
        return {
            "customer_id": 1 + (7 * i) % customers,
            "status": "pending",
            "created_at": newest + timedelta(minutes=i + 1),
            "total": Decimal(1999 + 37 * i) / 100,
            "shipping_address": f"{i + 1} Harbour Street, Lisbon",
            "note": note,
        }

    first = [order(i, None if i % 3 else "leave at the door") for i in range(60)]
    second = [order(100 + i, None if i < 10 else "ring twice") for i in range(25)]
    return [first, second]


def _new_reviews(course: Course, n: int = 300) -> list[dict[str, Any]]:
    """`n` reviews of existing products by existing customers, the same every time."""
    rng = random.Random(7)
    customers, products = course.info.rows["customers"], course.info.rows["products"]
    start = datetime(2026, 1, 1, 9, 0)
    return [
        {
            "product_id": rng.randint(1, products),
            "customer_id": rng.randint(1, customers),
            "rating": rng.choice((1, 2, 3, 4, 4, 5, 5, 5)),
            "body": f"Imported review {i + 1}: " + rng.choice(("works well", "arrived late", "as described")),
            "created_at": start + timedelta(minutes=7 * i),
        }
        for i in range(n)
    ]


def _new_customers(n: int = 1200) -> list[dict[str, Any]]:
    """`n` customers from a CRM export, the same every time."""
    rng = random.Random(11)
    cities = ("Lisbon", "Porto", "Oslo", "Lyon", "Graz", "Turku")
    start = datetime(2026, 2, 1, 8, 0)
    return [
        {
            "name": f"Imported Customer {i + 1}",
            "email": f"imported{i + 1}@example.com",
            "city": rng.choice(cities),
            "address": f"{rng.randint(1, 300)} Mill Street, {rng.choice(cities)}",
            "notes": "from the CRM export",
            "created_at": start + timedelta(minutes=i),
        }
        for i in range(n)
    ]


def _price_list(course: Course) -> dict[int, Decimal]:
    """New prices for every other product among the first 400: 10 % up, rounded to the cent."""
    return dict(_price_lists_at(_url(course))[0])


def low_categories(course: Course) -> tuple[str, ...]:
    """The two categories with the most 1- and 2-star reviews (ties: alphabetical): the notebook shows the first,
    q2's check deletes from both."""
    return _low_categories_at(_url(course))


def _url(course: Course) -> str:
    return course.url.render_as_string(hide_password=False)


@lru_cache(maxsize=8)
def _price_lists_at(url: str) -> tuple[tuple[tuple[int, Decimal], ...], ...]:
    """q3's two price lists: every other product among the first 400 up 10 %; every third among the first 300 down
    5 % (the notebook shows the first; a check tries both)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:

            def changed(where: Any, factor: str) -> tuple[tuple[int, Decimal], ...]:
                rows = conn.execute(select(Product.id, Product.price).where(where).order_by(Product.id))
                return tuple((pid, (price * Decimal(factor)).quantize(_CENT)) for pid, price in rows)

            return (
                changed((Product.id <= 400) & (Product.id % 2 == 1), "1.10"),
                changed((Product.id <= 300) & (Product.id % 3 == 0), "0.95"),
            )
    finally:
        engine.dispose()


@lru_cache(maxsize=8)
def _low_categories_at(url: str) -> tuple[str, ...]:
    low = func.count(Review.id)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return tuple(
                conn.scalars(
                    select(Product.category)
                    .join(Review, Review.product_id == Product.id)
                    .where(Review.rating <= 2)
                    .group_by(Product.category)
                    .order_by(low.desc(), Product.category)
                    .limit(2)
                )
            )
    finally:
        engine.dispose()


# ---------------------------------------------------------------------- running an answer on a copy
@dataclass
class _Run:
    """What an answer did on a copy: its return value and what it cost."""

    result: Any
    statements: list[str]  # the SQL of each statement, in order
    commits: int
    objects: int


@contextmanager
def _fresh_copy(course: Course) -> Iterator[Course]:
    """A private copy of the dataset for one check, removed afterwards."""
    copy = course.private_copy("exercise08")
    try:
        yield copy
    finally:
        copy.engine.dispose()
        drop_copy(copy.url)


def _run(copy: Course, answer: Callable[..., Any], *args: Any, models: tuple[type[Any], ...]) -> _Run:
    """Call `answer(session, *args)` on `copy`, counting statements, commits and ORM objects of `models`."""
    with (
        Session(copy.engine) as session,
        record(copy.engine) as statements,
        count_commits(copy.engine) as commits,
        objects_built(*models) as objects,
    ):
        result = answer(session, *args)
    return _Run(result, [s.sql for s in statements.statements], commits.count, objects.count)


def _max_id(engine: Engine, model: type[Any]) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.coalesce(func.max(model.id), 0))).scalar_one())


def _written(engine: Engine, columns: list[Any], after_id: int, id_column: Any) -> list[dict[str, Any]]:
    """Rows with an id above `after_id`, in id order, as dicts of `columns` (the ids themselves left out)."""
    with engine.connect() as conn:
        rows = conn.execute(select(*columns).where(id_column > after_id).order_by(id_column))
        return [dict(row._mapping) for row in rows]


def _ids(copy: Course, query: Any) -> set[int]:
    with copy.session() as session:
        return set(session.scalars(query))


def _prices(copy: Course) -> dict[int, Decimal]:
    with copy.session() as session:
        return dict(session.execute(select(Product.id, Product.price)).all())


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _one_commit(done: _Run) -> None:
    if done.commits != 1:
        raise Incorrect(
            f"it committed {done.commits} times: a batch is one transaction, so commit once, at the end"
            if done.commits
            else "nothing was committed, so nothing was kept: call session.commit() at the end"
        )


def _no_objects(done: _Run, model: type[Any], instead: str) -> None:
    if done.objects:
        raise Incorrect(
            f"the right rows, but it built {_plural(done.objects, model.__name__ + ' object')}: {instead}"
        )


def _within(done: _Run, budget: int) -> None:
    if len(done.statements) > budget:
        raise Incorrect(f"the right rows in {len(done.statements):,} statements; the budget is {budget}")


# ---------------------------------------------------------------------- q1 · the bulk insert (the lesson's race)
_ORDER_COLUMNS = [
    Order.customer_id,
    Order.status,
    Order.created_at,
    Order.total,
    Order.shipping_address,
    Order.note,
]


def _one_insert(done: _Run, rows: int) -> None:
    """One statement for the batch, and if not, why: INSERTs naming different columns are the None trap."""
    sent = len(done.statements)
    if sent <= 1:
        return
    shapes = {sql.split(" VALUES")[0] for sql in done.statements}
    why = (
        "its INSERTs name different columns: a bulk insert leaves a None out (so that a column's server default "
        "applies) and starts a new statement each time the columns left out change from one row to the next "
        "(hint 2 names the option that sends None as NULL)"
        if len(shapes) > 1
        else "hand the whole list to one statement"
    )
    raise Incorrect(f"the right {rows} orders in {sent} statements; the budget is 1: {why}")


def _check_q1(course: Course, answer: Any) -> str:
    with _fresh_copy(course) as copy:
        with copy.session() as session:
            newest = session.execute(select(func.max(Order.created_at))).scalar_one()
        for rows in order_batches(newest, course.info.rows["customers"]):
            top = _max_id(copy.engine, Order)
            done = _run(copy, answer, [dict(row) for row in rows], models=(Order,))
            written = _written(copy.engine, _ORDER_COLUMNS, top, Order.id)
            if not written:
                raise Incorrect("no order was kept: the insert needs a session.commit() after it")
            same_result(written, rows, "orders as stored")
            _no_objects(done, Order, "a bulk insert takes the dicts themselves and builds none")
            _one_commit(done)
            _one_insert(done, len(rows))
    return "two batches of new orders (60 and 25, some without a note), each in one statement and one commit."


_STARTER_Q1 = """\
def bulk_insert(session, rows):
    \"\"\"Write every order of `rows` (a list of dicts) in one INSERT statement and one commit, building no
    Order objects.\"\"\"
    ____


ex.q1.check(bulk_insert)"""


Q1 = Question(
    title="The bulk insert",
    starter=_STARTER_Q1,
    check=_check_q1,
    hints=(
        "Give the database the whole list at once, as plain dicts: no Order(...) per row, so nothing for the "
        "session to track, one statement for the batch, then one commit.",
        "Look up the ORM Bulk INSERT Statement in SQLAlchemy's ORM Querying Guide (an insert() of the mapped "
        "class executed with a list of dicts), and in the same section the execution option render_nulls.",
    ),
    solution=bulk_insert,
)


# ---------------------------------------------------------------------- q2 · delete low ratings of a category
def _check_q2(course: Course, answer: Any) -> str:
    deleted = []
    with _fresh_copy(course) as copy:
        for category in low_categories(course):  # the notebook's category, then another
            low_of_category = (
                select(Review.id)
                .join(Product, Product.id == Review.product_id)
                .where(Product.category == category, Review.rating <= 2)
            )
            doomed, before = _ids(copy, low_of_category), _ids(copy, select(Review.id))
            done = _run(copy, answer, category, models=(Review, Product))
            _judge_purge(category, doomed, before - _ids(copy, select(Review.id)), done)
            deleted.append(f"{len(doomed)} of {category!r}")
    return f"{' and '.join(deleted)} reviews deleted, each by one DELETE … WHERE, nothing loaded."


def _judge_purge(category: str, doomed: set[int], removed: set[int], done: _Run) -> None:
    if removed != doomed:
        wrong = len(removed - doomed)
        kept = len(doomed - removed)
        raise Incorrect(
            f"it removed {_plural(len(removed), 'review')}: {wrong:,} that should stay and left {kept:,} of "
            f"the {len(doomed):,} low ratings of {category!r}" + (" (was it committed?)" if not removed else "")
        )
    if done.result != len(doomed):
        raise Incorrect(
            f"the right reviews are gone, but it returned {done.result!r}: return how many were deleted, as the "
            "database counted them"
        )
    _one_commit(done)
    _no_objects(done, Review, "one DELETE … WHERE removes them without loading any")
    _within(done, 1)


_STARTER_Q2 = """\
print(f"The category: {ex.category}")


def purge_low_ratings(session, category):
    \"\"\"Delete the reviews rated 2 or less of the products in `category`, in one DELETE; commit; return how
    many were deleted.\"\"\"
    ____


ex.q2.check(purge_low_ratings)"""


Q2 = Question(
    title="Delete low ratings of a category in one statement",
    starter=_STARTER_Q2,
    check=_check_q2,
    hints=(
        "A DELETE's WHERE can hold the same conditions as a SELECT's: the category is a column of products, so "
        "pick the reviews whose product is among that category's products (a subquery), rated 2 or less. The "
        "database counts what it deleted: read it from the result instead of loading the rows.",
        "delete(Review).where(...) with Review.product_id.in_(a select of Product.id); session.execute returns "
        "a result whose rowcount is the number of rows deleted.",
    ),
    solution=purge_low_ratings,
)


# ---------------------------------------------------------------------- q3 · a price list, by primary key
def _check_q3(course: Course, answer: Any) -> str:
    lists = [dict(changes) for changes in _price_lists_at(_url(course))]  # the notebook's list, then another
    with _fresh_copy(course) as copy:
        for prices in lists:
            before = _prices(copy)
            done = _run(copy, answer, dict(prices), models=(Product,))
            _judge_prices({**before, **prices}, before, _prices(copy), done)
    sizes = " and ".join(str(len(prices)) for prices in lists)
    return f"price lists of {sizes} products, each set by primary key in one statement."


def _judge_prices(
    expected: dict[int, Decimal], before: dict[int, Decimal], after: dict[int, Decimal], done: _Run
) -> None:
    changed = [pid for pid in sorted(expected) if after.get(pid) != expected[pid]]
    if changed:
        pid = changed[0]
        raise Incorrect(
            f"{_plural(len(changed), 'product')} have the wrong price, e.g. product {pid}: {after.get(pid)}, "
            f"expected {expected[pid]}" + (" (was it committed?)" if after == before else "")
        )
    _one_commit(done)
    _no_objects(done, Product, "an UPDATE by primary key from a list of dicts loads none")
    _within(done, 1)


_STARTER_Q3 = """\
print(f"{len(ex.prices)} new prices, e.g. {dict(list(ex.prices.items())[:3])}")


def apply_price_list(session, prices):
    \"\"\"Set each product's new price ({product_id: price}) in one statement, loading no Product; commit.\"\"\"
    ____


ex.q3.check(apply_price_list)"""


Q3 = Question(
    title="A price list, by primary key",
    starter=_STARTER_Q3,
    check=_check_q3,
    hints=(
        "Each product gets its own price, so no single WHERE fits: turn the mapping into a list of changes, one "
        "per product, each with the primary key and the new value, and send the whole list in one statement.",
        "The ORM bulk UPDATE by primary key (the lesson's courier feed): update(Product) with no WHERE, executed "
        "with a list of dicts holding 'id' and 'price'.",
    ),
    solution=apply_price_list,
)


# ---------------------------------------------------------------------- q4 · an import in chunks
_CUSTOMER_COLUMNS = [
    Customer.name, Customer.email, Customer.city, Customer.address, Customer.notes, Customer.created_at,
]  # fmt: skip


def _check_q4(course: Course, answer: Any) -> str:
    customers = _new_customers()
    tried = []
    with _fresh_copy(course) as copy:
        for size in (_CHUNK_SIZE, 250):  # the lesson's size, then another: a size written into the code fails
            top = _max_id(copy.engine, Customer)
            done = _run(copy, answer, [dict(row) for row in customers], size, models=(Customer,))
            written = _written(copy.engine, _CUSTOMER_COLUMNS, top, Customer.id)
            # The next size writes the same customers again, read back above a new top: deleting these first would
            # check every order for a reference to each, a scan per customer until lesson 04's index.
            _judge_chunks(customers, size, done, written)
            tried.append(f"chunks of {size}: {_plural(math.ceil(len(customers) / size), 'commit')}")
    return f"{len(customers):,} customers, one bulk INSERT and one commit per chunk ({'; '.join(tried)})."


def _judge_chunks(customers: list[dict[str, Any]], size: int, done: _Run, written: list[dict[str, Any]]) -> None:
    chunks = math.ceil(len(customers) / size)
    if not written:
        raise Incorrect("no customer was kept: commit after each chunk")
    if len(written) != len(customers):
        raise Incorrect(
            f"{len(written):,} of the {len(customers):,} customers were kept: does the last, shorter chunk "
            "get written too?"
        )
    same_result(written, customers, "customers as stored")
    _no_objects(done, Customer, "pass each chunk of dicts to one bulk insert")
    if done.commits != chunks:
        raise Incorrect(
            f"with size={size} it committed {done.commits:,} time(s); {len(customers):,} rows in chunks of {size} "
            f"make {chunks} chunks, each its own transaction: commit after each chunk"
        )
    if len(done.statements) != chunks:
        raise Incorrect(f"it sent {len(done.statements):,} statements for {chunks} chunks: one bulk INSERT each")


_STARTER_Q4 = """\
def import_in_chunks(session, rows, size):
    \"\"\"Write `rows` (dicts of new customers) in chunks of `size`: one INSERT and one commit per chunk.\"\"\"
    ____


ex.q4.check(import_in_chunks)"""


Q4 = Question(
    title="An import in chunks",
    starter=_STARTER_Q4,
    check=_check_q4,
    hints=(
        "Walk the list a chunk at a time (the last chunk is shorter); each chunk is one bulk insert of its dicts, "
        "and its own transaction: commit after each.",
        "range(0, len(rows), size) gives each chunk's start and a slice rows[start : start + size] its rows; the "
        "statement is the bulk insert of the lesson's race, with insert(Customer).",
    ),
    solution=import_in_chunks,
)


# ---------------------------------------------------------------------- q5 · count it yourself
def _whole(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        return None
    return int(value)


def _check_q5(course: Course, answer: Any) -> str:
    reviews = _new_reviews(course)
    if not isinstance(answer, tuple | list) or len(answer) != 2 or None in map(_whole, answer):
        raise Incorrect(f"give two whole numbers, (add_all_statements, bulk_statements), not {answer!r:.60}")
    got = tuple(int(n) for n in answer)
    add_all, bulk = measured_statements(course, reviews)
    for what, given, sent in (("add_all", got[0], add_all), ("the bulk insert", got[1], bulk)):
        if given == sent:
            continue
        if given == sent + 1:
            why = "a commit is not a statement: the recorder counts what goes through cursor.execute()"
        elif {given, sent} == {1, len(reviews)}:  # one per review, or one for all: the other backend's count
            why = (
                f"measure it on {course.backend} instead of reasoning: the count depends on the backend's dialect"
            )
        else:
            why = "record the statements while that write runs, on a session of the lesson's copy"
        raise Incorrect(f"{what} sent another number of statements here than {given}: {why}")
    return (
        f"on {course.backend}, add_all sent {_plural(add_all, 'statement')} for {len(reviews)} reviews and the "
        f"bulk insert {_plural(bulk, 'statement')}. "
        + (
            "SQLAlchemy's SQLite dialect cannot match the keys a multi-row INSERT returns to the objects, so "
            "the unit of work sends an INSERT per object; on PostgreSQL it sends one."
            if add_all > 1
            else "PostgreSQL's dialect matches the keys a multi-row INSERT returns to the objects, so the unit "
            "of work folded the INSERTs into one; on SQLite it sends one per object."
        )
    )


_STARTER_Q5 = """\
# Measure on the lesson's copy (lab): how many statements does add_all send for the 300 reviews of ex.reviews
# (then a commit), and how many does one bulk insert of the same dicts send?
add_all_statements = ____
bulk_statements = ____

ex.q5.check((add_all_statements, bulk_statements))"""


_SOLUTION_Q5 = """\
with lab.record() as flushed, Session(lab.engine) as session:
    session.add_all([Review(**row) for row in ex.reviews])
    session.commit()
with lab.record() as bulk, Session(lab.engine) as session:
    session.execute(insert(Review), ex.reviews)
    session.commit()
add_all_statements = flushed.count
bulk_statements = bulk.count
"""


Q5 = Question(
    title="Count it yourself: add_all against a bulk insert",
    starter=_STARTER_Q5,
    check=_check_q5,
    hints=(
        "Run each write once on a session of the lesson's copy while a recorder listens, and read how many "
        "statements it heard; Review(**row) builds a review from one of the dicts.",
        "lab.record() is the course's recorder for the copy (a QueryRecorder: .count); wrap a Session(lab.engine) "
        "with add_all and commit in it, then another with the bulk insert of the list and commit.",
    ),
    solution=_SOLUTION_Q5,
)


# ---------------------------------------------------------------------- the race: yours beside the others
def with_yours(
    variants: Mapping[str, Callable[[], Any]],
    yours: Callable[..., Any],
    engine: Engine,
    *args: Any,
    instead: str,
) -> tuple[dict[str, Callable[[], Any]], str]:
    """The race's variants with the learner's `yours(session, *args)` as 'yours', and the best variant's name.

    While their function still holds ____, the race runs without it, and `instead` (the course's) is the best:
    said in one line, never an error.
    """
    if contains_blank(yours):
        say(
            f"Your function still has ____ in it: the race runs without it, with {instead!r} as the best.",
            "#7a6a00",
        )
        return dict(variants), instead
    names = list(variants)
    at = names.index(instead) if instead in names else len(names)
    entries = list(variants.items())
    return dict([*entries[:at], (_YOURS, in_session(engine, yours, *args)), *entries[at:]]), _YOURS


# ---------------------------------------------------------------------- improve the app: POST /orders
def stored_order(engine: Engine, order_id: int) -> dict[str, Any]:
    """An order and its lines as the database holds them (ids and time left out; no order: None)."""
    with engine.connect() as conn:
        order = conn.execute(
            select(Order.customer_id, Order.status, Order.total, Order.shipping_address, Order.note).where(
                Order.id == order_id
            )
        ).first()
        lines = conn.execute(
            select(OrderLine.product_id, OrderLine.quantity, OrderLine.unit_price)
            .where(OrderLine.order_id == order_id)
            .order_by(OrderLine.id)
        ).all()
    return {"order": None if order is None else tuple(order), "lines": [tuple(line) for line in lines]}


def order_counts(engine: Engine) -> tuple[int, int]:
    """How many orders and order lines the database holds."""
    with engine.connect() as conn:
        return (
            conn.execute(select(func.count()).select_from(Order)).scalar_one(),
            conn.execute(select(func.count()).select_from(OrderLine)).scalar_one(),
        )


def _without_identity(body: Any) -> Any:
    """An answer without what differs between two placements of the same order: its id and its time."""
    if isinstance(body, dict):
        return {key: value for key, value in body.items() if key not in ("id", "created_at")}
    return body


def _order_body(customer_id: int, lines: list[tuple[int, int]]) -> dict[str, Any]:
    return {"customer_id": customer_id, "lines": [{"product_id": p, "quantity": q} for p, q in lines]}


_FIRST = [(p, 1 + p % 4) for p in range(1, 11)]  # ten lines, ten products
_BIG = [(1 + (7 * i) % 20, 1 + i % 9) for i in range(30)]  # 30 lines, 20 products: some come twice
_WRITTEN_BODIES = (_order_body(5, _FIRST), _order_body(7, [(4, 2), (9, 1), (4, 1)]), _order_body(8, _BIG))
_BUDGET = 4  # statements per order, whatever its number of lines: checked with the objects (see _judge_cost)


def _calls(course: Course) -> list[Call]:
    """The requests whose answers must match the baseline's, refused ones included."""
    customers = course.info.rows["customers"]
    unknown = course.info.rows["products"] + 1_000_000  # an id no product has, well within what an id may be
    return [
        Call("/orders", "POST", _order_body(1, [(3, 2), (7, 1)])),
        Call("/orders", "POST", _order_body(customers, [(5, 1), (5, 4), (2, 3)])),  # a product twice
        Call("/orders", "POST", _order_body(2, _BIG)),
        Call("/orders", "POST", _order_body(3, [(1, 1), (unknown, 2)])),  # 422: the last line's product
        Call("/orders", "POST", _order_body(customers + 1_000_000, [(1, 1)])),  # 422: no such customer
        Call("/orders", "POST", _order_body(4, [(1, 0)])),  # 400: a quantity of zero
    ]


def _place(app: Flask, body: dict[str, Any]) -> tuple[Any, int, int]:
    """POST one order; the response, its commits and the OrderLine objects built while it ran."""
    with count_commits(app.extensions["engine"]) as commits, objects_built(OrderLine) as built:
        response = app.test_client().post("/orders", json=body)
    return response, commits.count, built.count


def _written_and_committed(mine: Flask, *, unknown_product: int) -> str:
    """The orders the learner's endpoint writes, and what each costs, against the baseline's."""
    engine: Engine = mine.extensions["engine"]
    baseline = create_app({"DATABASE_URL": mine.config["DATABASE_URL"], "CACHE_TYPE": "SimpleCache"})
    sent = []
    try:
        for body in _WRITTEN_BODIES:
            got, commits, lines_built = _place(mine, body)
            expected, baseline_commits, _ = _place(baseline, body)
            if got.status_code != 201:
                raise Incorrect(f"an order of {len(body['lines'])} lines answered {got.status_code}, not 201")
            same_result(
                stored_order(engine, got.get_json()["id"]),
                stored_order(engine, expected.get_json()["id"]),
                "order as stored",
            )
            sent.append(int(got.headers["X-Statements"]))
            _judge_cost(len(body["lines"]), sent[-1], commits, lines_built)
        _refused_leaves_nothing(mine, _order_body(6, [*_FIRST[:5], (unknown_product, 1)]))
    finally:
        baseline.extensions["engine"].dispose()
    return (
        f"Your endpoint stores the same orders and lines as the baseline with {max(sent)} statements (budget "
        f"{_BUDGET}) and 1 commit each, no OrderLine object built, for orders of "
        f"{', '.join(str(len(body['lines'])) for body in _WRITTEN_BODIES)} lines (the baseline: "
        f"{expected.headers['X-Statements']} statements and {baseline_commits} commits for the last one)."
    )


def _judge_cost(lines: int, statements: int, commits: int, lines_built: int) -> None:
    """What a right order may cost: no OrderLine objects (first: on SQLite they show as statements), then the
    statement budget, then one commit."""
    if lines_built:
        raise Incorrect(
            f"the right order of {lines} lines in {statements} statements here, but it built "
            f"{_plural(lines_built, 'OrderLine object')}: SQLAlchemy writes new objects in one INSERT only "
            "where it can match the keys it gets back to the objects (PostgreSQL), one INSERT per object on "
            "SQLite; write the lines as one bulk insert of dicts, one statement on every backend"
        )
    if statements > _BUDGET:
        raise Incorrect(f"the right order of {lines} lines in {statements} statements; the budget is {_BUDGET}")
    if commits != 1:
        raise Incorrect(
            f"the right order, committed {commits} times: write the order and its lines, then commit once"
        )


def _refused_leaves_nothing(mine: Flask, refused_body: dict[str, Any]) -> None:
    engine: Engine = mine.extensions["engine"]
    before = order_counts(engine)
    mine.test_client().post("/orders", json=refused_body)
    left = [a - b for a, b in zip(order_counts(engine), before, strict=True)]
    if any(left):
        raise Incorrect(
            f"an order refused for an unknown product left {left[0]} order(s) and {left[1]} line(s) "
            "behind: check every product before writing anything"
        )


IMPROVE_SOLUTION = """\
my_views = Blueprint("my_views", __name__)


@my_views.post("/orders")
def place_order():
    wanted = order_request()
    session = get_session()
    address = session.scalar(select(Customer.address).where(Customer.id == wanted.customer_id))
    if address is None:
        unknown_customer(wanted.customer_id)
    in_order = select(Product.id, Product.price).where(Product.id.in_(wanted.product_ids))
    prices = dict(session.execute(in_order).all())  # every price in one SELECT … IN
    for line in wanted.lines:
        if line.product_id not in prices:
            unknown_product(line.product_id)
    created_at = placed_at()
    total = sum((line.quantity * prices[line.product_id] for line in wanted.lines), Decimal(0))
    order = {"customer_id": wanted.customer_id, "status": "pending", "created_at": created_at, "total": total,
             "shipping_address": address, "note": None}
    order_id = session.execute(insert(Order).values(**order).returning(Order.id)).scalar_one()
    lines = [
        {"order_id": order_id, "product_id": line.product_id, "quantity": line.quantity,
         "unit_price": prices[line.product_id]}
        for line in wanted.lines
    ]
    session.execute(insert(OrderLine), lines)  # every line in one bulk INSERT
    session.commit()  # once, with everything checked
    return order_json(order_id, wanted, prices, created_at=created_at, total=total), 201
"""


def improve_task(course: Course) -> AppTask:
    """Improve the app: POST /orders in at most four statements and one commit, its lines as one bulk INSERT."""
    return AppTask(
        lesson="08",
        endpoint="place_order",
        rule="/orders",
        method="POST",
        calls=_calls(course),
        timed=Call("/orders", "POST", _WRITTEN_BODIES[0]),
        budget=None,  # _judge_cost holds each order to _BUDGET, once it has checked that no line was an object
        hint_text=(
            "Four statements whatever the number of lines: the customer's address, every price in one SELECT … "
            "IN, the order with its new id given back by the same statement, every line in one bulk INSERT of "
            "dicts; one commit at the end, once everything is checked.",
            "A select of Product.id and Product.price filtered with in_() on wanted.product_ids; insert(Order) "
            "with values() and returning(Order.id), read with scalar_one() (the lesson's RETURNING cell); "
            "insert(OrderLine) executed with a list of dicts (exercise 1's bulk insert).",
        ),
        course=course,
        same=_without_identity,
        extra=partial(_written_and_committed, unknown_product=course.info.rows["products"] + 1_000_000),
        writes=True,
        solution_text=IMPROVE_SOLUTION,
    )


# ---------------------------------------------------------------------- the exercises
@dataclass(frozen=True)
class Lesson08Exercises:
    """Lesson 08's exercises, bound to its database, and the data they write."""

    q1: Exercise
    q2: Exercise
    q3: Exercise
    q4: Exercise
    q5: Exercise
    improve: AppTask
    reviews: list[dict[str, Any]] = field(repr=False)
    customers: list[dict[str, Any]] = field(repr=False)
    prices: dict[int, Decimal] = field(repr=False)
    category: str
    chunk_size: int = _CHUNK_SIZE
    reference_bulk_insert: Callable[[Session, list[dict[str, Any]]], None] = (
        bulk_insert  # q1's, raced as the course's
    )


def exercises(course: Course) -> Lesson08Exercises:
    """The lesson's exercises, bound to its database."""
    return Lesson08Exercises(
        q1=Q1.bind(course),
        q2=Q2.bind(course),
        q3=Q3.bind(course),
        q4=Q4.bind(course),
        q5=Q5.bind(course),
        improve=improve_task(course),
        reviews=_new_reviews(course),
        customers=_new_customers(),
        prices=_price_list(course),
        category=low_categories(course)[0],
    )

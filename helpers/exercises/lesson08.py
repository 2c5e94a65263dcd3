"""Exercises for lesson 08 · Batch operations: each check runs the answer on a fresh private copy.

An answer is a function of an ORM `Session` (and the task's data) that writes. The check runs it on a copy of
the dataset, reads back what it wrote and compares that with what the reference writes, then counts what it
cost: statements, commits, and ORM objects built (a bulk statement builds none). The copy is removed after.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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
from ..measure.recorder import count_commits, objects_built, record
from ..shop.app import create_app
from ..shop.models import Customer, Order, OrderLine, Product, Review
from .app_task import AppTask, Call
from .core import Exercise, Incorrect, Question, same_result

__all__ = [
    "Q1",
    "Q2",
    "Q3",
    "Q4",
    "STARTER_Q1",
    "STARTER_Q2",
    "STARTER_Q3",
    "STARTER_Q4",
    "Lesson08Exercises",
    "apply_price_list",
    "exercises",
    "import_in_chunks",
    "import_reviews",
    "improve_task",
    "order_counts",
    "purge_low_ratings",
    "stored_order",
]

_CENT = Decimal("0.01")
_CHUNK_SIZE = 500  # q4: rows per statement and per commit


# ---------------------------------------------------------------------- reference solutions
def import_reviews(session: Session, rows: list[dict[str, Any]]) -> None:
    """Reference for q1: every review in one bulk INSERT, no ORM objects, one commit."""
    session.execute(insert(Review), rows)
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


# ---------------------------------------------------------------------- the tasks' data (seeded)
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
    return dict(_price_list_at(_url(course)))


def _busiest_low_category(course: Course) -> str:
    """The category with the most 1- and 2-star reviews (ties: alphabetical)."""
    return _busiest_low_category_at(_url(course))


def _url(course: Course) -> str:
    return course.url.render_as_string(hide_password=False)


@lru_cache(maxsize=8)
def _price_list_at(url: str, n: int = 200) -> tuple[tuple[int, Decimal], ...]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            query = select(Product.id, Product.price).where(Product.id <= 2 * n, Product.id % 2 == 1)
            return tuple((pid, (price * Decimal("1.10")).quantize(_CENT)) for pid, price in conn.execute(query))
    finally:
        engine.dispose()


@lru_cache(maxsize=8)
def _busiest_low_category_at(url: str) -> str:
    low = func.count(Review.id)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return str(
                conn.scalar(
                    select(Product.category)
                    .join(Review, Review.product_id == Product.id)
                    .where(Review.rating <= 2)
                    .group_by(Product.category)
                    .order_by(low.desc(), Product.category)
                    .limit(1)
                )
            )
    finally:
        engine.dispose()


# ---------------------------------------------------------------------- running an answer on a copy
@dataclass
class _Run:
    """What an answer did on a copy: its return value and what it cost."""

    result: Any
    statements: int
    commits: int
    objects: int


@contextmanager
def _fresh_copy(course: Course) -> Iterator[Course]:
    """A private copy of the dataset for one check, removed afterwards."""
    copy = course.private_copy("exercise07")
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
    return _Run(result, statements.count, commits.count, objects.count)


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
    if done.statements > budget:
        raise Incorrect(f"the right rows in {done.statements:,} statements; the budget is {budget}")


# ---------------------------------------------------------------------- q1 · import reviews in one statement
_REVIEW_COLUMNS = [Review.product_id, Review.customer_id, Review.rating, Review.body, Review.created_at]


def _check_q1(course: Course, answer: Any) -> str:
    reviews = _new_reviews(course)
    with _fresh_copy(course) as copy:
        top = _max_id(copy.engine, Review)
        done = _run(copy, answer, [dict(row) for row in reviews], models=(Review,))
        written = _written(copy.engine, _REVIEW_COLUMNS, top, Review.id)
    if not written:
        raise Incorrect("no review was kept: the insert needs a session.commit() after it")
    same_result(written, reviews, "reviews as stored")
    _one_commit(done)
    _no_objects(
        done, Review, "pass the dicts themselves to session.execute(insert(Review), rows), which builds none"
    )
    _within(done, 1)
    return f"{len(reviews)} reviews in {_plural(done.statements, 'statement')} and one commit, no objects built."


STARTER_Q1 = """\
def import_reviews(session, rows):
    ____


ex.q1.check(import_reviews)"""


Q1 = Question(
    title="Import reviews in one statement",
    starter=STARTER_Q1,
    check=_check_q1,
    hints=(
        "Pass the whole list of dicts to one session.execute(insert(Review), rows), then commit once. "
        "No Review(...) objects: that is what makes it a bulk insert.",
    ),
    solution=import_reviews,
)


# ---------------------------------------------------------------------- q2 · delete low ratings of a category
def _check_q2(course: Course, answer: Any) -> str:
    category = _busiest_low_category(course)
    low_of_category = (
        select(Review.id)
        .join(Product, Product.id == Review.product_id)
        .where(Product.category == category, Review.rating <= 2)
    )
    with _fresh_copy(course) as copy:
        doomed, before = _ids(copy, low_of_category), _ids(copy, select(Review.id))
        done = _run(copy, answer, category, models=(Review, Product))
        after = _ids(copy, select(Review.id))
    removed = before - after
    if removed != doomed:
        wrong = len(removed - doomed)
        kept = len(doomed - removed)
        raise Incorrect(
            f"it removed {_plural(len(removed), 'review')}: {wrong:,} that should stay and left {kept:,} of "
            f"the {len(doomed):,} low ratings of {category!r}" + (" (was it committed?)" if not removed else "")
        )
    if done.result != len(doomed):
        raise Incorrect(
            f"the right reviews are gone, but it returned {done.result!r}: return how many were deleted "
            "(the result's rowcount)"
        )
    _one_commit(done)
    _no_objects(done, Review, "one DELETE … WHERE removes them without loading any")
    _within(done, 1)
    return f"{len(doomed)} reviews deleted by one DELETE … WHERE, nothing loaded."


STARTER_Q2 = """\
def purge_low_ratings(session, category):
    ____


ex.q2.check(purge_low_ratings)"""


Q2 = Question(
    title="Delete low ratings of a category in one statement",
    starter=STARTER_Q2,
    check=_check_q2,
    hints=(
        "delete(Review).where(...) takes the same conditions as a select: the product's category is in "
        "another table, so compare Review.product_id with a subquery, "
        "select(Product.id).where(Product.category == category), using .in_(...). "
        "session.execute(...) returns a result whose rowcount is the number deleted.",
    ),
    solution=purge_low_ratings,
)


# ---------------------------------------------------------------------- q3 · a price list, by primary key
def _check_q3(course: Course, answer: Any) -> str:
    prices = _price_list(course)
    with _fresh_copy(course) as copy:
        before = _prices(copy)
        done = _run(copy, answer, dict(prices), models=(Product,))
        after = _prices(copy)
    expected = {**before, **prices}
    changed = [pid for pid in sorted(expected) if after.get(pid) != expected[pid]]
    if changed:
        pid = changed[0]
        raise Incorrect(
            f"{_plural(len(changed), 'product')} have the wrong price, e.g. product {pid}: "
            f"{after.get(pid)}, expected {expected[pid]}" + (" (was it committed?)" if after == before else "")
        )
    _one_commit(done)
    _no_objects(done, Product, "an UPDATE by primary key from a list of dicts loads none")
    _within(done, 1)
    return f"{len(prices)} prices set by primary key in {_plural(done.statements, 'statement')}."


STARTER_Q3 = """\
def apply_price_list(session, prices):
    ____


ex.q3.check(apply_price_list)"""


Q3 = Question(
    title="A price list, by primary key",
    starter=STARTER_Q3,
    check=_check_q3,
    hints=(
        "update(Product) with no WHERE, executed with a list of dicts that each hold the primary key "
        "('id') and the new 'price', is SQLAlchemy's bulk UPDATE by primary key.",
    ),
    solution=apply_price_list,
)


# ---------------------------------------------------------------------- q4 · an import in chunks
_CUSTOMER_COLUMNS = [
    Customer.name, Customer.email, Customer.city, Customer.address, Customer.notes, Customer.created_at,
]  # fmt: skip


def _check_q4(course: Course, answer: Any) -> str:
    customers = _new_customers()
    chunks = math.ceil(len(customers) / _CHUNK_SIZE)
    with _fresh_copy(course) as copy:
        top = _max_id(copy.engine, Customer)
        done = _run(copy, answer, [dict(row) for row in customers], _CHUNK_SIZE, models=(Customer,))
        written = _written(copy.engine, _CUSTOMER_COLUMNS, top, Customer.id)
    if not written:
        raise Incorrect("no customer was kept: commit after each chunk")
    if len(written) != len(customers):
        raise Incorrect(
            f"{len(written):,} of the {len(customers):,} customers were kept: does the last, shorter chunk "
            "get written too?"
        )
    same_result(written, customers, "customers as stored")
    _no_objects(done, Customer, "pass each chunk of dicts to session.execute(insert(Customer), chunk)")
    if done.commits != chunks:
        raise Incorrect(
            f"it committed {done.commits:,} time(s); {len(customers):,} rows in chunks of {_CHUNK_SIZE} "
            f"make {chunks} chunks, each its own transaction: commit after each chunk"
        )
    if done.statements != chunks:
        raise Incorrect(f"it sent {done.statements:,} statements for {chunks} chunks: one bulk INSERT each")
    return f"{len(customers):,} customers in {chunks} chunks: {chunks} statements, {chunks} commits."


STARTER_Q4 = """\
def import_in_chunks(session, rows, size):
    ____


ex.q4.check(import_in_chunks)"""


Q4 = Question(
    title="An import in chunks",
    starter=STARTER_Q4,
    check=_check_q4,
    hints=(
        "Loop over range(0, len(rows), size), take rows[start : start + size] (the last slice is shorter), "
        "and run one bulk insert and one commit per slice.",
    ),
    solution=import_in_chunks,
)


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
_WRITTEN_BODY = _order_body(5, _FIRST)


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


def _written_and_committed(mine: Flask, *, unknown_product: int) -> str:
    """The order the learner's endpoint writes, and what it costs, against the baseline's."""
    engine: Engine = mine.extensions["engine"]
    baseline = create_app({"DATABASE_URL": mine.config["DATABASE_URL"], "CACHE_TYPE": "SimpleCache"})
    baseline_engine: Engine = baseline.extensions["engine"]
    try:
        with count_commits(engine) as commits:
            got = mine.test_client().post("/orders", json=_WRITTEN_BODY)
        with count_commits(baseline_engine) as baseline_commits:
            expected = baseline.test_client().post("/orders", json=_WRITTEN_BODY)
        if got.status_code != 201:
            raise Incorrect(f"a ten-line order answered {got.status_code}, not 201")
        same_result(
            stored_order(engine, got.get_json()["id"]),
            stored_order(engine, expected.get_json()["id"]),
            "order as stored",
        )
        if commits.count != 1:
            raise Incorrect(
                f"the right order, committed {commits.count} times: write the order and all its lines, "
                "then commit once"
            )
        _refused_leaves_nothing(mine, _order_body(6, [*_FIRST[:5], (unknown_product, 1)]))
    finally:
        baseline_engine.dispose()
    return (
        f"Your endpoint stores the same order and lines as the baseline with "
        f"{got.headers['X-Statements']} statements and 1 commit (the baseline: "
        f"{expected.headers['X-Statements']} statements and {baseline_commits.count} commits)."
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


def improve_task(course: Course) -> AppTask:
    """Improve the app: POST /orders in at most four statements and one commit."""
    return AppTask(
        lesson="08",
        endpoint="place_order",
        rule="/orders",
        method="POST",
        calls=_calls(course),
        timed=Call("/orders", "POST", _WRITTEN_BODY),
        budget=4,
        hint_text=(
            "Ask for every price at once: dict(session.execute(select(Product.id, Product.price)"
            ".where(Product.id.in_(wanted.product_ids))).all()). Insert the order with "
            "session.execute(insert(Order).values(...).returning(Order.id)).scalar_one(), then every line in one "
            "session.execute(insert(OrderLine), [{...}, ...]), and commit once at the end."
        ),
        course=course,
        same=_without_identity,
        extra=partial(_written_and_committed, unknown_product=course.info.rows["products"] + 1_000_000),
        writes=True,
    )


# ---------------------------------------------------------------------- the exercises
@dataclass(frozen=True)
class Lesson08Exercises:
    """Lesson 08's exercises, bound to its database, and the data they write."""

    q1: Exercise
    q2: Exercise
    q3: Exercise
    q4: Exercise
    improve: AppTask
    reviews: list[dict[str, Any]]
    customers: list[dict[str, Any]]
    prices: dict[int, Decimal]
    category: str
    chunk_size: int = _CHUNK_SIZE


def exercises(course: Course) -> Lesson08Exercises:
    """The lesson's exercises, bound to its database."""
    return Lesson08Exercises(
        q1=Q1.bind(course),
        q2=Q2.bind(course),
        q3=Q3.bind(course),
        q4=Q4.bind(course),
        improve=improve_task(course),
        reviews=_new_reviews(course),
        customers=_new_customers(),
        prices=_price_list(course),
        category=_busiest_low_category(course),
    )

"""Exercises for lesson 02 · Projection, and its "improve the app" task: the customer page."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import Session, load_only

from ..course import Course
from ..measure.recorder import QueryRecorder, bytes_fetched, record, rows_fetched
from ..shop.models import Customer, Order, Product
from ..shop.params import ID, MAX_ID
from ..topics.profiling import one_line
from .app_task import AppTask, Call
from .core import Exercise, Incorrect, Question, counting, same_result, within_budget

__all__ = [
    "Q1",
    "Q2",
    "Q3",
    "STARTER_Q1",
    "STARTER_Q2",
    "STARTER_Q3",
    "Lesson02Exercises",
    "customers_in_city",
    "exercises",
    "improve_task",
    "note_previews",
    "product_cards",
]

# Columns a customer list has no use for (q1), and the wide ones the customer page must not read (improve).
_WIDE_COLUMNS = ("customers.address", "customers.notes", "customers.email", "customers.created_at")
_PAGE_WIDE_COLUMNS = ("address", "notes", "shipping_address", "note")
_CARD_COLUMNS = {"id", "name", "price"}  # what a product card shows (q2)
_PREVIEW = 40  # characters of a customer's notes shown in a list (q3)
# The improve task's "busy" customer has the most orders up to this many: the baseline page runs one lazy load
# per order, each reading all of order_lines until lesson 04's index, so the check stays quick at every size.
_BUSY_ORDERS = 20


# ---------------------------------------------------------------- references
def customers_in_city(session: Session, city: str) -> list[Any]:
    """Reference for q1: (id, name, city) of a city's customers, by id, selecting only those columns."""
    query = select(Customer.id, Customer.name, Customer.city).where(Customer.city == city).order_by(Customer.id)
    return list(session.execute(query).all())


def product_cards(session: Session, category: str) -> list[Product]:
    """Reference for q2: a category's products as objects with id, name and price loaded; anything else raises."""
    query = (
        select(Product)
        .options(load_only(Product.id, Product.name, Product.price, raiseload=True))
        .where(Product.category == category)
        .order_by(Product.id)
    )
    return list(session.scalars(query))


def note_previews(session: Session, city: str) -> list[Any]:
    """Reference for q3: a city's customers with the first 40 characters of their notes, cut by the database."""
    preview = func.substr(Customer.notes, 1, _PREVIEW).label("preview")
    query = select(Customer.id, Customer.name, preview).where(Customer.city == city).order_by(Customer.id)
    return list(session.execute(query).all())


# ---------------------------------------------------------------- reading the SQL an answer sent
def _ordered_by_id(sql: str, table: str) -> bool:
    """Whether the statement ends with ORDER BY <table>.id (ascending), the order the task asks for."""
    return re.search(rf"\bORDER BY {table}\.id( ASC)?( LIMIT\b.*| OFFSET\b.*)?$", one_line(sql)) is not None


def _selected_columns(sql: str, table: str) -> set[str]:
    """The columns of `table` named between SELECT and FROM."""
    select_list = one_line(sql).split(" FROM ", 1)[0]
    return set(re.findall(rf"\b{table}\.(\w+)", select_list))


def _one_ordered_statement(rec: QueryRecorder, table: str) -> str:
    """The one statement an answer may send, ordered by the database by `table`.id; its SQL."""
    within_budget(rec, 1)
    sql = rec.statements[0].sql
    if not _ordered_by_id(sql, table):
        raise Incorrect(
            f"the SELECT has no ORDER BY {table}.id: without one the database may return rows in any order "
            "(SQLite happens to follow the table, PostgreSQL need not), so let it order them with .order_by(...)"
        )
    return sql


def _wide_in(sql: str) -> list[str]:
    """The wide columns (of any table or alias) a statement reads, and '*' when it selects every column."""
    sql = one_line(sql)
    found = [f"{table}.{column}" for table, column in re.findall(r"\b(\w+)\.(\w+)\b", sql)
             if column in _PAGE_WIDE_COLUMNS]  # fmt: skip
    if "*" in re.sub(r"\bcount\(\*\)", "", sql, flags=re.IGNORECASE):
        found.append("*")
    return list(dict.fromkeys(found))


# ---------------------------------------------------------------- q1: three columns, ordered by the database
def _check_q1(course: Course, answer: Any) -> str:
    with course.session() as session:
        expected = customers_in_city(session, "Lisbon")
    with course.session() as session, counting(course.engine) as rec:
        got = answer(session, "Lisbon")
    sql = _one_ordered_statement(rec, "customers")
    same_result(got, expected)
    loaded = [column for column in _WIDE_COLUMNS if re.search(rf"\b{re.escape(column)}\b", sql)]
    if loaded:
        raise Incorrect(
            f"the right rows, but the SELECT still reads {', '.join(loaded)}: select only three columns"
        )
    fetched = rows_fetched(course.engine, rec)
    if fetched > len(expected):
        raise Incorrect(
            f"the right rows, but {fetched:,} came back from the database for {len(expected)}: "
            "filter in the SELECT with .where(...)"
        )
    return f"{len(got)} customers in one statement that reads three columns, ordered by the database."


# ---------------------------------------------------------------- q2: objects that refuse to lazy-load
def _busiest_category(course: Course) -> str:
    """The category with the most products (the first by name among ties): the one q2 asks for."""
    with course.session() as session:
        category = session.scalar(
            select(Product.category)
            .group_by(Product.category)
            .order_by(func.count().desc(), Product.category)
            .limit(1)
        )
    return str(category)


def _expect_products(got: Any) -> None:
    if not isinstance(got, list | tuple) or not all(isinstance(p, Product) for p in got):
        raise Incorrect(
            "return a list of Product objects: the page's template reads them as objects "
            f"(got {type(got).__name__}{' of ' + type(got[0]).__name__ if got else ''})"
        )


def _expect_card_columns_only(sql: str) -> None:
    extra = sorted(_selected_columns(sql, "products") - _CARD_COLUMNS)
    if extra:
        columns = ", ".join(f"products.{c}" for c in extra)
        raise Incorrect(f"the SELECT also reads {columns}: load only what a card shows (id, name, price)")


def _read_cards(course: Course, got: list[Product]) -> list[tuple[Any, ...]]:
    """Each card's (id, name, price), read from the objects: loaded, so without a statement or an error."""
    try:
        with counting(course.engine) as touched:
            cards = [(p.id, p.name, p.price) for p in got]
    except InvalidRequestError:
        raise Incorrect("reading id, name or price raised: load all three of them") from None
    if touched.count:
        raise Incorrect(
            f"reading id, name and price ran {touched.count} more statement{'s' * (touched.count != 1)}: "
            "load all three of them"
        )
    return cards


def _expect_description_refused(course: Course, product: Product) -> None:
    with counting(course.engine) as touched:
        try:
            _ = product.description
            refused = False
        except InvalidRequestError:
            refused = True
    if not refused:
        raise Incorrect(
            f"reading product.description quietly ran {touched.count} statement: add raiseload=True, so a "
            "template that reads an unloaded column fails in your tests instead of querying once per row"
        )


def _check_q2(course: Course, answer: Any) -> str:
    category = _busiest_category(course)
    with course.session() as session:
        expected = [(p.id, p.name, p.price) for p in product_cards(session, category)]
    with course.session() as session:
        with counting(course.engine) as rec:
            got = answer(session, category)
        _expect_products(got)
        _expect_card_columns_only(_one_ordered_statement(rec, "products"))
        same_result(_read_cards(course, got), expected)
        _expect_description_refused(course, got[0])
    return (
        f"{len(got)} {category} products in one statement that reads id, name and price; reading anything "
        "else raises."
    )


# ---------------------------------------------------------------- q3: an expression in the SELECT
def _check_q3(course: Course, answer: Any) -> str:
    with course.session() as session, counting(course.engine) as reference:
        expected = note_previews(session, "Porto")
    with course.session() as session, counting(course.engine) as rec:
        got = answer(session, "Porto")
    _one_ordered_statement(rec, "customers")
    same_result(got, expected)
    moved, needed = bytes_fetched(course.engine, rec), bytes_fetched(course.engine, reference)
    if moved > needed * 1.1:
        raise Incorrect(
            f"the right previews, but {moved:,} bytes came back from the database for {needed:,} bytes of "
            "answer: cut the notes in the SELECT (func.substr), not in Python"
        )
    whole_notes = select(Customer.id, Customer.name, Customer.notes).where(Customer.city == "Porto")
    with course.session() as session, counting(course.engine) as whole:
        session.execute(whole_notes.order_by(Customer.id)).all()
    read_whole = bytes_fetched(course.engine, whole)
    return (
        f"{len(got)} previews in one statement: {moved:,} bytes came back, against {read_whole:,} with the "
        f"notes read whole ({read_whole / max(moved, 1):.0f}×)."
    )


# ---------------------------------------------------------------- the questions
STARTER_Q1 = """\
def city_customers(session, city):
    return ____


ex.q1.check(city_customers)"""

STARTER_Q2 = """\
def product_cards(session, category):
    return ____


ex.q2.check(product_cards)"""

STARTER_Q3 = """\
def note_previews(session, city):
    return ____


ex.q3.check(note_previews)"""

Q1 = Question(
    title="Customers of a city, three columns",
    starter=STARTER_Q1,
    check=_check_q1,
    hints=(
        "select(Customer.id, Customer.name, Customer.city) returns rows, not objects; "
        "add .where(...) and .order_by(Customer.id), then session.execute(...).all().",
    ),
    solution=customers_in_city,
)

Q2 = Question(
    title="Product cards that refuse to lazy-load",
    starter=STARTER_Q2,
    check=_check_q2,
    hints=(
        "select(Product) with .options(load_only(Product.id, Product.name, Product.price, raiseload=True)), "
        ".where(Product.category == category) and .order_by(Product.id); session.scalars(...) returns the "
        "objects.",
    ),
    solution=product_cards,
)

Q3 = Question(
    title="Note previews cut by the database",
    starter=STARTER_Q3,
    check=_check_q3,
    hints=(
        "A SQL expression can be selected like a column: func.substr(Customer.notes, 1, 40).label('preview') "
        "(SQL counts characters from 1). Select it with Customer.id and Customer.name, filter on the city, "
        "order by id.",
    ),
    solution=note_previews,
)


# ---------------------------------------------------------------- the improve-the-app task
def _task_customers(course: Course) -> dict[str, int | None]:
    """The customers the improve task asks for: a busy one, an ordinary one, one without orders."""
    orders = func.count().label("orders")
    per_customer = select(Order.customer_id, orders).group_by(Order.customer_id).subquery("per_customer")
    average = course.info.rows["orders"] / course.info.rows["customers"]
    with course.session() as session:
        busy = session.scalar(
            select(per_customer.c.customer_id)
            .where(per_customer.c.orders <= _BUSY_ORDERS)
            .order_by(per_customer.c.orders.desc(), per_customer.c.customer_id)
            .limit(1)
        )
        ordinary = session.scalar(
            select(per_customer.c.customer_id)
            .order_by(func.abs(per_customer.c.orders - average), per_customer.c.customer_id)
            .limit(1)
        )
        without_orders = session.scalar(
            select(func.min(Customer.id)).where(Customer.id.not_in(select(Order.customer_id)))
        )
    return {"busy": busy, "ordinary": ordinary, "without orders": without_orders}


def _reads_no_wide_column(customers: Sequence[int], requests: int, app: Flask) -> str:
    """Record what the learner's page sends for `customers`: no SELECT may read a wide column."""
    engine, client = app.extensions["engine"], app.test_client()
    ran: list[str] = []
    for customer in customers:
        with record(engine) as rec:
            orders = len(client.get(f"/customers/{customer}").get_json()["orders"])
        ran.append(f"{rec.count} for customer {customer} and their {orders} order{'s' * (orders != 1)}")
        for statement in rec.statements:
            wide = _wide_in(statement.sql)
            if wide:
                read = "every column (SELECT *)" if wide == ["*"] else ", ".join(c for c in wide if c != "*")
                raise Incorrect(
                    f"the right answers, but GET /customers/{customer} still reads {read}: select only the "
                    "columns the page returns"
                )
    return (
        f"Your customer page gives the baseline's answers to {requests} requests, and none of its SELECTs "
        f"reads a wide column (statements: {', '.join(ran)})."
    )


def improve_task(course: Course) -> AppTask:
    """Rewrite the customer page so that it reads only the columns it returns."""
    customers = _task_customers(course)
    last = course.info.rows["customers"]
    calls = [Call(f"/customers/{i}") for i in dict.fromkeys(i for i in customers.values() if i is not None)] + [
        Call(f"/customers/{last + 1}"),  # missing: 404
        Call(f"/customers/{MAX_ID}"),  # the largest id the route takes, missing too
        Call(f"/customers/{10**12}"),  # larger than any id: no route matches, 404 before any SQL
    ]
    watched = tuple(dict.fromkeys(i for i in (customers["busy"], customers["ordinary"]) if i is not None))
    return AppTask(
        lesson="02",
        endpoint="customer_page",
        rule=f"/customers/<{ID}:customer_id>",
        calls=calls,
        timed=Call("/customers/1"),  # lesson 01's example, so its stored baseline is the same request
        budget=None,  # the per-order line counts are lesson 03's N+1: this task checks what is read, not how often
        hint_text=(
            "session.execute(select(Customer.id, Customer.name, Customer.email, Customer.city).where(Customer.id "
            "== customer_id)).first() is one row, or None. select(Order.id, Order.status, Order.created_at, "
            "Order.total).where(Order.customer_id == customer_id).order_by(Order.created_at.desc(), "
            "Order.id.desc()) gives the orders, newest first. For the lines, session.scalar(select(func.count())"
            ".where(OrderLine.order_id == order.id)) counts them without loading them."
        ),
        course=course,
        extra=partial(_reads_no_wide_column, watched, len(calls)),
    )


# ---------------------------------------------------------------- the exercises
@dataclass(frozen=True)
class Lesson02Exercises:
    """Lesson 02's exercises, bound to its database, and its improve-the-app task (the customer page)."""

    q1: Exercise
    q2: Exercise
    q3: Exercise
    improve: AppTask


def exercises(course: Course) -> Lesson02Exercises:
    """The lesson's exercises, bound to its database."""
    return Lesson02Exercises(Q1.bind(course), Q2.bind(course), Q3.bind(course), improve_task(course))

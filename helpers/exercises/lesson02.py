"""Exercises for lesson 02 · Projection, and its "improve the app" task: the customer page.

Declared here: `Q1` (your `select()` of columns, raced in the lesson's main comparison), `Q2` (how many statements
the deferred-column trap ran: a number you measure), `Q3` (product cards that refuse to lazy-load), `Q4` (note
previews cut by the database), and `improve_task(course)`. `exercises(course)` binds them to the lesson's database.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import partial
from typing import Any

from flask import Flask
from sqlalchemy import event, func, select
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import Session, load_only

from ..course import Course
from ..measure.recorder import QueryRecorder, bytes_fetched, record, rows_fetched
from ..shop.models import Customer, Order, Product
from ..shop.params import ID, MAX_ID
from ..topics.profiling import one_line
from .app_task import AppTask, Call
from .core import Incorrect, Question, counting, same_result, within_budget
from .racing import RacedExercises

__all__ = [
    "COLUMNS_REFERENCE",
    "Q1",
    "Q2",
    "Q3",
    "Q4",
    "STARTER_IMPROVE",
    "TRAP_CATEGORY",
    "Lesson02Exercises",
    "customer_columns",
    "exercises",
    "improve_task",
    "note_previews",
    "product_cards",
    "trap_statements",
]

_LIST_COLUMNS = {"id", "name", "email"}  # what the customer list of q1 shows
_CUSTOMER_COLUMNS = {"id", "name", "email", "city", "address", "notes", "created_at"}
_LIST_LENGTHS = (7, 120)  # q1 tries two list lengths: an answer hard-coded to one fails the other
_PAGE_WIDE_COLUMNS = ("address", "notes", "shipping_address", "note")
_CARD_COLUMNS = {"id", "name", "price"}  # what a product card shows (q3)
_PREVIEW = 40  # characters of a customer's notes shown in a list (q4)
_PREVIEW_CITIES = ("Porto", "Graz")  # q4 asks for two cities
TRAP_CATEGORY = "toys"  # q2: the category whose products the trap loads
COLUMNS_REFERENCE = "select(columns)"  # the course's variant in the main race
# The improve task's "busy" customer has the most orders up to this many: the baseline page runs one lazy load
# per order, each reading all of order_lines until lesson 04's index, so the check stays quick at every size.
_BUSY_ORDERS = 20


# ---------------------------------------------------------------- references
def customer_columns(session: Session, n: int) -> list[Any]:
    """Reference for q1: the first n customers' (id, name, email), three columns selected, rows not objects."""
    query = select(Customer.id, Customer.name, Customer.email).order_by(Customer.id).limit(n)
    return list(session.execute(query).all())


def trap_statements(course: Course, category: str = TRAP_CATEGORY) -> int:
    """What q2 asks for, measured: the statements a loop over `category`'s products runs when they are loaded
    with load_only(id, name) and the loop reads each one's price and description."""
    with course.session() as session, counting(course.engine) as rec:
        products = session.scalars(
            select(Product).options(load_only(Product.id, Product.name)).where(Product.category == category)
        ).all()
        _ = [(p.price, p.description) for p in products]
    return rec.count


def product_cards(session: Session, category: str) -> list[Product]:
    """Reference for q3: a category's products as objects with id, name and price loaded; anything else raises."""
    query = (
        select(Product)
        .options(load_only(Product.id, Product.name, Product.price, raiseload=True))
        .where(Product.category == category)
        .order_by(Product.id)
    )
    return list(session.scalars(query))


def note_previews(session: Session, city: str) -> list[Any]:
    """Reference for q4: a city's customers with the first 40 characters of their notes, cut by the database."""
    preview = func.substr(Customer.notes, 1, _PREVIEW).label("preview")
    query = select(Customer.id, Customer.name, preview).where(Customer.city == city).order_by(Customer.id)
    return list(session.execute(query).all())


# ---------------------------------------------------------------- reading the SQL an answer sent
def _ordered_by_id(sql: str, table: str) -> bool:
    """Whether the statement ends with ORDER BY [<table>.]id (ascending), the order the task asks for."""
    return (
        re.search(rf"\bORDER BY ({table}\.)?id( ASC)?( LIMIT\b.*| OFFSET\b.*)?$", one_line(sql), re.I) is not None
    )


def _selected_columns(sql: str, table: str, columns: set[str]) -> set[str]:
    """The `columns` of `table` named between SELECT and FROM, with or without the table's name; all of them when
    it selects `*`."""
    select_list = re.split(r"\sFROM\s", one_line(sql), maxsplit=1, flags=re.I)[0]
    if re.search(r"(^|[\s,.])\*", re.sub(r"count\(\*\)", "", select_list, flags=re.I)):
        return set(columns)
    named = set(re.findall(rf"(?:\b{table}\.|(?<![.\w]))(\w+)\b", select_list))
    return named & columns


def _one_ordered_statement(rec: QueryRecorder, table: str) -> str:
    """The one statement an answer may send, ordered by the database by `table`.id; its SQL."""
    within_budget(rec, 1)
    sql = rec.statements[0].sql
    if not _ordered_by_id(sql, table):
        raise Incorrect(
            f"the SELECT has no ORDER BY {table}.id: without one the database may return rows in any order "
            "(SQLite happens to follow the table, PostgreSQL need not), so let the database order them"
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


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'s' * (count != 1)}"


# ---------------------------------------------------------------- q1: your select() of columns
def _check_columns_at(course: Course, answer: Any, n: int) -> None:
    """The answer for a list of n customers: the reference's rows, in one statement the database filters, orders
    and limits, reading only the three columns, building no ORM objects."""
    with course.session() as session:
        expected = customer_columns(session, n)
    with course.session() as session, counting(course.engine) as rec:
        loaded: list[object] = []
        event.listen(session, "loaded_as_persistent", lambda _session, instance: loaded.append(instance))
        got = answer(session, n)
        objects = len(loaded)
    same_result(got, expected, f"result for n={n}")
    within_budget(rec, 1)
    sql = rec.statements[0].sql
    extra = sorted(_selected_columns(sql, "customers", _CUSTOMER_COLUMNS) - _LIST_COLUMNS)
    if extra:
        raise Incorrect(
            f"the right rows, but the SELECT also reads {', '.join(extra)}: select only id, name, email"
        )
    if objects:
        raise Incorrect(
            f"the right rows from the right columns, but the session now holds "
            f"{_plural(objects, 'Customer object')}"
            ": select the columns themselves, so that rows come back instead of objects"
        )
    if not _ordered_by_id(sql, "customers"):
        raise Incorrect("the SELECT has no ORDER BY customers.id: the database may return rows in any order")
    fetched = rows_fetched(course.engine, rec)
    if fetched > n:
        raise Incorrect(
            f"the right rows, but {fetched:,} came back from the database for n={n}: limit in the SELECT"
        )


def _check_columns(course: Course, answer: Any) -> str:
    lengths = [min(n, course.info.rows["customers"]) for n in _LIST_LENGTHS]
    for n in lengths:
        _check_columns_at(course, answer, n)
    return (
        f"for {' and '.join(map(str, lengths))} customers: one statement each, three columns, rows not objects, "
        "ordered and limited by the database. It races in the comparison below."
    )


# ---------------------------------------------------------------- q2: the trap, measured by you
def _check_trap_count(course: Course, answer: Any) -> str:
    if isinstance(answer, bool) or not isinstance(answer, int):
        raise Incorrect(f"state a whole number of statements (rec.count), not {type(answer).__name__}")
    measured = trap_statements(course)
    with course.session() as session:
        products = session.scalar(select(func.count()).where(Product.category == TRAP_CATEGORY)) or 0
    if answer != measured:
        why = {
            1 + products: "that is one extra statement per product, but the loop reads two deferred columns",
            2 * products: "what about the statement that loaded the list?",
            1: "the list was one statement; the loop that read price and description ran more",
        }.get(answer, "run your loop inside course.record() and read rec.count")
        raise Incorrect(f"{answer} is not what the loop ran: {why}")
    return (
        f"1 statement for the list, then one per deferred column per product: {products} {TRAP_CATEGORY} products "
        f"× 2 columns. A template that reads one more field multiplies the statements by the rows."
    )


# ---------------------------------------------------------------- q3: objects that refuse to lazy-load
def _card_categories(course: Course) -> list[str]:
    """The categories q3 asks for: the one with the most products and the one with the fewest (first by name)."""
    with course.session() as session:
        ranked = session.scalars(
            select(Product.category).group_by(Product.category).order_by(func.count().desc(), Product.category)
        ).all()
    return [ranked[0], ranked[-1]]


def _expect_products(got: Any) -> None:
    if not isinstance(got, list | tuple) or not all(isinstance(p, Product) for p in got):
        raise Incorrect(
            "return a list of Product objects: the page's template reads them as objects "
            f"(got {type(got).__name__}{' of ' + type(got[0]).__name__ if got else ''})"
        )


def _expect_card_columns_only(sql: str) -> None:
    extra = sorted(_selected_columns(sql, "products", {"category", "description"}))
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
            f"reading id, name and price ran {_plural(touched.count, 'more statement')}: load all three"
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
            f"reading product.description quietly ran {_plural(touched.count, 'statement')}: make the objects "
            "refuse, so that a template reading an unloaded column fails in your tests instead of querying per row"
        )


def _check_cards_of(course: Course, answer: Any, category: str) -> int:
    with course.session() as session:
        expected = [(p.id, p.name, p.price) for p in product_cards(session, category)]
    with course.session() as session:
        with counting(course.engine) as rec:
            got = answer(session, category)
        _expect_products(got)
        _expect_card_columns_only(_one_ordered_statement(rec, "products"))
        same_result(_read_cards(course, got), expected, f"{category} cards")
        _expect_description_refused(course, got[0])
    return len(got)


def _check_cards(course: Course, answer: Any) -> str:
    counts = {category: _check_cards_of(course, answer, category) for category in _card_categories(course)}
    listed = " and ".join(f"{n} {category}" for category, n in counts.items())
    return f"{listed} products, each in one statement that reads id, name and price; reading anything else raises."


# ---------------------------------------------------------------- q4: an expression in the SELECT
def _check_previews_of(course: Course, answer: Any, city: str) -> tuple[int, int, int]:
    """(previews, bytes the answer moved, bytes with the notes read whole) for one city."""
    with course.session() as session, counting(course.engine) as reference:
        expected = note_previews(session, city)
    with course.session() as session, counting(course.engine) as rec:
        got = answer(session, city)
    _one_ordered_statement(rec, "customers")
    same_result(got, expected, f"{city} previews")
    moved, needed = bytes_fetched(course.engine, rec), bytes_fetched(course.engine, reference)
    if moved > needed * 1.1:
        raise Incorrect(
            f"the right previews, but {moved:,} bytes came back from the database for {needed:,} bytes of "
            "answer: cut the notes in the SELECT, not in Python"
        )
    whole_notes = select(Customer.id, Customer.name, Customer.notes).where(Customer.city == city)
    with course.session() as session, counting(course.engine) as whole:
        session.execute(whole_notes.order_by(Customer.id)).all()
    return len(got), moved, bytes_fetched(course.engine, whole)


def _check_previews(course: Course, answer: Any) -> str:
    found = [_check_previews_of(course, answer, city) for city in _PREVIEW_CITIES]
    previews, moved, whole = (sum(column) for column in zip(*found, strict=True))
    return (
        f"{previews} previews of {' and '.join(_PREVIEW_CITIES)}, one statement each: {moved:,} bytes came back, "
        f"against {whole:,} with the notes read whole ({whole / max(moved, 1):.0f}×)."
    )


# ---------------------------------------------------------------- the questions
_STARTER_Q1 = '''\
def customer_columns(session, n):
    """The first n customers by id, as rows of (id, name, email): only those three columns selected, no ORM
    objects, one statement that the database orders and limits."""
    return ____


ex.q1.check(customer_columns)
# ex.q1.hint()  ex.q1.hint(2)  ex.q1.solution()'''

_STARTER_Q2 = f"""\
with course.record() as rec:
    ____  # your loop: the {TRAP_CATEGORY} products loaded with load_only(Product.id, Product.name),
    #       then each one's price and description read, as a template would
trap_statements = ____  # how many statements ran: read it off rec

ex.q2.check(trap_statements)
# ex.q2.hint()  ex.q2.hint(2)  ex.q2.solution()"""

_STARTER_Q3 = '''\
def product_cards(session, category):
    """A category's products by id, as Product objects with only id, name and price loaded, in one statement;
    reading any other attribute raises instead of running a SELECT."""
    return ____


ex.q3.check(product_cards)
# ex.q3.hint()  ex.q3.hint(2)  ex.q3.solution()'''

_STARTER_Q4 = '''\
def note_previews(session, city):
    """A city's customers by id, as rows of (id, name, preview): preview is the first 40 characters of their
    notes, cut by the database."""
    return ____


ex.q4.check(note_previews)
# ex.q4.hint()  ex.q4.hint(2)  ex.q4.solution()'''

_HINTS_Q1 = (
    "Ask for the three columns themselves instead of the Customer entity: the database then sends rows of three "
    "values and SQLAlchemy builds no objects. Let the database order by id and stop after n rows.",
    "In SQLAlchemy's ORM Querying Guide, 'Selecting ORM Entities and Attributes' shows select() of attributes; "
    "Select.order_by() and Select.limit() do the rest; session.execute(...).all() returns the rows.",
)
_HINTS_Q2 = (
    "Write the loop a template would run: load the list with only id and name, then touch the two columns it "
    "left out, inside course.record(). Count, do not compute: the recorder saw every statement.",
    "load_only() in 'Column Loading Options' (ORM Querying Guide); the recorder's count is rec.count, and "
    "rec.repeated() shows which statement shapes ran more than once.",
)
_HINTS_Q3 = (
    "Keep the objects, but load only the card's three columns, and make touching any other column an error "
    "rather than a quiet SELECT. Two categories are checked, each ordered by id.",
    "load_only() and its raiseload parameter in 'Column Loading Options' (ORM Querying Guide); "
    "session.scalars() returns the objects.",
)
_HINTS_Q4 = (
    "A SQL expression can be selected like a column: let the database cut the text, so only the preview "
    "travels. SQL counts characters from 1, not 0.",
    "func.substr() (SQLAlchemy's func namespace calls any SQL function) with .label() to name the column; "
    "where(), order_by() and session.execute(...).all() as in exercise 1.",
)

Q1 = Question("Your select() of columns", _STARTER_Q1, _check_columns, _HINTS_Q1, customer_columns)
Q2 = Question("The trap, counted", _STARTER_Q2, _check_trap_count, _HINTS_Q2, trap_statements)
Q3 = Question("Product cards that refuse to lazy-load", _STARTER_Q3, _check_cards, _HINTS_Q3, product_cards)
Q4 = Question("Note previews cut by the database", _STARTER_Q4, _check_previews, _HINTS_Q4, note_previews)


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


def _expect_no_wide_column(rec: QueryRecorder, customer: int) -> None:
    for statement in rec.statements:
        wide = _wide_in(statement.sql)
        if wide:
            read = "every column (SELECT *)" if wide == ["*"] else ", ".join(c for c in wide if c != "*")
            raise Incorrect(
                f"the right answers, but GET /customers/{customer} still reads {read}: select only the "
                "columns the page returns"
            )


def _expect_lines_counted_by_the_database(engine: Any, rec: QueryRecorder, customer: int, orders: int) -> None:
    """No statement reads order_lines without counting them, and no more rows come back than the page needs: the
    customer, each order, at most one count per order."""
    uncounted = [
        s
        for s in rec.statements
        if re.search(r"\border_lines\b", s.sql) and not re.search(r"count\(", s.sql, re.I)
    ]
    fetched, needed = rows_fetched(engine, rec), 1 + 2 * orders
    if uncounted or fetched > needed:
        what = "reads order_lines without count()" if uncounted else "fetches more rows than the page needs"
        raise Incorrect(
            f"the right answers, but GET /customers/{customer} {what}: {fetched:,} rows came back for one "
            f"customer and {_plural(orders, 'order')} (the customer, each order and each order's count make "
            f"{needed}). Let the database count the lines: one number per order, not the lines themselves"
        )


def _reads_what_it_returns(customers: Sequence[int], requests: int, app: Flask) -> str:
    """Record what the learner's page sends for `customers`: no wide column, lines counted by the database."""
    engine, client = app.extensions["engine"], app.test_client()
    ran: list[str] = []
    for customer in customers:
        with record(engine) as rec:
            orders = len(client.get(f"/customers/{customer}").get_json()["orders"])
        _expect_no_wide_column(rec, customer)
        _expect_lines_counted_by_the_database(engine, rec, customer, orders)
        ran.append(f"{rec.count} for customer {customer} and their {_plural(orders, 'order')}")
    return (
        f"Your customer page gives the baseline's answers to {requests} requests; none of its SELECTs reads a "
        f"wide column and the database counts the lines (statements: {', '.join(ran)})."
    )


STARTER_IMPROVE = '''\
from helpers.shop.kit import abort, get_session  # noqa: F401 (what your view will need, with select and func)

my_views = Blueprint("my_views", __name__)


@my_views.get(f"/customers/<{ID}:customer_id>")
def customer_page(customer_id):
    """GET /customers/<customer_id>: lesson 01's JSON, unchanged, or 404 for a missing customer: the customer's
    id, name, email and city, and their "orders", newest first, each with its id, status, created_at (ISO text),
    total (a Decimal) and number of "lines".
    Budget: no SELECT reads a wide column (customers.address, customers.notes, orders.shipping_address,
    orders.note, nor SELECT *), and the database counts the lines: none of them comes back to Python."""
    ____


ex.improve.check(my_views)
# ex.improve.hint()  ex.improve.hint(2)  ex.improve.solution()'''

_HINTS_IMPROVE = (
    "Two questions to the database instead of two objects: the customer's four columns (one row, or none: 404), "
    "then their orders' four columns, newest first. The number of lines is a count the database computes, per "
    "order or for all of them at once; the lines themselves never need to leave it.",
    "select() of columns with Result.first(); Select.order_by() with .desc() (the baseline sorts by created_at, "
    "then id); func.count() in the SQLAlchemy Unified Tutorial's 'Working with SQL Functions' and 'Aggregate "
    "functions with GROUP BY / HAVING'; lesson 01's view, shown above, for the JSON's keys.",
)


def improve_task(course: Course) -> AppTask:
    """Rewrite the customer page so that it reads only the columns it returns and lets the database count."""
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
        budget=None,  # a count per order is lesson 03's N+1: this task checks what is read, not how often
        hint_text=_HINTS_IMPROVE,
        course=course,
        extra=partial(_reads_what_it_returns, watched, len(calls)),
    )


# ---------------------------------------------------------------- the exercises
class Lesson02Exercises(RacedExercises):
    """Lesson 02's exercises, bound to its database, and its improve-the-app task (the customer page); in the main
    race your `customer_columns` runs beside the course's select(columns)."""

    reference = (COLUMNS_REFERENCE, customer_columns)


def exercises(course: Course) -> Lesson02Exercises:
    """The lesson's exercises, bound to its database."""
    q1, q2, q3, q4 = (q.bind(course) for q in (Q1, Q2, Q3, Q4))
    return Lesson02Exercises(q1, q2, q3, q4, improve_task(course))

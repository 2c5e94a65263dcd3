"""Exercises for lesson 03 · Joins and the N+1 problem, and its "improve the app" task (the order list).

Declared here: `Q1` (your page of orders with customer names without the N+1, raced in the lesson's main
comparison), `Q2` (how many statements selectinload runs for a collection: a number you measure), `Q3` (a city's
top customers, counted, ranked and cut by the database, with a tie-breaker), `Q4` (every customer of a city with
their number of reviews: the join type that keeps them all), and `improve_task(course)`. `exercises(course)` binds
them to the lesson's database.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload, selectinload

from ..course import Course
from ..db import make_engine
from ..measure.recorder import QueryRecorder, rows_fetched
from ..shop.models import Customer, Order, Review
from ..topics.joins import order_by_clause
from .app_task import AppTask
from .core import Incorrect, Question, counting, same_result, within_budget
from .order_list import order_list_task
from .racing import RacedExercises

__all__ = [
    "JOINS_REFERENCE",
    "LINES_ORDERS",
    "STARTER_IMPROVE",
    "Lesson03Exercises",
    "exercises",
    "improve_task",
    "orders_with_names",
    "q3_cities",
    "q4_cities",
    "review_counts",
    "selectin_statements",
    "top_customers",
]

JOINS_REFERENCE = "joinedload"  # the course's variant in the main race
_PAGES = (30, 300)  # q1 tries two page lengths (both under 500 customers: selectinload stays at two statements)
LINES_ORDERS = 1200  # q2: the newest orders whose lines selectinload loads
_TOP = 10  # q3: how many customers the ranking keeps
# q3: a tie-breaker must be a key no two customers share (a name is not: customers share names)
_UNIQUE_KEYS = r"(\w+\.)?(id|customer_id|email)"  # customers.id, orders.customer_id, a subquery's, a label


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'s' * (count != 1)}"


# ---------------------------------------------------------------------- q1 · the page without the N+1
def orders_with_names(session: Session, n: int) -> list[tuple[int, str]]:
    """Reference for q1: the n newest orders (highest id first) with their customer's name; the customer is
    loaded in the same statement by a LEFT OUTER JOIN (the documentation's choice for a many-to-one)."""
    newest = select(Order).options(joinedload(Order.customer)).order_by(Order.id.desc()).limit(n)
    return [(order.id, order.customer.name) for order in session.scalars(newest)]


def _check_page_of(course: Course, answer: Any, n: int) -> int:
    with course.session() as session:
        expected = orders_with_names(session, n)
    with course.session() as session, counting(course.engine) as rec:
        got = answer(session, n)
    same_result(got, expected, f"page of {n}")
    within_budget(rec, 2)
    fetched, needed = rows_fetched(course.engine, rec), 2 * n
    if fetched > needed:
        raise Incorrect(
            f"the right page of {n}, but {fetched:,} rows came back from the database: order and limit in SQL"
        )
    return rec.count


def _check_page(course: Course, answer: Any) -> str:
    pages = [min(n, course.info.rows["orders"]) for n in _PAGES]
    ran = [_check_page_of(course, answer, n) for n in pages]
    said = " and ".join(
        f"{n} orders in {_plural(count, 'statement')}" for n, count in zip(pages, ran, strict=True)
    )
    return f"{said}: no statement per customer. It races in the comparison below."


_STARTER_Q1 = '''\
def orders_with_names(session, n):
    """The n newest orders (highest id first) as (order id, customer name) pairs, in at most two statements
    whatever n is: tell the query what the loop will touch, or join and select the two columns."""
    return ____


ex.q1.check(orders_with_names)
# ex.q1.hint()  ex.q1.hint(2)  ex.q1.solution()'''

_HINTS_Q1 = (
    "The loop touches order.customer: either tell the query so, and SQLAlchemy loads the customers with the "
    "orders (one statement, or two), or ask for the two columns through a join and build no objects at all.",
    "'Relationship Loading Techniques' in the ORM documentation: joinedload() and selectinload() go in "
    "Select.options(); for columns, Select.join() along a relationship. Order by id descending, limit to n.",
)


# ---------------------------------------------------------------------- q2 · selectinload, counted by you
def selectin_statements(course: Course, n: int = LINES_ORDERS) -> int:
    """What q2 asks for, measured: the statements selectinload(Order.lines) runs for the n newest orders."""
    newest = select(Order).options(selectinload(Order.lines)).order_by(Order.id.desc()).limit(n)
    with course.session() as session, counting(course.engine) as rec:
        _ = [len(order.lines) for order in session.scalars(newest)]
    return rec.count


def _check_selectin_count(course: Course, answer: Any) -> str:
    if isinstance(answer, bool) or not isinstance(answer, int):
        raise Incorrect(f"state a whole number of statements (rec.count), not {type(answer).__name__}")
    n = min(LINES_ORDERS, course.info.rows["orders"])
    measured = selectin_statements(course, n)
    if answer != measured:
        why = {
            2: "one IN list for all of them? selectinload sends at most 500 keys per IN",
            n + 1: "that is lazy loading, one statement per order: selectinload batches them",
            measured - 1: "what about the statement that loaded the orders themselves?",
        }.get(answer, "run the page inside course.record() and read rec.count")
        raise Incorrect(f"{answer} is not what the page ran: {why}")
    return (
        f"one statement for the {n:,} orders, then their lines by IN lists of at most 500 order ids: "
        f"{measured - 1} of them. Lazy loading would have run {n:,}."
    )


_STARTER_Q2 = f"""\
with course.record() as rec:
    ____  # your page: the {LINES_ORDERS:,} newest orders with selectinload(Order.lines),
    #       then each order's len(order.lines) read
selectin_count = ____  # how many statements ran: read it off rec

ex.q2.check(selectin_count)
# ex.q2.hint()  ex.q2.hint(2)  ex.q2.solution()"""

_HINTS_Q2 = (
    "Load the page with its collection eager-loaded, "
    "touch every order's lines inside course.record(), and count: "
    "selectinload does not send every key in one statement.",
    "selectinload() in 'Relationship Loading Techniques' (and the size of its IN batches); rec.count and "
    "rec.statements after the block.",
)


# ---------------------------------------------------------------------- q3 · top customers of a city
def top_customers(session: Session, city: str) -> list[Any]:
    """Reference for q3: a city's 10 customers with the most orders, counted, ranked (ties by id) and cut by
    the database."""
    orders = func.count(Order.id).label("orders")
    query = (
        select(Customer.id, Customer.name, orders)
        .join(Customer.orders)
        .where(Customer.city == city)
        .group_by(Customer.id, Customer.name)
        .order_by(orders.desc(), Customer.id)
        .limit(_TOP)
    )
    return list(session.execute(query).all())


def _orders_per_customer(session: Session) -> dict[str, dict[int, tuple[str, int]]]:
    """Each city's customers with at least one order: {city: {id: (name, orders)}}."""
    rows = session.execute(
        select(Customer.city, Customer.id, Customer.name, func.count(Order.id))
        .join(Customer.orders)
        .group_by(Customer.city, Customer.id, Customer.name)
    ).all()
    by_city: dict[str, dict[int, tuple[str, int]]] = {}
    for city, customer, name, orders in rows:
        by_city.setdefault(city, {})[customer] = (name, orders)
    return by_city


def _tie_at_the_cut(customers: dict[int, tuple[str, int]]) -> bool:
    counts = sorted((orders for _, orders in customers.values()), reverse=True)
    return len(counts) > _TOP and counts[_TOP - 1] == counts[_TOP]


@lru_cache(maxsize=8)
def _per_customer_at(url: str) -> dict[str, dict[int, tuple[str, int]]]:
    """`_orders_per_customer` of the dataset at `url`, once per dataset: it groups every order."""
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return _orders_per_customer(session)
    finally:
        engine.dispose()


def _per_customer(course: Course) -> dict[str, dict[int, tuple[str, int]]]:
    return _per_customer_at(course.url.render_as_string(hide_password=False))


def q3_cities(course: Course) -> list[str]:
    """The two cities q3 asks about: where the tenth and eleventh customers have as many orders as each other
    (the most customers first); the tests check that the dataset has them."""
    by_city = _per_customer(course)
    ranked = sorted(by_city, key=lambda city: (not _tie_at_the_cut(by_city[city]), -len(by_city[city]), city))
    return ranked[:2]


def _expect_a_valid_ranking(got: Any, customers: dict[int, tuple[str, int]], city: str) -> None:
    """Any ten customers with the most orders, by count descending, each row (id, name, orders) true: a different
    tie-breaker picks other customers among those tied at the cut, and is right too."""
    rows = [tuple(row) for row in got] if isinstance(got, list | tuple) else []
    want = min(_TOP, len(customers))
    if len(rows) != want or any(len(row) != 3 for row in rows):
        raise Incorrect(f"return {want} rows of (customer id, name, number of orders) for {city}")
    for customer, name, orders in rows:
        if customers.get(customer) != (name, orders):
            true = customers.get(customer)
            has = f"{true[1]} orders ({true[0]})" if true else "no orders"
            raise Incorrect(f"customer {customer} of {city} has {has}, your row says {orders} ({name})")
    counts = [orders for _, _, orders in rows]
    best = sorted((orders for _, orders in customers.values()), reverse=True)[:want]
    if counts != best:
        raise Incorrect(
            f"the order counts of your {city} rows are {counts}; the ten largest, in order, are {best}"
        )


def _check_ranking_of(course: Course, answer: Any, city: str) -> str:
    with course.session() as session, counting(course.engine) as rec:
        got = answer(session, city)
    _expect_a_valid_ranking(got, _per_customer(course)[city], city)
    within_budget(rec, 1)
    fetched = rows_fetched(course.engine, rec)
    if fetched > _TOP:
        raise Incorrect(f"the right ranking, but {fetched:,} rows came back from the database: rank in SQL")
    order_by = order_by_clause(_first_sql(rec))
    keys = re.split(r",\s*", order_by)
    if len(keys) < 2 or not any(re.fullmatch(rf"{_UNIQUE_KEYS}( ASC| DESC)?", key, re.I) for key in keys[1:]):
        raise Incorrect(
            f"your ORDER BY ({order_by or 'none'}) has no tie-breaker that is unique per customer: customers "
            f"with as many orders as each other come back in any order, and {city}'s tenth place goes to either"
        )
    return order_by


def _check_ranking(course: Course, answer: Any) -> str:
    cities = q3_cities(course)
    orders_by = [_check_ranking_of(course, answer, city) for city in cities]
    return (
        f"{' and '.join(cities)}: counted, ranked and cut by the database, ten rows back each, ties broken by "
        f"ORDER BY {orders_by[0]}."
    )


def _first_sql(rec: QueryRecorder) -> str:
    return " ".join(rec.statements[0].sql.split()) if rec.statements else ""


_STARTER_Q3 = '''\
def top_customers(session, city):
    """A city's 10 customers with the most orders as (customer id, name, number of orders), most orders first,
    ties broken by a key unique per customer, in one statement that sends back only those ten rows."""
    return ____


ex.q3.check(top_customers)
# ex.q3.hint()  ex.q3.hint(2)  ex.q3.solution()'''

_HINTS_Q3 = (
    "Let the database do all of it: join each customer to their orders, count per customer, order by that "
    "count, then by something no two customers share, and keep ten rows. Two customers can share a name.",
    "func.count() with Select.join() and Select.group_by(); Select.order_by() with .desc(); Select.limit(). "
    "The SQLAlchemy Unified Tutorial's 'Aggregate functions with GROUP BY / HAVING'.",
)


# ---------------------------------------------------------------------- q4 · which join keeps every customer
def review_counts(session: Session, city: str) -> list[Any]:
    """Reference for q4: every customer of a city with their number of reviews, none left out: an outer join,
    counting a column of the joined table (count(*) would count a customer without reviews as 1)."""
    reviews = func.count(Review.id).label("reviews")
    query = (
        select(Customer.id, Customer.name, reviews)
        .outerjoin(Customer.reviews)
        .where(Customer.city == city)
        .group_by(Customer.id, Customer.name)
        .order_by(Customer.id)
    )
    return list(session.execute(query).all())


@lru_cache(maxsize=8)
def _reviewless_cities_at(url: str) -> tuple[str, ...]:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            without = select(Customer.city, func.count()).where(Customer.id.not_in(select(Review.customer_id)))
            ranked = session.execute(without.group_by(Customer.city).order_by(func.count().desc(), Customer.city))
            return tuple(city for city, _ in ranked.all()[:2])
    finally:
        engine.dispose()


def q4_cities(course: Course) -> list[str]:
    """The two cities q4 asks about: those with the most customers who never wrote a review."""
    return list(_reviewless_cities_at(course.url.render_as_string(hide_password=False)))


def _check_review_counts_of(course: Course, answer: Any, city: str) -> int:
    with course.session() as session:
        expected = review_counts(session, city)
    with course.session() as session, counting(course.engine) as rec:
        got = answer(session, city)
    got_ids = {row[0] for row in got} if isinstance(got, list | tuple) else set()
    missing = [row.id for row in expected if row.id not in got_ids]
    if missing:
        raise Incorrect(
            f"{_plural(len(missing), 'customer')} of {city} missing (customer {missing[0]} wrote no review): an "
            "inner join keeps only the customers that have a matching row"
        )
    zero = next((row for row in expected if row.reviews == 0), None)
    mine = {row[0]: row for row in got}
    if zero is not None and mine[zero.id][2] == 1:
        raise Incorrect(
            f"customer {zero.id} of {city} wrote no review, your count says 1: count(*) counts the joined row "
            "itself, even when the outer join found no review; count a column of the review"
        )
    same_result(got, expected, f"{city} counts")
    within_budget(rec, 1)
    fetched = rows_fetched(course.engine, rec)
    if fetched > len(expected):
        raise Incorrect(
            f"the right counts, but {fetched:,} rows came back for {len(expected)} customers: count in SQL"
        )
    return sum(1 for row in expected if row.reviews == 0)


def _check_review_counts(course: Course, answer: Any) -> str:
    kept = {city: _check_review_counts_of(course, answer, city) for city in q4_cities(course)}
    zeros = ", ".join(f"{n} in {city}" for city, n in kept.items())
    return f"every customer, in one statement per city, those who never wrote a review ({zeros}) counted as 0."


_STARTER_Q4 = '''\
def review_counts(session, city):
    """Every customer of a city, by id, as (customer id, name, number of reviews): those who never wrote one
    included, with 0, in one statement."""
    return ____


ex.q4.check(review_counts)
# ex.q4.hint()  ex.q4.hint(2)  ex.q4.solution()'''

_HINTS_Q4 = (
    "Which join keeps a customer that has no matching review? And what does a count count when the join found "
    "nothing: the row, or the review's column, which is NULL there?",
    "Select.outerjoin() (a LEFT OUTER JOIN) in the Unified Tutorial's 'Explicit FROM clauses and JOINs'; "
    "func.count() of a column skips NULLs; Select.group_by().",
)


# The questions, each declared beside its check above; bound to a course by `exercises(course)`.
Q1, Q2, Q3, Q4 = (
    Question("Your page without the N+1", _STARTER_Q1, _check_page, _HINTS_Q1, orders_with_names),
    Question("selectinload, counted", _STARTER_Q2, _check_selectin_count, _HINTS_Q2, selectin_statements),
    Question("Top customers of a city, with a tie-breaker", _STARTER_Q3, _check_ranking, _HINTS_Q3, top_customers),
    Question(
        "Every customer, with their reviews counted", _STARTER_Q4, _check_review_counts, _HINTS_Q4, review_counts
    ),
)


# ---------------------------------------------------------------------- improve the app: the order list
STARTER_IMPROVE = '''\
from helpers.shop.kit import NEWEST_FIRST, get_session, int_arg  # noqa: F401 (what your view will need)

my_views = Blueprint("my_views", __name__)


@my_views.get("/orders")
def order_list():
    """GET /orders?page=1&per_page=20: lesson 01's JSON, unchanged, for every page, per_page and bad parameter
    (page and per_page read as lesson 01 reads them: int_arg("page", 1), int_arg("per_page", 20, high=500)):
    {"page": page, "orders": [{"id", "customer" (the customer's name), "status", "created_at" (ISO text),
    "total" (a Decimal), "lines" (the order's number of lines)}, ...]}, newest first (NEWEST_FIRST).
    Budget: at most 2 statements per request, whatever the page."""
    ____


ex.improve.check(my_views)
# ex.improve.hint()  ex.improve.hint(2)  ex.improve.solution()'''

_HINTS_IMPROVE = (
    "The loop touches two relationships per order, a many-to-one and a collection: load both with the page "
    "(two statements), or choose the page's orders first and join them to customers and to counted lines "
    "(one statement). Count lines only for the page's orders, not for the whole table.",
    "joinedload() and selectinload() in Select.options() ('Relationship Loading Techniques'); or "
    "Select.subquery() of the page's ids, Select.join(), Select.outerjoin(), func.count() and Select.group_by(). "
    "Lesson 01's view, shown above, has the JSON.",
)


def improve_task(course: Course) -> AppTask:
    """The order list in at most two statements per request, checked against lesson 01's baseline."""
    return order_list_task("03", course, edges=True, hint_text=_HINTS_IMPROVE)  # edges: another size, page 0


# ---------------------------------------------------------------------- the exercises
class Lesson03Exercises(RacedExercises):
    """Lesson 03's exercises and its improve-the-app task, bound to its database; in the main race your
    `orders_with_names` runs beside the course's joinedload."""

    reference = (JOINS_REFERENCE, orders_with_names)


def exercises(course: Course) -> Lesson03Exercises:
    """The lesson's exercises, bound to its database."""
    q1, q2, q3, q4 = (q.bind(course) for q in (Q1, Q2, Q3, Q4))
    return Lesson03Exercises(q1, q2, q3, q4, improve_task(course))

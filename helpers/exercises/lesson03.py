"""Exercises for lesson 03 · Joins and the N+1 problem, and its "improve the app" task (the order list).

Declared here: `Q1` (the order page in two statements), `Q2` (a city's top customers, counted and ranked by the
database), `Q3` (each customer with only their cancelled orders, through `contains_eager`), and
`improve_task(course)`. `exercises(course)` binds them to the lesson's database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, contains_eager, joinedload, selectinload

from ..course import Course
from ..db import make_engine
from ..measure.harness import first_difference
from ..measure.recorder import rows_fetched
from ..shop.models import Customer, Order
from ..topics.joins import joins_to, order_by_clause
from .app_task import AppTask
from .core import Exercise, Incorrect, Question, counting, same_result, within_budget
from .order_list import order_list_task

__all__ = [
    "Q1",
    "Q2",
    "Q3",
    "STARTER_Q1",
    "STARTER_Q2",
    "STARTER_Q3",
    "Lesson03Exercises",
    "cancelled_by_customer",
    "exercises",
    "improve_task",
    "order_page",
    "q2_city",
    "top_customers",
]

_TOP = 10  # q2: how many customers the ranking keeps


# ---------------------------------------------------------------------- q1 · the order page
def order_page(session: Session) -> list[tuple[int, str, int]]:
    """Reference for q1: the 50 newest orders with customer name and line count, in two statements."""
    newest = (
        select(Order)
        .options(joinedload(Order.customer), selectinload(Order.lines))
        .order_by(Order.id.desc())
        .limit(50)
    )
    return [(order.id, order.customer.name, len(order.lines)) for order in session.scalars(newest)]


def _check_q1(course: Course, answer: Any) -> str:
    with course.session() as session:
        expected = order_page(session)
    with course.session() as session, counting(course.engine) as rec:
        got = answer(session)
    same_result(got, expected)
    within_budget(rec, 2)
    return f"50 orders with names and line counts in {rec.count} statement{'s' if rec.count > 1 else ''}."


STARTER_Q1 = """\
def order_page(session):
    return ____


ex.q1.check(order_page)"""

Q1 = Question(
    title="The order page in two statements or fewer",
    starter=STARTER_Q1,
    check=_check_q1,
    hints=(
        "Keep the lazy loop, but tell the query what it will touch: one loader option per relationship, "
        "the one this lesson used for the many-to-one Order.customer and the one the documentation "
        "recommends for the collection Order.lines. Return (order.id, order.customer.name, "
        "len(order.lines)) tuples, highest id first.",
    ),
    solution=order_page,
)


# ---------------------------------------------------------------------- q2 · top customers of a city
def top_customers(session: Session, city: str) -> list[Any]:
    """Reference for q2: a city's 10 customers with the most orders, counted and ranked by the database."""
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


def _city_with_a_tie_at_the_cut(session: Session) -> str:
    """A city whose 10th and 11th busiest customers have as many orders each: only a tie-breaker orders them.

    Among such cities the one with the most customers; if no city has a tie there, the city with the most
    customers (the check then reads the tie-breaker from the SQL alone).
    """
    counts = session.execute(
        select(Customer.city, func.count(Order.id)).join(Customer.orders).group_by(Customer.city, Customer.id)
    ).all()
    by_city: dict[str, list[int]] = {}
    for city, orders in counts:
        by_city.setdefault(city, []).append(orders)
    ranked = sorted(by_city, key=lambda city: (-len(by_city[city]), city))

    def tie_at_the_cut(city: str) -> bool:
        busiest = sorted(by_city[city], reverse=True)
        return len(busiest) > _TOP and busiest[_TOP - 1] == busiest[_TOP]

    return next((city for city in ranked if tie_at_the_cut(city)), ranked[0])


@lru_cache(maxsize=8)
def _tie_city_at(url: str) -> str:
    """`_city_with_a_tie_at_the_cut` of the dataset at `url`, once per dataset: it groups every order."""
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return _city_with_a_tie_at_the_cut(session)
    finally:
        engine.dispose()


def q2_city(course: Course) -> str:
    """The city q2 and q3 ask about: the tenth and eleventh customers of its ranking tie, where the dataset has
    such a city."""
    return _tie_city_at(course.url.render_as_string(hide_password=False))


def _check_q2(course: Course, answer: Any) -> str:
    city = q2_city(course)
    with course.session() as session:
        expected = top_customers(session, city)
    with course.session() as session, counting(course.engine) as rec:
        got = answer(session, city)
    order_by = order_by_clause(rec.statements[0].sql) if rec.statements else ""
    tie_breaker = re.search(r"\b(customers\.id|orders\.customer_id)\b", order_by) is not None
    no_tie_breaker = (
        f"your ORDER BY ({order_by or 'none'}) has no tie-breaker: customers with as many orders as each "
        "other may come back in any order, and the tenth place may go to either; add Customer.id after "
        "the count"
    )
    difference = first_difference(expected, got)
    if difference is not None:
        raise Incorrect(difference + (f"; {no_tie_breaker}" if order_by and not tie_breaker else ""))
    within_budget(rec, 1)
    fetched = rows_fetched(course.engine, rec)
    if fetched > len(expected):
        raise Incorrect(
            f"the right answer, but {fetched} rows came back from the database for {len(expected)} results: "
            "count, order and limit in SQL"
        )
    if not tie_breaker:
        raise Incorrect(f"the right rows this time, but {no_tie_breaker}")
    return f"the database counted, ranked (ties by id) and limited: {fetched} rows came back."


STARTER_Q2 = """\
def top_customers(session, city):
    return ____


ex.q2.check(top_customers)"""

Q2 = Question(
    title="Top customers of a city, computed in the database",
    starter=STARTER_Q2,
    check=_check_q2,
    hints=(
        "func.count(Order.id) with .join(Customer.orders), .group_by(Customer.id, Customer.name), "
        ".order_by(count descending, then Customer.id to break ties) and .limit(10).",
    ),
    solution=top_customers,
)


# ---------------------------------------------------------------------- q3 · only the cancelled orders
def cancelled_by_customer(session: Session, city: str) -> list[Customer]:
    """Reference for q3: the join that filters on cancelled orders also fills each customer's collection."""
    query = (
        select(Customer)
        .join(Customer.orders)
        .where(Customer.city == city, Order.status == "cancelled")
        .options(contains_eager(Customer.orders))
        .order_by(Customer.id, Order.id)
    )
    return list(session.scalars(query).unique())


def _touched(customers: Any) -> list[tuple[int, str, list[int]]]:
    """Each customer's id, name and the ids of the orders in its collection (touching `.orders`)."""
    return [(c.id, c.name, sorted(o.id for o in c.orders)) for c in customers]


def _check_q3(course: Course, answer: Any) -> str:
    city = q2_city(course)
    with course.session() as session:
        expected = _touched(cancelled_by_customer(session, city))
        cancelled_only = session.scalars(
            select(Order.id).join(Order.customer).where(Customer.city == city, Order.status == "cancelled")
        ).all()
    with course.session() as session, counting(course.engine) as rec:
        got = answer(session, city)
        if not isinstance(got, list | tuple) or not all(isinstance(c, Customer) for c in got):
            raise Incorrect("return a list of Customer objects (session.scalars(...)), not rows or tuples")
        answer_rows = _touched(got)  # inside the recording: a lazy load of .orders counts as a statement
    loaded = {order_id for _, _, ids in answer_rows for order_id in ids}
    if loaded - set(cancelled_only):
        raise Incorrect(
            f"customer.orders holds {len(loaded - set(cancelled_only))} orders that are not cancelled: "
            "a loader option (selectinload, joinedload) loads the whole collection; contains_eager fills it "
            "from the rows of your filtered join"
        )
    same_result(answer_rows, expected, "customers (id, name, cancelled order ids)")
    within_budget(rec, 1)
    joins = joins_to(rec.statements[0].sql, "orders")
    if joins > 1:
        raise Incorrect(
            f"one statement, but it joins orders {joins} times: joinedload adds its own aliased join beside "
            "the one you filter on. contains_eager(Customer.orders) fills the collection from yours"
        )
    return (
        f"{len(got)} customers of {city} with {len(loaded)} cancelled orders between them, filtered and "
        "loaded through one join, in one statement."
    )


STARTER_Q3 = """\
def cancelled_by_customer(session, city):
    return ____


ex.q3.check(cancelled_by_customer)"""

Q3 = Question(
    title="Each customer with only their cancelled orders",
    starter=STARTER_Q3,
    check=_check_q3,
    hints=(
        "select(Customer).join(Customer.orders) lets you filter on Order.status (and Customer.city); "
        ".options(contains_eager(Customer.orders)) fills each customer's collection from that join's rows, "
        "so it holds only the cancelled orders. The join repeats a customer once per order: end with "
        ".unique() on the result, and order by Customer.id.",
    ),
    solution=cancelled_by_customer,
)


# ---------------------------------------------------------------------- improve the app: the order list
def improve_task(course: Course) -> AppTask:
    """The order list in at most two statements per request, checked against lesson 01's baseline."""
    return order_list_task(
        "03",
        course,
        edges=True,  # also a page of another size, and page 0
        hint_text=(
            "Keep the loop and the JSON as they are and tell the query what the loop touches: "
            "joinedload(Order.customer) for the many-to-one, selectinload(Order.lines) for the collection "
            "(two statements). Or one statement: choose the page's order ids first, in a subquery "
            "(select(Order.id).order_by(*NEWEST_FIRST).limit(...).offset(...).subquery()), then join it to "
            "orders and customers, outer-join order_lines and count them per order (group_by). Count lines "
            "only for the page: a per-row count in the outer query of a sorted, unlimited select runs once per "
            "order of the whole table on SQLite."
        ),
    )


@dataclass(frozen=True)
class Lesson03Exercises:
    """Lesson 03's exercises and its improve-the-app task, bound to its database."""

    q1: Exercise
    q2: Exercise
    q3: Exercise
    improve: AppTask


def exercises(course: Course) -> Lesson03Exercises:
    """The lesson's exercises, bound to its database."""
    return Lesson03Exercises(Q1.bind(course), Q2.bind(course), Q3.bind(course), improve_task(course))

"""Exercises for lesson 03 · Joins and the N+1 problem, and its "improve the app" task (the order list)."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, contains_eager, joinedload, selectinload

from ..course import Course
from ..measure.harness import first_difference
from ..measure.recorder import rows_fetched
from ..shop.models import Customer, Order
from .app_task import AppTask, Call
from .core import Incorrect, LegacyExercise, counting, same_result, within_budget

TOP = 10  # q2: how many customers the ranking keeps


def order_page(session: Session) -> list[tuple[int, str, int]]:
    """Reference for q1: the 50 newest orders with customer name and line count, in two statements."""
    newest = (
        select(Order)
        .options(joinedload(Order.customer), selectinload(Order.lines))
        .order_by(Order.id.desc())
        .limit(50)
    )
    return [(order.id, order.customer.name, len(order.lines)) for order in session.scalars(newest)]


def top_customers(session: Session, city: str) -> list[Any]:
    """Reference for q2: a city's 10 customers with the most orders, counted and ranked by the database."""
    orders = func.count(Order.id).label("orders")
    query = (
        select(Customer.id, Customer.name, orders)
        .join(Customer.orders)
        .where(Customer.city == city)
        .group_by(Customer.id, Customer.name)
        .order_by(orders.desc(), Customer.id)
        .limit(TOP)
    )
    return list(session.execute(query).all())


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


def without_next(body: Any) -> Any:
    """An order list's JSON without the keyset cursor `next` the course's version adds (lesson 04)."""
    return {key: value for key, value in body.items() if key != "next"} if isinstance(body, dict) else body


def deep_pages(orders: int, per_page: int, max_page: int = 10_000) -> list[int]:
    """The last page of `per_page` orders and the one after it (empty), as far as ?page= reaches (10,000 at most):
    at the larger sizes the deepest page the parameter allows."""
    last = -(-orders // per_page)
    return [last, last + 1] if last < max_page else [max_page]


def _order_by_clause(sql: str) -> str:
    """The outermost ORDER BY of a statement, up to its LIMIT (empty when there is none)."""
    found = re.search(r"\bORDER BY\b(.*?)(?:\bLIMIT\b|\bOFFSET\b|$)", sql, re.S | re.I)
    return found.group(1) if found else ""


def _joins_to(table: str, sql: str) -> int:
    """How many times a statement joins `table` (aliased or not)."""
    return len(re.findall(rf"\bJOIN\s+{table}\b", sql, re.I))


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
        return len(busiest) > TOP and busiest[TOP - 1] == busiest[TOP]

    return next((city for city in ranked if tie_at_the_cut(city)), ranked[0])


def exercises(course: Course) -> SimpleNamespace:
    """The lesson's exercises and its improve-the-app task, bound to its database."""

    def check_q1(answer: Any) -> str:
        with course.session() as session:
            expected = order_page(session)
        with course.session() as session, counting(course.engine) as rec:
            got = answer(session)
        same_result(got, expected)
        within_budget(rec, 2)
        return f"50 orders with names and line counts in {rec.count} statement{'s' if rec.count > 1 else ''}."

    with course.session() as session:
        city = _city_with_a_tie_at_the_cut(session)

    def check_q2(answer: Any) -> str:
        with course.session() as session:
            expected = top_customers(session, city)
        with course.session() as session, counting(course.engine) as rec:
            got = answer(session, city)
        order_by = " ".join(_order_by_clause(rec.statements[0].sql).split()) if rec.statements else ""
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

    def check_q3(answer: Any) -> str:
        def touched(customers: Any) -> list[tuple[int, str, list[int]]]:
            return [(c.id, c.name, sorted(o.id for o in c.orders)) for c in customers]

        with course.session() as session:
            expected = touched(cancelled_by_customer(session, city))
            cancelled_only = session.scalars(
                select(Order.id).join(Order.customer).where(Customer.city == city, Order.status == "cancelled")
            ).all()
        with course.session() as session, counting(course.engine) as rec:
            got = answer(session, city)
            if not isinstance(got, list | tuple) or not all(isinstance(c, Customer) for c in got):
                raise Incorrect("return a list of Customer objects (session.scalars(...)), not rows or tuples")
            answer_rows = touched(got)  # inside the recording: a lazy load of .orders counts as a statement
        loaded = {order_id for _, _, ids in answer_rows for order_id in ids}
        if loaded - set(cancelled_only):
            raise Incorrect(
                f"customer.orders holds {len(loaded - set(cancelled_only))} orders that are not cancelled: "
                "a loader option (selectinload, joinedload) loads the whole collection; contains_eager fills it "
                "from the rows of your filtered join"
            )
        same_result(answer_rows, expected, "customers (id, name, cancelled order ids)")
        within_budget(rec, 1)
        joins = _joins_to("orders", rec.statements[0].sql)
        if joins > 1:
            raise Incorrect(
                f"one statement, but it joins orders {joins} times: joinedload adds its own aliased join beside "
                "the one you filter on. contains_eager(Customer.orders) fills the collection from yours"
            )
        return (
            f"{len(got)} customers of {city} with {len(loaded)} cancelled orders between them, filtered and "
            "loaded through one join, in one statement."
        )

    deep = deep_pages(course.info.rows["orders"], per_page=7)
    improve = AppTask(
        lesson="03",
        endpoint="order_list",
        rule="/orders",
        calls=[
            Call("/orders"),
            Call("/orders?page=2&per_page=7"),
            Call("/orders?page=3&per_page=5"),
            *(Call(f"/orders?page={page}&per_page=7") for page in deep),  # the oldest orders, or past the end
            Call("/orders?page=abc"),
            Call("/orders?page=0"),
            Call("/orders?per_page=501"),
        ],
        timed=Call("/orders?page=1&per_page=20"),  # what lesson 01 measured
        budget=2,
        hint_text=(
            "Keep the loop and the JSON as they are and tell the query what the loop touches: "
            "joinedload(Order.customer) for the many-to-one, selectinload(Order.lines) for the collection "
            "(two statements). Or one statement: choose the page's order ids first, in a subquery "
            "(select(Order.id).order_by(*NEWEST_FIRST).limit(...).offset(...).subquery()), then join it to "
            "orders and customers, outer-join order_lines and count them per order (group_by). Count lines "
            "only for the page: a per-row count in the outer query of a sorted, unlimited select runs once per "
            "order of the whole table on SQLite."
        ),
        course=course,
        same=without_next,  # the course's version also returns a keyset cursor (lesson 04)
    )

    return SimpleNamespace(
        q1=LegacyExercise(
            "The order page in two statements or fewer",
            check_q1,
            "Keep the lazy loop, but tell the query what it will touch: one loader option per relationship, "
            "the one this lesson used for the many-to-one Order.customer and the one the documentation "
            "recommends for the collection Order.lines. Return (order.id, order.customer.name, "
            "len(order.lines)) tuples, highest id first.",
            order_page,
        ),
        q2=LegacyExercise(
            "Top customers of a city, computed in the database",
            check_q2,
            "func.count(Order.id) with .join(Customer.orders), .group_by(Customer.id, Customer.name), "
            ".order_by(count descending, then Customer.id to break ties) and .limit(10).",
            top_customers,
        ),
        q3=LegacyExercise(
            "Each customer with only their cancelled orders",
            check_q3,
            "select(Customer).join(Customer.orders) lets you filter on Order.status (and Customer.city); "
            ".options(contains_eager(Customer.orders)) fills each customer's collection from that join's rows, "
            "so it holds only the cancelled orders. The join repeats a customer once per order: end with "
            ".unique() on the result, and order by Customer.id.",
            cancelled_by_customer,
        ),
        q2_city=city,
        improve=improve,
    )

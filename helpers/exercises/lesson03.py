"""Exercises for lesson 03 · Joins and the N+1 problem."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload, selectinload

from ..course import Course
from ..recorder import rows_fetched
from ..shop.models import Customer, Order
from . import Exercise, Incorrect, counting, same_result, within_budget


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
        .limit(10)
    )
    return list(session.execute(query).all())


def exercises(course: Course) -> SimpleNamespace:
    """The lesson's exercises, bound to its database."""

    def check_q1(answer: Any) -> str:
        with course.session() as session:
            expected = order_page(session)
        with course.session() as session, counting(course.engine) as rec:
            got = answer(session)
        same_result(got, expected)
        within_budget(rec, 2)
        return f"50 orders with names and line counts in {rec.count} statement{'s' if rec.count > 1 else ''}."

    with course.session() as session:
        # The city with the most customers: enough of them that returning only ten is a real choice.
        city = str(
            session.scalar(
                select(Customer.city).group_by(Customer.city).order_by(func.count().desc(), Customer.city).limit(1)
            )
        )

    def check_q2(answer: Any) -> str:
        with course.session() as session:
            expected = top_customers(session, city)
        with course.session() as session, counting(course.engine) as rec:
            got = answer(session, city)
        same_result(got, expected)
        within_budget(rec, 1)
        fetched = rows_fetched(course.engine, rec)
        if fetched > len(expected):
            raise Incorrect(
                f"the right answer, but {fetched} rows came back from the database for {len(expected)} results: "
                "count, order and limit in SQL"
            )
        return f"the database counted, ranked and limited: {fetched} rows came back."

    return SimpleNamespace(
        q1=Exercise(
            "The order page in two statements or fewer",
            check_q1,
            "Keep the lazy loop, but tell the query what it will touch: one loader option per relationship, "
            "the one this lesson used for the many-to-one Order.customer and the one the documentation "
            "recommends for the collection Order.lines. Return (order.id, order.customer.name, "
            "len(order.lines)) tuples, highest id first.",
            order_page,
        ),
        q2=Exercise(
            "Top customers of a city, computed in the database",
            check_q2,
            "func.count(Order.id) with .join(Customer.orders), .group_by(Customer.id, Customer.name), "
            ".order_by(count descending, Customer.id) and .limit(10).",
            top_customers,
        ),
    )

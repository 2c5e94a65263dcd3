"""Exercises for lesson 02 · Projection."""

from __future__ import annotations

import re
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, load_only

from ..course import Course
from ..shop.models import Customer, Order
from . import Exercise, Incorrect, counting, same_result, within_budget

WIDE_COLUMNS = ("customers.address", "customers.notes", "customers.email", "customers.created_at")
WIDE_ORDER_COLUMNS = ("orders.shipping_address", "orders.note")


def customers_in_city(session: Session, city: str) -> list[Any]:
    """Reference for q1: (id, name, city) of a city's customers, by id, selecting only those columns."""
    query = select(Customer.id, Customer.name, Customer.city).where(Customer.city == city).order_by(Customer.id)
    return list(session.execute(query).all())


def order_totals(session: Session) -> list[tuple[int, str, Decimal]]:
    """Reference for q2: load_only the columns the loop reads, all of them."""
    orders = session.scalars(
        select(Order).options(load_only(Order.id, Order.status, Order.total)).order_by(Order.id).limit(100)
    ).all()
    return [(order.id, order.status, order.total) for order in orders]


def exercises(course: Course) -> SimpleNamespace:
    """The lesson's exercises, bound to its database."""

    def check_q1(answer: Any) -> str:
        with course.session() as session:
            expected = customers_in_city(session, "Lisbon")
        with course.session() as session, counting(course.engine) as rec:
            got = answer(session, "Lisbon")
        same_result(got, expected)
        within_budget(rec, 1)
        sql = " ".join(statement.sql for statement in rec.statements)
        loaded = [column for column in WIDE_COLUMNS if column in sql]
        if loaded:
            raise Incorrect(
                f"the right rows, but the SELECT still reads {', '.join(loaded)}: select only three columns"
            )
        return f"{len(got)} customers in one statement that reads three columns."

    def check_q2(answer: Any) -> str:
        with course.session() as session:
            expected = order_totals(session)
        with course.session() as session, counting(course.engine) as rec:
            got = answer(session)
        same_result(got, expected)
        within_budget(rec, 1)
        sql = " ".join(statement.sql for statement in rec.statements)
        loaded = [column for column in WIDE_ORDER_COLUMNS if re.search(rf"\b{re.escape(column)}\b", sql)]
        if loaded:
            raise Incorrect(
                f"one statement, but it also reads {', '.join(loaded)}: load_only exactly what the loop reads"
            )
        return "one statement for 100 orders that leaves the wide columns out: nothing was lazy-loaded."

    return SimpleNamespace(
        q1=Exercise(
            "Customers of a city, three columns",
            check_q1,
            "select(Customer.id, Customer.name, Customer.city) returns rows, not objects; "
            "add .where(...) and .order_by(Customer.id), then session.execute(...).all().",
            customers_in_city,
        ),
        q2=Exercise(
            "load_only without the lazy loads",
            check_q2,
            "Every attribute the loop reads must be in load_only(...); one that is not is fetched with its own "
            "SELECT, once per order. Add raiseload=True to find the culprit; don't drop load_only, or the "
            "wide shipping_address comes back.",
            order_totals,
        ),
    )

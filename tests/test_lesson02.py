"""Lesson 02 · Projection: the facts the lesson shows, pinned down on both backends."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import Bundle, Session, load_only

from helpers.course import Course
from helpers.exercises.lesson02 import exercises
from helpers.recorder import record
from helpers.shop.models import Customer, Order

N = 40


def first_customers(course: Course) -> dict[str, list[tuple[int, str, str]]]:
    newest = select(Customer).order_by(Customer.id).limit(N)
    bundle = Bundle("customer", Customer.id, Customer.name, Customer.email)
    with Session(course.engine) as s:
        return {
            "entities": [(c.id, c.name, c.email) for c in s.scalars(newest)],
            "load_only": [
                (c.id, c.name, c.email)
                for c in s.scalars(newest.options(load_only(Customer.id, Customer.name, Customer.email)))
            ],
            "columns": [
                tuple(r)
                for r in s.execute(
                    select(Customer.id, Customer.name, Customer.email).order_by(Customer.id).limit(N)
                )
            ],
            "bundle": [
                (r.customer.id, r.customer.name, r.customer.email)
                for r in s.execute(select(bundle).order_by(Customer.id).limit(N))
            ],
        }


def test_four_ways_return_the_same_data(course: Course) -> None:
    results = first_customers(course)
    assert len(results["entities"]) == N
    assert results["load_only"] == results["columns"] == results["bundle"] == results["entities"]


def test_projection_leaves_wide_columns_out_of_the_sql(course: Course) -> None:
    with record(course.engine) as rec, Session(course.engine) as s:
        s.scalars(select(Customer).options(load_only(Customer.id, Customer.name)).limit(5)).all()
        s.execute(select(Customer.id, Customer.name).limit(5)).all()
    assert rec.count == 2
    assert all("notes" not in st.sql and "address" not in st.sql for st in rec.statements)


@pytest.mark.parametrize("rows", [1, 10, 50])
def test_touching_a_deferred_column_costs_one_statement_per_row(course: Course, rows: int) -> None:
    with Session(course.engine) as s, record(course.engine) as rec:
        customers = s.scalars(
            select(Customer).options(load_only(Customer.id, Customer.name)).order_by(Customer.id).limit(rows)
        ).all()
        cities = [c.city for c in customers]
    assert len(cities) == rows and rec.count == 1 + rows
    if rows > 1:
        assert list(rec.repeated().values()) == [rows]


def test_loading_the_touched_column_keeps_one_statement(course: Course) -> None:
    with Session(course.engine) as s, record(course.engine) as rec:
        customers = s.scalars(
            select(Customer).options(load_only(Customer.id, Customer.name, Customer.city)).limit(50)
        ).all()
        cities = [c.city for c in customers]
    assert len(cities) == 50 and rec.count == 1


def test_raiseload_turns_the_lazy_load_into_an_error(course: Course) -> None:
    with Session(course.engine) as s:
        customer = s.scalars(select(Customer).options(load_only(Customer.id, raiseload=True)).limit(1)).one()
        with record(course.engine) as rec, pytest.raises(InvalidRequestError, match="raiseload=True"):
            _ = customer.city
    assert rec.count == 0  # refused, not queried


def test_q1_passes_the_reference_and_fails_whole_entities(course: Course) -> None:
    ex = exercises(course)
    from helpers.exercises.lesson02 import customers_in_city

    assert ex.q1.check(customers_in_city)

    def whole_entities(session: Session, city: str) -> list[tuple[int, str, str]]:
        customers = session.scalars(select(Customer).where(Customer.city == city).order_by(Customer.id))
        return [(c.id, c.name, c.city) for c in customers]

    def unordered(session: Session, city: str) -> list[object]:
        return list(
            session.execute(select(Customer.id, Customer.name, Customer.city).where(Customer.city == city))
        )[::-1]

    assert not ex.q1.check(whole_entities)
    assert not ex.q1.check(unordered)


def test_q2_passes_the_reference_and_fails_the_lazy_loop(course: Course) -> None:
    ex = exercises(course)
    from helpers.exercises.lesson02 import order_totals

    assert ex.q2.check(order_totals)

    def lazy_loop(session: Session) -> list[tuple[int, str, float]]:
        orders = session.scalars(
            select(Order).options(load_only(Order.id, Order.status)).order_by(Order.id).limit(100)
        ).all()
        return [(o.id, o.status, o.total) for o in orders]

    def whole_orders(session: Session) -> list[tuple[int, str, float]]:
        orders = session.scalars(select(Order).order_by(Order.id).limit(100)).all()
        return [(o.id, o.status, o.total) for o in orders]

    def raiseload_only(session: Session) -> list[tuple[int, str, float]]:
        orders = session.scalars(
            select(Order).options(load_only(Order.id, Order.status, raiseload=True)).order_by(Order.id).limit(100)
        ).all()
        return [(o.id, o.status, o.total) for o in orders]

    def columns(session: Session) -> list[object]:
        return list(session.execute(select(Order.id, Order.status, Order.total).order_by(Order.id).limit(100)))

    assert not ex.q2.check(lazy_loop)
    assert not ex.q2.check(whole_orders)  # one statement, but it reads the wide columns again
    assert not ex.q2.check(raiseload_only)  # the guard raises: the missing column is still missing
    assert ex.q2.check(columns)  # selecting the columns is a right answer too


def test_unanswered_starters_are_not_marked_right(course: Course) -> None:
    from helpers.exercises import ____

    ex = exercises(course)

    def starter(session: Session, city: str) -> object:
        return ____

    assert not ex.q1.check(starter)
    assert not ex.q2.check(starter)

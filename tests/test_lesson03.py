"""Lesson 03 · Joins and N+1: statement counts, lost rows and rows moved, pinned down on both backends."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import Session, joinedload, raiseload, selectinload

from helpers.course import Course
from helpers.exercises.lesson03 import exercises, order_page, top_customers
from helpers.recorder import record, rows_fetched
from helpers.shop.models import Customer, Order, Review


def distinct_customer_orders(course: Course, n: int) -> list[int]:
    """Ids of n orders that all belong to different customers, so lazy loading costs exactly 1 + n."""
    with Session(course.engine) as s:
        first = select(func.min(Order.id)).group_by(Order.customer_id).order_by(func.min(Order.id)).limit(n)
        return list(s.scalars(first))


def run(course: Course, fn: Callable[[Session], Any]) -> tuple[Any, int]:
    with Session(course.engine) as s, record(course.engine) as rec:
        result = fn(s)
    return result, rec.count


def test_lazy_joined_selectin_and_join_statement_counts(course: Course) -> None:
    ids = distinct_customer_orders(course, 30)
    page = select(Order).where(Order.id.in_(ids)).order_by(Order.id)

    def names(s: Session, query: Any) -> list[tuple[int, str]]:
        return [(o.id, o.customer.name) for o in s.scalars(query)]

    lazy, lazy_n = run(course, lambda s: names(s, page))
    joined, joined_n = run(course, lambda s: names(s, page.options(joinedload(Order.customer))))
    selectin, selectin_n = run(course, lambda s: names(s, page.options(selectinload(Order.customer))))
    columns, join_n = run(
        course,
        lambda s: [tuple(r) for r in s.execute(
            select(Order.id, Customer.name).join(Order.customer).where(Order.id.in_(ids)).order_by(Order.id)
        )],
    )  # fmt: skip
    assert (lazy_n, joined_n, selectin_n, join_n) == (1 + 30, 1, 2, 1)
    assert lazy == joined == selectin == columns


def test_lazy_loading_counts_distinct_customers_only(course: Course) -> None:
    """The identity map: a customer already loaded in the session is not selected again."""
    page = select(Order).order_by(Order.id.desc()).limit(300)
    names, statements = run(course, lambda s: [o.customer.name for o in s.scalars(page)])
    with Session(course.engine) as s:
        distinct = len({o.customer_id for o in s.scalars(page)})
    assert len(names) == 300 and distinct < 300
    assert statements == 1 + distinct


@pytest.mark.parametrize(("n", "statements"), [(500, 2), (501, 3), (1000, 3), (1200, 4)])
def test_selectinload_sends_at_most_500_keys_per_in(course: Course, n: int, statements: int) -> None:
    page = select(Order).options(selectinload(Order.lines)).order_by(Order.id).limit(n)
    counts, ran = run(course, lambda s: [len(o.lines) for o in s.scalars(page)])
    assert len(counts) == n and all(counts)
    assert ran == statements


def test_raiseload_catches_the_lazy_load(course: Course) -> None:
    with Session(course.engine) as s:
        order = s.scalars(select(Order).options(raiseload("*")).limit(1)).one()
        with pytest.raises(InvalidRequestError, match="lazy='raise'"):
            _ = order.customer


def test_collection_joinedload_needs_unique_and_multiplies_rows(course: Course) -> None:
    page = select(Order).options(joinedload(Order.lines)).order_by(Order.id).limit(20)
    with Session(course.engine) as s, pytest.raises(InvalidRequestError, match="unique"):
        s.scalars(page).all()
    with Session(course.engine) as s, record(course.engine) as rec:
        orders = s.scalars(page).unique().all()
        lines = sum(len(o.lines) for o in orders)
    assert len(orders) == 20 and len({o.id for o in orders}) == 20
    assert rec.count == 1 and rows_fetched(course.engine, rec) == lines > 20


def test_inner_join_drops_what_the_outer_join_keeps(course: Course) -> None:
    reviews = func.count(Review.id)
    with Session(course.engine) as s:
        inner = dict(s.execute(select(Customer.id, reviews).join(Customer.reviews).group_by(Customer.id)).all())
        outer = dict(
            s.execute(select(Customer.id, reviews).outerjoin(Customer.reviews).group_by(Customer.id)).all()
        )
        reviewers = set(s.scalars(select(Review.customer_id).distinct()))
    assert set(inner) == reviewers and len(outer) == course.info.rows["customers"]
    missing = set(outer) - set(inner)
    assert missing and all(outer[c] == 0 for c in missing)
    assert all(outer[c] == n for c, n in inner.items())


def test_filtering_in_sql_returns_the_python_answer_with_fewer_rows(course: Course) -> None:
    with Session(course.engine) as s:
        latest = s.scalar(select(Order.created_at).order_by(Order.id.desc()).limit(1))
        assert latest == s.scalar(select(func.max(Order.created_at)))  # ids grow with time
    window_start = latest - timedelta(days=30)

    def in_python(s: Session) -> list[tuple[int, float, str]]:
        orders = s.scalars(
            select(Order).options(joinedload(Order.customer)).where(Order.created_at >= window_start)
        ).all()
        delivered = sorted((o for o in orders if o.status == "delivered"), key=lambda o: (-o.total, o.id))
        return [(o.id, o.total, o.customer.name) for o in delivered[:10]]

    def in_sql(s: Session) -> list[tuple[int, float, str]]:
        q = (
            select(Order.id, Order.total, Customer.name)
            .join(Order.customer)
            .where(Order.created_at >= window_start, Order.status == "delivered")
            .order_by(Order.total.desc(), Order.id)
            .limit(10)
        )
        return [tuple(r) for r in s.execute(q)]

    with Session(course.engine) as s, record(course.engine) as python_rec:
        python = in_python(s)
    with Session(course.engine) as s, record(course.engine) as sql_rec:
        sql = in_sql(s)
    with Session(course.engine) as s:
        in_window = s.scalar(select(func.count()).where(Order.created_at >= window_start))
    assert python == sql and len(sql) == 10
    assert python_rec.count == sql_rec.count == 1
    assert rows_fetched(course.engine, sql_rec) == 10
    assert rows_fetched(course.engine, python_rec) == in_window >= 3 * 10


def test_q1_passes_the_reference_and_fails_the_n_plus_one(course: Course) -> None:
    ex = exercises(course)
    assert ex.q1.check(order_page)

    def eager(s: Session) -> list[tuple[int, str, int]]:
        orders = s.scalars(
            select(Order)
            .options(joinedload(Order.customer), selectinload(Order.lines))
            .order_by(Order.id.desc())
            .limit(50)
        )
        return [(o.id, o.customer.name, len(o.lines)) for o in orders]

    def lazy(s: Session) -> list[tuple[int, str, int]]:
        orders = s.scalars(select(Order).order_by(Order.id.desc()).limit(50))
        return [(o.id, o.customer.name, len(o.lines)) for o in orders]

    assert ex.q1.check(eager)
    assert not ex.q1.check(lazy)


def test_q2_passes_the_reference_and_fails_counting_in_python(course: Course) -> None:
    ex = exercises(course)
    assert ex.q2.check(top_customers)

    def in_python(s: Session, city: str) -> list[tuple[int, str, int]]:
        rows = s.execute(
            select(Customer.id, Customer.name, func.count(Order.id))
            .join(Customer.orders)
            .where(Customer.city == city)
            .group_by(Customer.id, Customer.name)
        ).all()
        ranked = sorted(rows, key=lambda r: (-r[2], r[0]))
        return [tuple(r) for r in ranked[:10]]

    assert not ex.q2.check(in_python)

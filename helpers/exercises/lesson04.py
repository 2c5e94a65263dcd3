"""Exercises for lesson 04 · Indexing: the learner writes CREATE INDEX; checks run it on a private copy."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from ..course import Course
from ..data import drop_copy
from ..recorder import Plan, analyze
from ..shop.models import Order, Review
from . import Exercise, Incorrect, same_result, uses_index


def reviews_of_product() -> str:
    """Reference for q1: the column the lookup filters on."""
    return "CREATE INDEX ix_reviews_product_id ON reviews (product_id)"


def newest_orders_of_customer() -> str:
    """Reference for q2: equality column first, then the ORDER BY column, so rows come out already sorted."""
    return "CREATE INDEX ix_orders_customer_id_created_at ON orders (customer_id, created_at)"


@contextmanager
def _with_index(course: Course, ddl: Any) -> Iterator[Course]:
    """A private copy of the dataset with the learner's CREATE INDEX applied; removed afterwards."""
    if not isinstance(ddl, str) or "index" not in ddl.lower():
        raise Incorrect("the answer should be a CREATE INDEX statement, as a string")
    copy = course.private_copy("exercise04")
    try:
        try:
            with copy.engine.begin() as conn:
                conn.execute(text(ddl))
        except DBAPIError as exc:
            raise Incorrect(f"the database refused it: {str(exc.orig).strip().splitlines()[0]}") from None
        analyze(copy.engine)
        yield copy
    finally:
        copy.engine.dispose()
        drop_copy(copy.url)


def _check(course: Course, ddl: Any, query: Any, require: Callable[[Plan], None]) -> str:
    with course.session() as session:
        expected = session.execute(query).all()
    with _with_index(course, ddl) as copy:
        plan = copy.explain(query)
        require(plan)
        with copy.session() as session:
            same_result(session.execute(query).all(), expected)
    return f"the plan now reads: {plan.text.splitlines()[0].strip()}"


def exercises(course: Course) -> SimpleNamespace:
    """The lesson's exercises, bound to its database."""
    with course.session() as session:
        # A rarely reviewed product and the busiest customer: the lookups the indexes are for.
        product = session.scalar(
            select(Review.product_id)
            .group_by(Review.product_id)
            .order_by(func.count(), Review.product_id)
            .limit(1)
        )
        customer = session.scalar(
            select(Order.customer_id).group_by(Order.customer_id).order_by(func.count().desc()).limit(1)
        )
    reviews_query = select(Review.id, Review.rating).where(Review.product_id == product).order_by(Review.id)
    newest_query = (
        select(Order.id, Order.created_at)
        .where(Order.customer_id == customer)
        .order_by(Order.created_at.desc())
        .limit(10)
    )

    def finds_by(column: str) -> Callable[[Plan], None]:
        def require(plan: Plan) -> None:
            uses_index(plan)
            if not plan.searches(column):
                raise Incorrect(f"an index is read, but not to find rows by {column}: {plan.text.splitlines()[0]}")

        return require

    def check_q1(answer: Any) -> str:
        return _check(course, answer, reviews_query, finds_by("product_id"))

    def check_q2(answer: Any) -> str:
        def require(plan: Plan) -> None:
            finds_by("customer_id")(plan)
            if plan.temp_sort():
                raise Incorrect(
                    "the index finds the customer's orders, but they are still sorted afterwards: "
                    "which column does ORDER BY use?"
                )

        return _check(course, answer, newest_query, require)

    return SimpleNamespace(
        q1=Exercise(
            "Reviews of a product",
            check_q1,
            "The query filters reviews on one column: index that column. "
            "Form: CREATE INDEX name ON table (column).",
            reviews_of_product,
        ),
        q2=Exercise(
            "A customer's newest orders without a sort",
            check_q2,
            "A composite index serves an equality filter and an ORDER BY when the equality column comes first "
            "and the ORDER BY column second.",
            newest_orders_of_customer,
        ),
        reviews_query=reviews_query,
        newest_query=newest_query,
    )

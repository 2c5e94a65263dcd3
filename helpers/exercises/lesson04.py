"""Exercises for lesson 04 · Indexing: the learner writes an index; checks create it on a private copy."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Index, func, inspect, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.schema import CreateIndex

from ..course import Course
from ..data import drop_copy
from ..recorder import Plan, analyze
from ..shop.models import Order, Review
from . import Exercise, Incorrect, same_result


def reviews_of_product() -> str:
    """Reference for q1: the column the lookup filters on."""
    return "CREATE INDEX ix_reviews_product_id ON reviews (product_id)"


def newest_orders_of_customer() -> str:
    """Reference for q2: equality column first, then the ORDER BY column, so rows come out already sorted."""
    return "CREATE INDEX ix_orders_customer_id_created_at ON orders (customer_id, created_at)"


def _create_index_sql(answer: Any, course: Course) -> str:
    """The learner's answer as CREATE INDEX SQL: a string as given, or an `Index` compiled for the backend."""
    if isinstance(answer, Index):
        if answer.table is None:
            raise Incorrect("build the Index from model columns, e.g. Index('ix_name', Model.column)")
        return str(CreateIndex(answer).compile(dialect=course.engine.dialect))
    if not isinstance(answer, str) or "index" not in answer.lower():
        raise Incorrect("the answer should be a CREATE INDEX statement (a string) or an sqlalchemy Index")
    return answer


@contextmanager
def _with_index(course: Course, answer: Any) -> Iterator[Course]:
    """A private copy of the dataset with the learner's index created; removed afterwards."""
    ddl = _create_index_sql(answer, course)
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


def _key_line(plan: Plan) -> str:
    """The plan line that says how the table is read (PostgreSQL's first line is often Limit or Sort)."""
    for line in plan.lines:
        if re.search(r"SCAN|SEARCH|Scan", line):
            return line.strip().removeprefix("->").strip()
    return plan.lines[0].strip() if plan.lines else ""


def _check(course: Course, ddl: Any, query: Any, require: Callable[[Plan, Course], None]) -> str:
    with course.session() as session:
        expected = session.execute(query).all()
    with _with_index(course, ddl) as copy:
        plan = copy.explain(query)
        require(plan, copy)
        with copy.session() as session:
            same_result(session.execute(query).all(), expected)
    return f"the plan now reads: {_key_line(plan)}"


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

    def finds_by(table: str, column: str) -> Callable[[Plan, Course], None]:
        def require(plan: Plan, copy: Course) -> None:
            if not plan.uses_index():
                raise Incorrect(f"the plan does not use an index: {_key_line(plan)}")
            if not plan.searches(column):
                raise Incorrect(f"an index is read, but not to find rows by {column}: {_key_line(plan)}")
            # PostgreSQL may also read a whole index whose *later* column is the filter (an 'Index Cond' all
            # the same): only an index that starts with the column can jump straight to the rows.
            firsts = [
                ix["column_names"][0]
                for ix in inspect(copy.engine).get_indexes(table)
                if ix["column_names"] and plan.uses_index(ix["name"])
            ]
            if firsts and column not in firsts:
                raise Incorrect(
                    f"the index used starts with {firsts[0]}: entries are sorted by their first column, so it "
                    f"cannot jump to the rows for one {column}; put {column} first"
                )

        return require

    def check_q1(answer: Any) -> str:
        return _check(course, answer, reviews_query, finds_by("reviews", "product_id"))

    def check_q2(answer: Any) -> str:
        def require(plan: Plan, copy: Course) -> None:
            finds_by("orders", "customer_id")(plan, copy)
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
            "Form: CREATE INDEX name ON table (column), or Index('name', Model.column).",
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

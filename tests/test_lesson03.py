"""Lesson 03 · Joins and N+1: statement counts, lost rows and rows moved, pinned down on both backends."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import Session, contains_eager, joinedload, raiseload, selectinload

from helpers.course import Course
from helpers.exercises.app_task import AppTask
from helpers.exercises.lesson03 import (
    Q1,
    Q2,
    Q3,
    cancelled_by_customer,
    exercises,
    improve_task,
    order_page,
    q2_city,
    top_customers,
)
from helpers.exercises.order_list import deep_pages
from helpers.measure.recorder import record, rows_fetched
from helpers.shop.models import Customer, Order, OrderLine, Review
from tests.cells import notebook_code_cells, run_cell
from tests.proving import verdict

NOTEBOOK = "03_joins_and_n_plus_one.ipynb"


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

    columns = select(Order.id, Order.total, Order.status, Customer.name).join(Order.customer)

    def in_python(s: Session) -> list[tuple[Any, ...]]:
        rows = s.execute(columns.where(Order.created_at >= window_start)).all()
        delivered = sorted((r for r in rows if r.status == "delivered"), key=lambda r: (-r.total, r.id))
        return [tuple(r) for r in delivered[:10]]

    def in_sql(s: Session) -> list[tuple[Any, ...]]:
        q = (
            columns.where(Order.created_at >= window_start, Order.status == "delivered")
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


def test_the_starters_are_the_notebooks_cells() -> None:
    assert all(question.starter in notebook_code_cells(NOTEBOOK) for question in (Q1, Q2, Q3))


def test_exercises_binds_the_questions_and_the_task(course: Course) -> None:
    ex = exercises(course)
    assert (ex.q1.question, ex.q2.question, ex.q3.question) == (Q1, Q2, Q3)
    assert ex.q1.course is course and ex.improve.endpoint == "order_list" and ex.improve.course is course


def test_q1_passes_the_reference_and_fails_the_n_plus_one(course: Course) -> None:
    q1 = Q1.bind(course)
    assert q1.check(order_page)

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

    assert q1.check(eager)
    assert not q1.check(lazy)


def test_q2_passes_the_reference_and_rejects_python_counting_and_a_missing_tie_breaker(
    course: Course, capsys: pytest.CaptureFixture[str]
) -> None:
    q2 = Q2.bind(course)
    assert q2.check(top_customers)
    capsys.readouterr()

    def counted(city: str) -> Any:
        """Each customer of the city with their number of orders, in no particular order."""
        return (
            select(Customer.id, Customer.name, func.count(Order.id).label("orders"))
            .join(Customer.orders)
            .where(Customer.city == city)
            .group_by(Customer.id, Customer.name)
        )

    def in_python(s: Session, city: str) -> list[tuple[int, str, int]]:
        ranked = sorted(s.execute(counted(city)).all(), key=lambda r: (-r[2], r[0]))
        return [tuple(r) for r in ranked[:10]]

    def ranked_by(s: Session, city: str, *order_by: Any) -> list[Any]:
        return list(s.execute(counted(city).order_by(*order_by).limit(10)).all())

    orders = func.count(Order.id)
    assert not q2.check(in_python)
    assert "rows came back" in capsys.readouterr().out
    # The city has a tie between its 10th and 11th customers: the wrong tie-breaker picks the other one.
    assert not q2.check(lambda s, city: ranked_by(s, city, orders.desc(), Customer.id.desc()))
    out = capsys.readouterr().out
    assert "Not yet — item" in out and "tie-breaker" not in out
    # No tie-breaker at all: whatever the database happened to return, the check reads the ORDER BY.
    assert not q2.check(lambda s, city: ranked_by(s, city, orders.desc()))
    assert "has no tie-breaker" in capsys.readouterr().out


def test_q2_city_has_a_tie_at_the_cut(course: Course) -> None:
    """The check's city makes a missing tie-breaker visible in the result, not only in the SQL."""
    with Session(course.engine) as s:
        counts = s.scalars(
            select(func.count(Order.id))
            .join(Customer.orders)
            .where(Customer.city == q2_city(course))
            .group_by(Customer.id)
            .order_by(func.count(Order.id).desc())
            .limit(11)
        ).all()
    assert counts[9] == counts[10]


def test_q3_fills_the_collection_from_the_filtered_join(
    course: Course, capsys: pytest.CaptureFixture[str]
) -> None:
    q3 = Q3.bind(course)
    assert q3.check(cancelled_by_customer)
    assert "Correct!" in capsys.readouterr().out

    def filtered(city: str) -> Any:
        return (
            select(Customer)
            .join(Customer.orders)
            .where(Customer.city == city, Order.status == "cancelled")
            .order_by(Customer.id, Order.id)
        )

    def joined_twice(s: Session, city: str) -> list[Customer]:
        return list(s.scalars(filtered(city).options(joinedload(Customer.orders))).unique())

    def selectin(s: Session, city: str) -> list[Customer]:
        return list(s.scalars(filtered(city).options(selectinload(Customer.orders))).unique())

    def lazy(s: Session, city: str) -> list[Customer]:
        return list(s.scalars(filtered(city)).unique())

    def rows(s: Session, city: str) -> list[Any]:
        return list(s.execute(filtered(city).with_only_columns(Customer.id, Customer.name)).all())

    # Loader options load every order of each customer, not only the cancelled ones.
    assert not q3.check(joined_twice)
    assert "not cancelled" in capsys.readouterr().out
    assert not q3.check(selectin)
    assert "not cancelled" in capsys.readouterr().out
    assert not q3.check(lazy)
    assert "not cancelled" in capsys.readouterr().out
    assert not q3.check(rows)
    assert "Customer objects" in capsys.readouterr().out

    # Loader criteria load only the cancelled orders, but in a second statement or through a second join.
    cancelled = Customer.orders.and_(Order.status == "cancelled")

    def selectin_criteria(s: Session, city: str) -> list[Customer]:
        return list(s.scalars(filtered(city).options(selectinload(cancelled))).unique())

    def joined_criteria(s: Session, city: str) -> list[Customer]:
        return list(s.scalars(filtered(city).options(joinedload(cancelled))).unique())

    assert not q3.check(selectin_criteria)
    assert "the budget is 1" in capsys.readouterr().out
    assert not q3.check(joined_criteria)
    assert "joins orders 2 times" in capsys.readouterr().out


def test_contains_eager_reuses_the_join_that_joinedload_repeats(course: Course) -> None:
    in_city = select(Order).join(Order.customer).where(Customer.city == "Lisbon").order_by(Order.id).limit(30)
    twice, once = (str(in_city.options(loader(Order.customer))) for loader in (joinedload, contains_eager))
    assert twice.count("JOIN customers") == 2 and once.count("JOIN customers") == 1
    with Session(course.engine) as s:
        a = [(o.id, o.customer.name) for o in s.scalars(in_city.options(joinedload(Order.customer)))]
    with Session(course.engine) as s, record(course.engine) as rec:
        b = [(o.id, o.customer.name) for o in s.scalars(in_city.options(contains_eager(Order.customer)))]
    assert a == b and rec.count == 1


def test_innerjoin_for_a_required_many_to_one(course: Course) -> None:
    assert Order.__table__.c.customer_id.nullable is False
    page = select(Order).order_by(Order.id).limit(30)
    outer = str(page.options(joinedload(Order.customer)))
    inner = str(page.options(joinedload(Order.customer, innerjoin=True)))
    assert "LEFT OUTER JOIN customers" in outer
    assert "LEFT OUTER JOIN" not in inner and "JOIN customers" in inner
    with Session(course.engine) as s:
        a = [(o.id, o.customer.name) for o in s.scalars(page.options(joinedload(Order.customer)))]
        b = [(o.id, o.customer.name) for o in s.scalars(page.options(joinedload(Order.customer, innerjoin=True)))]
    assert a == b


def test_joinedload_of_a_collection_limits_the_parents_in_a_subquery(course: Course) -> None:
    page = select(Order).order_by(Order.id.desc()).limit(20)
    wrapped = str(page.options(joinedload(Order.lines)).compile(course.engine))
    assert re.search(r"FROM \(SELECT .* LIMIT .*\) AS anon_1 LEFT OUTER JOIN order_lines", wrapped, re.S)
    # A many-to-one adds at most one row per order: no subquery is needed.
    assert "anon_1" not in str(page.options(joinedload(Order.customer)).compile(course.engine))
    # What LIMIT on the joined rows would return: fewer orders, the last one cut short.
    flat = select(Order.id, OrderLine.id).outerjoin(Order.lines).order_by(Order.id.desc(), OrderLine.id).limit(20)
    with Session(course.engine) as s:
        orders_in_flat = {order_id for order_id, _ in s.execute(flat)}
        complete = s.scalars(page.options(joinedload(Order.lines))).unique().all()
    assert len(orders_in_flat) < 20 == len(complete)


# ------------------------------------------------------------------ improve the app: the order list
# The notebook's starter, and the starter completed as its hint says.
STARTER = next(cell for cell in notebook_code_cells(NOTEBOOK) if 'my_views = Blueprint("my_views"' in cell)
LOADERS = ".options(joinedload(Order.customer), selectinload(Order.lines))"
TWO_STATEMENTS = STARTER.replace(".options(____)", LOADERS)
ONE_STATEMENT = """
from helpers.shop.kit import NEWEST_FIRST, Blueprint, Customer, Order, OrderLine, func, get_session, int_arg
from helpers.shop.kit import select

my_views = Blueprint("my_views", __name__)


@my_views.get("/orders")
def order_list():
    page = int_arg("page", 1)
    per_page = int_arg("per_page", 20, high=500)
    chosen = select(Order.id).order_by(*NEWEST_FIRST).limit(per_page).offset((page - 1) * per_page).subquery()
    rows = get_session().execute(
        select(Order.id, Customer.name, Order.status, Order.created_at, Order.total, func.count(OrderLine.id))
        .join(chosen, chosen.c.id == Order.id)
        .join(Order.customer)
        .outerjoin(Order.lines)
        .group_by(Order.id, Customer.name, Order.status, Order.created_at, Order.total)
        .order_by(*NEWEST_FIRST)
    )
    return {"page": page, "orders": [
        {"id": i, "customer": n, "status": s, "created_at": c.isoformat(), "total": t, "lines": k}
        for i, n, s, c, t, k in rows
    ]}


ex.improve.check(my_views)
"""
WRONG = {  # a right answer, changed: (source, what the check says)
    "n-plus-one": (STARTER.replace(".options(____)", ""), "the budget is 2"),
    "three-statements": (
        TWO_STATEMENTS.replace(
            "joinedload(Order.customer), selectinload", "selectinload(Order.customer), selectinload"
        ),
        "the budget is 2",
    ),
    "oldest-first": (
        ONE_STATEMENT.replace(".order_by(*NEWEST_FIRST).limit", ".order_by(Order.created_at, Order.id).limit"),
        "your JSON['orders'][0]",
    ),
    "unbounded-per-page": (ONE_STATEMENT.replace("high=500", "high=1000"), "answered 200, the baseline 400"),
    "offset-off-by-one": (ONE_STATEMENT.replace(".offset((page - 1) * per_page)", ".offset(page * per_page)"), ""),
}


def test_deep_pages_stay_within_what_page_accepts() -> None:
    assert deep_pages(2_000, per_page=7) == [286, 287]
    assert deep_pages(200_000, per_page=7) == [10_000]


@pytest.fixture
def improve(course: Course, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppTask:
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    return improve_task(course)


@pytest.mark.parametrize("source", [TWO_STATEMENTS, ONE_STATEMENT], ids=["loader-options", "one-statement"])
def test_improve_accepts_the_order_list_in_one_or_two_statements(
    improve: AppTask, tmp_path: Path, source: str
) -> None:
    passed, said = verdict(improve.check, run_cell(source, "lesson03-1")["my_views"])
    assert passed and said.startswith("Correct!") and "budget 2" in said
    assert (tmp_path / "my_app" / "03_order_list.py").exists()


def test_improve_races_the_reference_despite_its_cursor(improve: AppTask) -> None:
    race = improve.race(run_cell(ONE_STATEMENT, "lesson03-2")["my_views"], reference=True, repeat=2)
    assert race["the course's version"].statements == 1 and race["yours"].statements == 1
    assert race["baseline (lesson 01)"].statements > 20


@pytest.mark.parametrize(("source", "reason"), WRONG.values(), ids=WRONG.keys())
def test_improve_rejects_wrong_order_lists(improve: AppTask, tmp_path: Path, source: str, reason: str) -> None:
    passed, said = verdict(improve.check, run_cell(source, "lesson03-3")["my_views"])
    assert not passed and said.startswith("Not yet") and reason in said
    assert not (tmp_path / "my_app" / "03_order_list.py").exists()


def test_improve_starter_is_not_answered(improve: AppTask) -> None:
    namespace = run_cell(STARTER, "lesson03-4")
    passed, said = verdict(improve.check, namespace["my_views"])
    assert not passed and "Not answered yet" in said

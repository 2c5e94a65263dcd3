"""Lesson 03 · Joins and N+1: statement counts, lost rows and rows moved, and every check proven (right and wrong
answers, on both backends)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import Session, contains_eager, joinedload, raiseload, selectinload, subqueryload

from helpers.course import Course
from helpers.exercises.app_task import AppTask
from helpers.exercises.lesson03 import (
    JOINS_REFERENCE,
    LINES_ORDERS,
    Q1,
    Q2,
    Q3,
    Q4,
    STARTER_IMPROVE,
    exercises,
    improve_task,
    orders_with_names,
    q3_cities,
    q4_cities,
    review_counts,
    selectin_statements,
    top_customers,
)
from helpers.exercises.order_list import deep_pages
from helpers.measure.recorder import record, rows_fetched
from helpers.shop.models import Customer, Order, OrderLine, Review
from tests.cells import notebook_code_cells, run_cell
from tests.proving import prove, verdict

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
    cells = notebook_code_cells(NOTEBOOK)
    assert all(question.starter in cells for question in (Q1, Q2, Q3, Q4)) and STARTER_IMPROVE in cells


def test_exercises_binds_the_questions_and_the_task(course: Course) -> None:
    ex = exercises(course)
    assert (ex.q1.question, ex.q2.question, ex.q3.question, ex.q4.question) == (Q1, Q2, Q3, Q4)
    assert ex.q1.course is course and ex.improve.endpoint == "order_list" and ex.improve.course is course


def test_hints_teach_without_code(course: Course) -> None:
    """Two hints each, the idea then the API; code (a model's attribute, a call's arguments) only in solution()."""
    ex = exercises(course)
    for hints in [q.question.hints for q in (ex.q1, ex.q2, ex.q3, ex.q4)] + [ex.improve.hint_text]:
        assert isinstance(hints, tuple) and len(hints) >= 2
        for hint in hints:
            assert not re.search(r"\b(Customer|Product|Order|OrderLine|Review)\.\w", hint), hint
            assert not re.search(r"\w\((?!\.\.\.\))[^)]+\)", hint), hint


# ------------------------------------------------------------------ q1 · the page without the N+1
def newest(n: int) -> Any:
    return select(Order).order_by(Order.id.desc()).limit(n)


def with_option(option: Any) -> Callable[[Session, int], list[tuple[int, str]]]:
    def answer(session: Session, n: int) -> list[tuple[int, str]]:
        return [(o.id, o.customer.name) for o in session.scalars(newest(n).options(option))]

    return answer


def join_columns(session: Session, n: int) -> list[Any]:
    query = select(Order.id, Customer.name).join(Order.customer).order_by(Order.id.desc()).limit(n)
    return list(session.execute(query))


def eager_from_join(session: Session, n: int) -> list[tuple[int, str]]:
    query = newest(n).join(Order.customer).options(contains_eager(Order.customer))
    return [(o.id, o.customer.name) for o in session.scalars(query)]


def lazy(session: Session, n: int) -> list[tuple[int, str]]:
    return [(o.id, o.customer.name) for o in session.scalars(newest(n))]


def lazy_but_few(session: Session, n: int) -> list[tuple[int, str]]:
    """An N+1 that a loose check would pass: lazy on a page of two orders, then the rest joined."""
    head = lazy(session, min(n, 2))
    return head + join_columns(session, n)[len(head) :] if n > 2 else head


def oldest_first(session: Session, n: int) -> list[Any]:
    query = select(Order.id, Customer.name).join(Order.customer).order_by(Order.id).limit(n)
    return list(session.execute(query))


def sliced_in_python(session: Session, n: int) -> list[Any]:
    query = select(Order.id, Customer.name).join(Order.customer).order_by(Order.id.desc())
    return list(session.execute(query))[:n]


def test_q1_is_proven(course: Course) -> None:
    prove(
        Q1.bind(course).check,
        right=[
            orders_with_names,
            with_option(selectinload(Order.customer)),
            join_columns,
            eager_from_join,
            with_option(joinedload(Order.customer, innerjoin=True)),
            with_option(subqueryload(Order.customer)),
        ],
        wrong=[
            (lazy, "the budget is 2"),
            (lazy_but_few, "the budget is 2"),
            (oldest_first, "page of 30"),
            (sliced_in_python, "rows came back from the database"),
        ],
    )


def test_your_page_races_once_it_passes(course: Course, capsys: pytest.CaptureFixture[str]) -> None:
    ex = exercises(course)
    variants, best = ex.with_yours(lazy, {"lazy (N+1)": lazy})
    assert (list(variants), best) == (["lazy (N+1)", JOINS_REFERENCE], JOINS_REFERENCE)
    assert "does not pass its check yet (it ran" in capsys.readouterr().out
    variants, best = ex.with_yours(join_columns, {"lazy (N+1)": lazy})
    assert (list(variants), best) == (["lazy (N+1)", JOINS_REFERENCE, "yours"], "yours")


# ------------------------------------------------------------------ q2 · selectinload, counted
def test_q2_is_proven(course: Course) -> None:
    measured = selectin_statements(course)
    assert measured == 1 + -(-LINES_ORDERS // 500)  # 500 keys per IN: the lesson's point
    prove(
        Q2.bind(course).check,
        right=[measured, int(str(measured))],
        wrong=[
            (2, "at most 500 keys per IN"),
            (LINES_ORDERS + 1, "that is lazy loading"),
            (measured - 1, "the statement that loaded the orders"),
            (float(measured), "a whole number"),
        ],
    )


# ------------------------------------------------------------------ q3 · top customers, with a tie-breaker
def test_q3_cities_tie_at_the_cut(course: Course) -> None:
    """The check's cities make a tie-breaker visible in the result, not only in the SQL, on both backends."""
    cities = q3_cities(course)
    assert len(set(cities)) == 2
    with Session(course.engine) as s:
        for city in cities:
            counts = s.scalars(
                select(func.count(Order.id))
                .join(Customer.orders)
                .where(Customer.city == city)
                .group_by(Customer.id)
                .order_by(func.count(Order.id).desc())
                .limit(11)
            ).all()
            assert counts[9] == counts[10], city


def counted(city: str) -> Any:
    """Each customer of the city with their number of orders, in no particular order."""
    return (
        select(Customer.id, Customer.name, func.count(Order.id).label("orders"))
        .join(Customer.orders)
        .where(Customer.city == city)
        .group_by(Customer.id, Customer.name)
    )


def ranked_by(*order_by: Any) -> Callable[[Session, str], list[Any]]:
    def answer(session: Session, city: str) -> list[Any]:
        return list(session.execute(counted(city).order_by(*order_by).limit(10)))

    return answer


def from_a_subquery(session: Session, city: str) -> list[Any]:
    per_customer = (
        select(Order.customer_id, func.count().label("orders"))
        .group_by(Order.customer_id)
        .subquery("per_customer")
    )
    query = (
        select(Customer.id, Customer.name, per_customer.c.orders)
        .join(per_customer, per_customer.c.customer_id == Customer.id)
        .where(Customer.city == city)
        .order_by(per_customer.c.orders.desc(), per_customer.c.customer_id)
        .limit(10)
    )
    return list(session.execute(query))


def in_python(session: Session, city: str) -> list[Any]:
    return sorted(session.execute(counted(city)).all(), key=lambda r: (-r[2], r[0]))[:10]


ORDERS = func.count(Order.id)


def test_q3_is_proven(course: Course) -> None:
    prove(
        Q3.bind(course).check,
        right=[
            top_customers,
            ranked_by(ORDERS.desc(), Customer.id.desc()),  # another tie-breaker: other customers at the cut
            ranked_by(ORDERS.desc(), Customer.name, Customer.id),
            from_a_subquery,
        ],
        wrong=[
            (ranked_by(ORDERS.desc()), "has no tie-breaker"),
            (ranked_by(ORDERS.desc(), Customer.name), "has no tie-breaker"),
            (ranked_by(ORDERS, Customer.id), "the ten largest, in order"),
            (in_python, "rows came back from the database"),
        ],
    )


# ------------------------------------------------------------------ q4 · which join keeps every customer
def test_q4_cities_have_customers_without_reviews(course: Course) -> None:
    with Session(course.engine) as s:
        for city in q4_cities(course):
            assert any(row.reviews == 0 for row in review_counts(s, city)), city


def counts_by(join: str, counted_column: Any = None) -> Callable[[Session, str], list[Any]]:
    def answer(session: Session, city: str) -> list[Any]:
        count = func.count() if counted_column is None else func.count(counted_column)
        query = select(Customer.id, Customer.name, count)
        query = query.join(Customer.reviews) if join == "inner" else query.outerjoin(Customer.reviews)
        return list(
            session.execute(query.where(Customer.city == city).group_by(Customer.id).order_by(Customer.id))
        )

    return answer


def correlated(session: Session, city: str) -> list[Any]:
    """No join at all: a count per customer in a scalar subquery, also one statement."""
    reviews = select(func.count(Review.id)).where(Review.customer_id == Customer.id).scalar_subquery()
    query = select(Customer.id, Customer.name, reviews).where(Customer.city == city).order_by(Customer.id)
    return list(session.execute(query))


def lazy_reviews(session: Session, city: str) -> list[tuple[int, str, int]]:
    customers = session.scalars(select(Customer).where(Customer.city == city).order_by(Customer.id))
    return [(c.id, c.name, len(c.reviews)) for c in customers]


def test_q4_is_proven(course: Course) -> None:
    prove(
        Q4.bind(course).check,
        right=[review_counts, counts_by("outer", Review.customer_id), correlated],
        wrong=[
            (counts_by("inner", Review.id), "an inner join keeps only"),
            (counts_by("outer"), "count(*) counts the joined row"),
            (lazy_reviews, "the budget is 1"),
        ],
    )


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
LAZY_BODY = """    page = int_arg("page", 1)
    per_page = int_arg("per_page", 20, high=500)
    orders = get_session().scalars(
        select(Order).options(LOADERS).order_by(*NEWEST_FIRST).limit(per_page).offset((page - 1) * per_page)
    )
    return {
        "page": page,
        "orders": [
            {
                "id": order.id,
                "customer": order.customer.name,
                "status": order.status,
                "created_at": order.created_at.isoformat(),
                "total": order.total,
                "lines": len(order.lines),
            }
            for order in orders
        ],
    }
"""
LOADERS = "joinedload(Order.customer), selectinload(Order.lines)"
TWO_STATEMENTS = STARTER_IMPROVE.replace("    ____\n", LAZY_BODY.replace("LOADERS", LOADERS))
ONE_STATEMENT = STARTER_IMPROVE.replace(
    "    ____\n",
    """    page = int_arg("page", 1)
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
""",
)
WRONG = {  # a right answer, changed: (source, what the check says)
    "n-plus-one": (
        STARTER_IMPROVE.replace("    ____\n", LAZY_BODY.replace(".options(LOADERS)", "")),
        "the budget is 2",
    ),
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
    "offset-off-by-one": (
        ONE_STATEMENT.replace(".offset((page - 1) * per_page)", ".offset(page * per_page)"),
        "GET /orders: your JSON",
    ),
}


def test_deep_pages_stay_within_what_page_accepts() -> None:
    assert deep_pages(2_000, per_page=7) == [286, 287]
    assert deep_pages(200_000, per_page=7) == [10_000]


@pytest.fixture
def improve(course: Course, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppTask:
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    return improve_task(course)


def view(source: str, name: str) -> Any:
    return run_cell(source, name)["my_views"]


def test_improve_is_proven(improve: AppTask, tmp_path: Path) -> None:
    prove(
        improve.check,
        right=[view(TWO_STATEMENTS, "lesson03-two"), view(ONE_STATEMENT, "lesson03-one")],
        wrong=[(view(source, f"lesson03-{name}"), reason) for name, (source, reason) in WRONG.items()],
    )
    assert (tmp_path / "my_app" / "03_order_list.py").exists()


def test_improve_races_the_reference_despite_its_cursor(improve: AppTask) -> None:
    race = improve.race(run_cell(ONE_STATEMENT, "lesson03-2")["my_views"], reference=True, repeat=2)
    assert race["the course's version"].statements == 1 and race["yours"].statements == 1
    assert race["baseline (lesson 01)"].statements > 20


def test_improve_starter_is_not_answered(improve: AppTask) -> None:
    namespace = run_cell(STARTER_IMPROVE, "lesson03-4")
    passed, said = verdict(improve.check, namespace["my_views"])
    assert not passed and "Not answered yet" in said

"""Lesson 02 · Projection: the facts the lesson shows, and every check proven (right and wrong answers, on both
backends)."""

from __future__ import annotations

import inspect
import re
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import Bundle, Session, defer, load_only

from helpers.course import Course
from helpers.exercises import ____
from helpers.exercises.app_task import AppTask
from helpers.exercises.lesson02 import (
    COLUMNS_REFERENCE,
    Q1,
    Q2,
    Q3,
    Q4,
    STARTER_IMPROVE,
    TRAP_CATEGORY,
    Lesson02Exercises,
    customer_columns,
    exercises,
    improve_task,
    note_previews,
    product_cards,
    trap_statements,
)
from helpers.measure.recorder import bytes_fetched, record, value_bytes
from helpers.shop import optimized
from helpers.shop.models import Customer, Product
from tests.cells import notebook_code_cells, run_cell
from tests.proving import prove, verdict

N = 40
NOTEBOOK = "02_projection.ipynb"


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


def test_bytes_are_counted_as_utf8_and_fixed_sizes() -> None:
    assert [value_bytes(v) for v in ("abc", "Zoë", "€", None, 7, 2.5, Decimal("1.10"), b"\x00\x01")] == [
        3, 4, 3, 0, 8, 8, 8, 2,
    ]  # fmt: skip


def test_projections_move_the_same_bytes_and_fewer_than_whole_rows(course: Course) -> None:
    moved = {}
    for name, query in {
        "whole": select(Customer).order_by(Customer.id).limit(N),
        "load_only": select(Customer)
        .options(load_only(Customer.id, Customer.name))
        .order_by(Customer.id)
        .limit(N),
        "columns": select(Customer.id, Customer.name).order_by(Customer.id).limit(N),
    }.items():
        with Session(course.engine) as s, record(course.engine) as rec:
            s.execute(query).all()
        moved[name] = bytes_fetched(course.engine, rec)
    assert moved["load_only"] == moved["columns"] < moved["whole"] / 5


def test_the_lessons_exercises_are_its_questions_and_its_task(course: Course) -> None:
    ex = exercises(course)
    assert isinstance(ex, Lesson02Exercises) and isinstance(ex.improve, AppTask)
    assert [e.question for e in (ex.q1, ex.q2, ex.q3, ex.q4)] == [Q1, Q2, Q3, Q4]
    assert all(e.course is course for e in (ex.q1, ex.q2, ex.q3, ex.q4)) and ex.improve.course is course


def test_the_notebook_holds_each_starter_verbatim() -> None:
    cells = notebook_code_cells(NOTEBOOK)
    assert all(question.starter in cells for question in (Q1, Q2, Q3, Q4)) and STARTER_IMPROVE in cells


def test_hints_teach_without_code(course: Course, capsys: pytest.CaptureFixture[str]) -> None:
    """Two hints each, the idea then the API; code (a model's attribute, a call's arguments) only in solution()."""
    ex = exercises(course)
    for hints in [q.question.hints for q in (ex.q1, ex.q2, ex.q3, ex.q4)] + [ex.improve.hint_text]:
        assert isinstance(hints, tuple) and len(hints) >= 2
        for hint in hints:
            assert not re.search(r"\b(Customer|Product|Order|OrderLine)\.\w", hint), hint
            assert not re.search(r"\w\((?!\.\.\.\))[^)]+\)", hint), hint
    ex.improve.hint(2)
    assert capsys.readouterr().out.startswith("Hint 2 of 2:")


# ---------------------------------------------------------------- q1: your select() of columns
def via_connection(session: Session, n: int) -> list[Any]:
    query = select(Customer.id, Customer.name, Customer.email).order_by(Customer.id.asc()).limit(n)
    return list(session.connection().execute(query))


def in_sql_text(session: Session, n: int) -> list[Any]:
    return list(session.execute(text("SELECT id, name, email FROM customers ORDER BY id LIMIT :n"), {"n": n}))


def bundled(session: Session, n: int) -> list[tuple[Any, ...]]:
    customer = Bundle("customer", Customer.id, Customer.name, Customer.email)
    return [tuple(row.customer) for row in session.execute(select(customer).order_by(Customer.id).limit(n))]


def whole_customers(session: Session, n: int) -> list[tuple[Any, ...]]:
    return [(c.id, c.name, c.email) for c in session.scalars(select(Customer).order_by(Customer.id).limit(n))]


def load_only_objects(session: Session, n: int) -> list[tuple[Any, ...]]:
    query = select(Customer).options(load_only(Customer.id, Customer.name, Customer.email))
    return [(c.id, c.name, c.email) for c in session.scalars(query.order_by(Customer.id).limit(n))]


def sliced_in_python(session: Session, n: int) -> list[Any]:
    return list(session.execute(select(Customer.id, Customer.name, Customer.email).order_by(Customer.id)))[:n]


def sorted_in_python(session: Session, n: int) -> list[Any]:
    rows = session.execute(select(Customer.id, Customer.name, Customer.email).where(Customer.id <= n)).all()
    return sorted(rows, key=lambda row: row.id)


def hard_coded(session: Session, n: int) -> list[Any]:
    return customer_columns(session, 120)


def test_q1_is_proven(course: Course) -> None:
    prove(
        Q1.bind(course).check,
        right=[customer_columns, via_connection, in_sql_text, bundled],
        wrong=[
            (whole_customers, "also reads address, city, created_at, notes"),
            (load_only_objects, "Customer objects"),
            (sliced_in_python, "came back from the database for n=7"),
            (sorted_in_python, "no ORDER BY customers.id"),
            (hard_coded, "result for n=7"),
        ],
    )


def test_your_columns_race_once_they_pass(course: Course, capsys: pytest.CaptureFixture[str]) -> None:
    ex = exercises(course)
    contrast = {"whole entities": whole_customers}

    def blank(session: Session, n: int) -> Any:
        return ____

    for answer, said in [(blank, "still has ____"), (hard_coded, "does not pass its check yet")]:
        variants, best = ex.with_yours(answer, contrast)
        assert (list(variants), best) == (["whole entities", COLUMNS_REFERENCE], COLUMNS_REFERENCE)
        out = capsys.readouterr().out
        assert said in out and out.count("\n") == 1
    variants, best = ex.with_yours(via_connection, contrast)
    assert (list(variants), best) == (["whole entities", COLUMNS_REFERENCE, "yours"], "yours")
    assert capsys.readouterr().out == ""


# ---------------------------------------------------------------- q2: the trap, counted
def test_q2_is_proven(course: Course) -> None:
    with Session(course.engine) as s:
        products = s.scalar(select(func.count()).where(Product.category == TRAP_CATEGORY))
    assert products and products > 1
    measured = trap_statements(course)
    assert measured == 1 + 2 * products  # one per deferred column per product: the lesson's point
    prove(
        Q2.bind(course).check,
        right=[measured, int(f"{1 + 2 * products}")],
        wrong=[
            (1 + products, "reads two deferred columns"),
            (2 * products, "the statement that loaded the list"),
            (1, "the list was one statement"),
            (str(measured), "a whole number"),
            (____, "replace ____"),
        ],
    )


# ---------------------------------------------------------------- q3: objects that refuse to lazy-load
def cards(*columns: Any, raiseload: bool = True, order: bool = True) -> Any:
    def answer(session: Session, category: str) -> list[Any]:
        query = select(Product).where(Product.category == category)
        if columns:
            query = query.options(load_only(*columns, raiseload=raiseload))
        return list(session.scalars(query.order_by(Product.id) if order else query))

    return answer


def deferred(session: Session, category: str) -> list[Product]:
    query = (
        select(Product)
        .options(defer(Product.category, raiseload=True), defer(Product.description, raiseload=True))
        .where(Product.category == category)
        .order_by(Product.id)
    )
    return list(session.scalars(query))


def rows_not_objects(session: Session, category: str) -> list[Any]:
    query = select(Product.id, Product.name, Product.price).where(Product.category == category)
    return list(session.execute(query.order_by(Product.id)))


def test_q3_is_proven(course: Course) -> None:
    with Session(course.engine) as s:
        busiest = s.scalar(
            select(Product.category).group_by(Product.category).order_by(func.count().desc(), Product.category)
        )

    def busiest_only(session: Session, category: str) -> list[Any]:
        """Right for the busiest category, hard-coded: the second category catches it."""
        return product_cards(session, str(busiest))

    prove(
        Q3.bind(course).check,
        right=[product_cards, deferred, cards(Product.name, Product.price, Product.id)],
        wrong=[
            (cards(Product.id, Product.name, Product.price, raiseload=False), "make the objects refuse"),
            (cards(), "also reads products.category, products.description"),
            (cards(Product.id, Product.name, raiseload=False), "more statements: load all three"),
            (cards(Product.id, Product.name), "reading id, name or price raised"),
            (cards(Product.id, Product.name, Product.price, order=False), "no ORDER BY products.id"),
            (rows_not_objects, "return a list of Product objects"),
            (busiest_only, "cards"),
        ],
    )


# ---------------------------------------------------------------- q4: an expression in the SELECT
def substring(session: Session, city: str) -> list[Any]:
    preview = func.substr(Customer.notes, 1, 40)  # unlabelled: the rows compare by value
    query = select(Customer.id, Customer.name, preview).where(Customer.city == city).order_by(Customer.id)
    return list(session.execute(query))


def cut_in_python(session: Session, city: str) -> list[tuple[int, str, str]]:
    rows = session.execute(
        select(Customer.id, Customer.name, Customer.notes).where(Customer.city == city).order_by(Customer.id)
    )
    return [(i, name, notes[:40]) for i, name, notes in rows]


def cut_objects_in_python(session: Session, city: str) -> list[tuple[int, str, str]]:
    customers = session.scalars(
        select(Customer)
        .options(load_only(Customer.id, Customer.name, Customer.notes))
        .where(Customer.city == city)
        .order_by(Customer.id)
    )
    return [(c.id, c.name, c.notes[:40]) for c in customers]


def substr_from_zero(session: Session, city: str) -> list[Any]:
    preview = func.substr(Customer.notes, 0, 40)  # SQL counts from 1: 39 characters on both backends
    query = select(Customer.id, Customer.name, preview).where(Customer.city == city).order_by(Customer.id)
    return list(session.execute(query))


def porto_only(session: Session, city: str) -> list[Any]:
    return note_previews(session, "Porto")


def test_q4_is_proven(course: Course) -> None:
    prove(
        Q4.bind(course).check,
        right=[note_previews, substring],
        wrong=[
            (cut_in_python, "cut the notes in the SELECT"),
            (cut_objects_in_python, "cut the notes in the SELECT"),
            (substr_from_zero, "item 0 of your"),
            (porto_only, "Graz previews"),
        ],
    )


def test_unanswered_starters_are_not_marked_right(course: Course, capsys: pytest.CaptureFixture[str]) -> None:
    def starter(session: Session, city: str) -> object:
        return ____

    for q in (Q1, Q3, Q4):
        assert not q.bind(course).check(starter)
        assert capsys.readouterr().out.startswith("Not answered yet")


# ---------------------------------------------------------------- improve the app: the customer page
@pytest.fixture(scope="module")
def task(course: Course) -> AppTask:
    return improve_task(course)


@pytest.fixture
def improve(task: AppTask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppTask:
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))  # answers are saved here, not in the learner's data/
    return task


RIGHT = STARTER_IMPROVE.replace(
    "    ____\n",
    """    session = get_session()
    customer = session.execute(
        select(Customer.id, Customer.name, Customer.email, Customer.city).where(Customer.id == customer_id)
    ).first()
    if customer is None:
        abort(404, description=f"no customer with id {customer_id}")
    orders = session.execute(
        select(Order.id, Order.status, Order.created_at, Order.total)
        .where(Order.customer_id == customer_id)
        .order_by(Order.created_at.desc(), Order.id.desc())
    )
    return {
        "id": customer.id,
        "name": customer.name,
        "email": customer.email,
        "city": customer.city,
        "orders": [
            {"id": o.id, "status": o.status, "created_at": o.created_at.isoformat(), "total": o.total,
             "lines": session.scalar(select(func.count()).where(OrderLine.order_id == o.id))}
            for o in orders
        ],
    }
""",
)
REFERENCE = 'my_views = Blueprint("my_views", __name__)\n\n\n' + inspect.getsource(
    optimized.customer_page
).replace("@bp.", "@my_views.")
COUNT_LINE = '"lines": session.scalar(select(func.count()).where(OrderLine.order_id == o.id))'
AT_ONCE = """    orders = orders.all()
    ids = [o.id for o in orders]
    lines = Counter(session.scalars(select(OrderLine.order_id).where(OrderLine.order_id.in_(ids))))
    return {
"""
WRONG = {  # the right answer, changed: (source, what the check says)
    "whole-customer": (
        RIGHT.replace(
            """    customer = session.execute(
        select(Customer.id, Customer.name, Customer.email, Customer.city).where(Customer.id == customer_id)
    ).first()""",
            "    customer = session.get(Customer, customer_id)",
        ),
        "still reads customers.address, customers.notes",
    ),
    "whole-orders": (
        RIGHT.replace("select(Order.id, Order.status, Order.created_at, Order.total)", "select(Order)").replace(
            "    orders = session.execute(", "    orders = session.scalars("
        ),
        "still reads orders.shipping_address, orders.note",
    ),
    "select-star": (
        RIGHT.replace(
            "select(Customer.id, Customer.name, Customer.email, Customer.city).where(Customer.id == customer_id)",
            'text("SELECT * FROM customers WHERE id = :id"), {"id": customer_id}',
        ),
        "every column (SELECT *)",
    ),
    "oldest-first": (
        RIGHT.replace(".order_by(Order.created_at.desc(), Order.id.desc())", ".order_by(Order.created_at)"),
        "JSON['orders'][0]",
    ),
    "float-total": (RIGHT.replace('"total": o.total,', '"total": float(o.total),'), "['total'] is"),
    "lines-forgotten": (RIGHT.replace(COUNT_LINE, '"lines": 0'), "['lines'] is 0"),
    "lines-counted-in-python": (
        RIGHT.replace(
            COUNT_LINE,
            '"lines": len(session.scalars(select(OrderLine.id).where(OrderLine.order_id == o.id)).all())',
        ),
        "reads order_lines without count()",
    ),
    "lines-counted-in-python-at-once": (
        RIGHT.replace(
            "    return {\n",
            "    orders = orders.all()\n    lines = Counter(session.scalars(\n"
            "        select(OrderLine.order_id).where(OrderLine.order_id.in_([o.id for o in orders]))))\n"
            "    return {\n",
        ).replace(COUNT_LINE, '"lines": lines[o.id]'),
        "reads order_lines without count()",
    ),
}


def answer(source: str, name: str) -> Any:
    return run_cell(source, name, Counter=Counter, text=text)["my_views"]


def test_improve_is_proven(improve: AppTask, tmp_path: Path) -> None:
    prove(
        improve.check,
        right=[answer(RIGHT, "lesson02-right"), answer(REFERENCE, "lesson02-reference")],
        wrong=[(answer(source, f"lesson02-{name}"), reason) for name, (source, reason) in WRONG.items()],
    )
    assert (tmp_path / "my_app" / "02_customer_page.py").exists()


def test_improve_says_what_it_checked(improve: AppTask) -> None:
    passed, said = verdict(improve.check, answer(RIGHT, "lesson02-said"))
    assert passed and said.startswith("Correct! Your customer page gives the baseline's answers to 6 requests")
    assert "none of its SELECTs reads a wide column and the database counts the lines" in said


def test_the_task_asks_for_busy_ordinary_orderless_and_missing_customers(improve: AppTask, course: Course) -> None:
    urls = [call.url for call in improve.calls]
    last = course.info.rows["customers"]
    assert urls[-3:] == [f"/customers/{last + 1}", "/customers/2147483647", "/customers/1000000000000"]
    assert len(urls) == 6  # busy, ordinary, without orders: three different customers on both datasets
    assert improve.timed.url == "/customers/1" and improve.budget is None


def test_the_unanswered_starter_races_the_baseline_against_the_reference(improve: AppTask) -> None:
    starter = answer(STARTER_IMPROVE, "lesson02-starter")
    passed, said = verdict(improve.check, starter)
    assert not passed and said.startswith("Not answered yet")
    race = improve.race(starter, reference=True)
    assert [m.variant for m in race.measurements] == ["baseline (lesson 01)", "the course's version"]
    assert race["the course's version"].statements == 2 < race.baseline.statements

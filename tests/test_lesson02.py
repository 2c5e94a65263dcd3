"""Lesson 02 · Projection: the facts the lesson shows, pinned down on both backends."""

from __future__ import annotations

import inspect
import json
import linecache
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from flask import Blueprint
from sqlalchemy import func, select
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import Bundle, Session, defer, load_only

from helpers.course import Course
from helpers.exercises import ____
from helpers.exercises.app_task import AppTask
from helpers.exercises.lesson02 import (
    Q1,
    Q2,
    Q3,
    Lesson02Exercises,
    customers_in_city,
    exercises,
    improve_task,
    note_previews,
    product_cards,
)
from helpers.measure.recorder import bytes_fetched, record, value_bytes
from helpers.shop import kit, optimized
from helpers.shop.models import Customer, Product

N = 40
NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "02_projection.ipynb"


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


@pytest.fixture(scope="module")
def task(course: Course) -> AppTask:
    return improve_task(course)


def rejected(result: Any, capsys: pytest.CaptureFixture[str], reason: str) -> bool:
    """The check said no, on one line, for `reason`."""
    out = capsys.readouterr().out
    return not result and out.startswith("Not yet — ") and out.count("\n") == 1 and reason in out


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
    assert [e.question for e in (ex.q1, ex.q2, ex.q3)] == [Q1, Q2, Q3]
    assert all(e.course is course for e in (ex.q1, ex.q2, ex.q3)) and ex.improve.course is course


def test_the_notebook_holds_each_starter_verbatim() -> None:
    cells = ["".join(cell["source"]) for cell in json.loads(NOTEBOOK.read_text())["cells"]]
    assert all(question.starter in cells for question in (Q1, Q2, Q3))


# ---------------------------------------------------------------- q1: three columns, ordered by the database
def test_q1_passes_the_reference(course: Course, capsys: pytest.CaptureFixture[str]) -> None:
    assert Q1.bind(course).check(customers_in_city)
    assert capsys.readouterr().out.startswith("Correct!")


def whole_entities(session: Session, city: str) -> list[tuple[int, str, str]]:
    customers = session.scalars(select(Customer).where(Customer.city == city).order_by(Customer.id))
    return [(c.id, c.name, c.city) for c in customers]


def unordered(session: Session, city: str) -> list[Any]:
    """Right on SQLite by luck: rows come back in the table's order, which nothing promises."""
    return list(session.execute(select(Customer.id, Customer.name, Customer.city).where(Customer.city == city)))


def sorted_in_python(session: Session, city: str) -> list[Any]:
    rows = session.execute(select(Customer.id, Customer.name, Customer.city).where(Customer.city == city))
    return sorted(rows, key=lambda row: row.id)


def filtered_in_python(session: Session, city: str) -> list[Any]:
    rows = session.execute(select(Customer.id, Customer.name, Customer.city).order_by(Customer.id))
    return [row for row in rows if row.city == city]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (whole_entities, "still reads customers.address"),
        (unordered, "no ORDER BY customers.id"),
        (sorted_in_python, "no ORDER BY customers.id"),
        (filtered_in_python, "came back from the database for"),
    ],
    ids=["whole-entities", "no-order-by", "sorted-in-python", "filtered-in-python"],
)
def test_q1_rejects(course: Course, capsys: pytest.CaptureFixture[str], answer: Any, reason: str) -> None:
    assert rejected(Q1.bind(course).check(answer), capsys, reason)


# ---------------------------------------------------------------- q2: objects that refuse to lazy-load
def test_q2_passes_the_reference_and_defer_with_raiseload(course: Course) -> None:
    assert Q2.bind(course).check(product_cards)

    def deferred(session: Session, category: str) -> list[Product]:
        query = (
            select(Product)
            .options(defer(Product.category, raiseload=True), defer(Product.description, raiseload=True))
            .where(Product.category == category)
            .order_by(Product.id)
        )
        return list(session.scalars(query))

    assert Q2.bind(course).check(deferred)


def cards(*columns: Any, raiseload: bool = True, order: bool = True) -> Any:
    def answer(session: Session, category: str) -> list[Any]:
        query = select(Product).where(Product.category == category)
        if columns:
            query = query.options(load_only(*columns, raiseload=raiseload))
        return list(session.scalars(query.order_by(Product.id) if order else query))

    return answer


def rows_not_objects(session: Session, category: str) -> list[Any]:
    query = select(Product.id, Product.name, Product.price).where(Product.category == category)
    return list(session.execute(query.order_by(Product.id)))


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (cards(Product.id, Product.name, Product.price, raiseload=False), "add raiseload=True"),
        (cards(), "also reads products.category, products.description"),
        (cards(Product.id, Product.name, raiseload=False), "more statements: load all three"),
        (cards(Product.id, Product.name), "reading id, name or price raised"),
        (cards(Product.id, Product.name, Product.price, order=False), "no ORDER BY products.id"),
        (rows_not_objects, "return a list of Product objects"),
    ],
    ids=["no-raiseload", "whole-entities", "price-lazy-loaded", "price-not-loaded", "unordered", "rows"],
)
def test_q2_rejects(course: Course, capsys: pytest.CaptureFixture[str], answer: Any, reason: str) -> None:
    assert rejected(Q2.bind(course).check(answer), capsys, reason)


# ---------------------------------------------------------------- q3: an expression in the SELECT
def test_q3_passes_the_reference(course: Course, capsys: pytest.CaptureFixture[str]) -> None:
    assert Q3.bind(course).check(note_previews)
    assert "bytes came back" in capsys.readouterr().out


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
    preview = func.substr(Customer.notes, 0, 40)  # SQL counts from 1: SQLite gives 39 characters, PostgreSQL too
    query = select(Customer.id, Customer.name, preview).where(Customer.city == city).order_by(Customer.id)
    return list(session.execute(query))


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (cut_in_python, "cut the notes in the SELECT"),
        (cut_objects_in_python, "cut the notes in the SELECT"),
        (substr_from_zero, "item 0 of your result"),
    ],
    ids=["columns-cut-in-python", "objects-cut-in-python", "substr-from-0"],
)
def test_q3_rejects(course: Course, capsys: pytest.CaptureFixture[str], answer: Any, reason: str) -> None:
    assert rejected(Q3.bind(course).check(answer), capsys, reason)


def test_unanswered_starters_are_not_marked_right(course: Course, capsys: pytest.CaptureFixture[str]) -> None:
    def starter(session: Session, city: str) -> object:
        return ____

    for q in (Q1.bind(course), Q2.bind(course), Q3.bind(course)):
        assert not q.check(starter)
        assert capsys.readouterr().out.startswith("Not answered yet")


# ---------------------------------------------------------------- improve the app: the customer page
RIGHT = """
my_views = Blueprint("my_views", __name__)


@my_views.get(f"/customers/<{ID}:customer_id>")
def customer_page(customer_id):
    session = get_session()
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


ex.improve.check(my_views)
"""
REFERENCE = 'my_views = Blueprint("my_views", __name__)\n\n\n' + inspect.getsource(
    optimized.customer_page
).replace("@bp.", "@my_views.")
WHOLE_CUSTOMER = RIGHT.replace(
    """    customer = session.execute(
        select(Customer.id, Customer.name, Customer.email, Customer.city).where(Customer.id == customer_id)
    ).first()""",
    "    customer = session.get(Customer, customer_id)",
)
WHOLE_ORDERS = RIGHT.replace(
    "select(Order.id, Order.status, Order.created_at, Order.total)", "select(Order)"
).replace("    orders = session.execute(", "    orders = session.scalars(")
SELECT_STAR = RIGHT.replace(
    """    customer = session.execute(
        select(Customer.id, Customer.name, Customer.email, Customer.city).where(Customer.id == customer_id)
    ).first()""",
    '    customer = session.execute(text("SELECT * FROM customers WHERE id = :id"), {"id": customer_id}).first()',
)
OLDEST_FIRST = RIGHT.replace(".order_by(Order.created_at.desc(), Order.id.desc())", ".order_by(Order.created_at)")
FLOAT_TOTAL = RIGHT.replace('"total": o.total,', '"total": float(o.total),')
LINES_FORGOTTEN = RIGHT.replace(
    '"lines": session.scalar(select(func.count()).where(OrderLine.order_id == o.id))', '"lines": 0'
)


def cell(source: str, number: int) -> Blueprint:
    """Run `source` as IPython runs a notebook cell (its code registered in linecache); return its blueprint."""
    filename = f"/tmp/ipykernel_0/lesson02_cell{number}.py"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict[str, Any] = {name: getattr(kit, name) for name in kit.__all__} | {"__name__": "__main__"}
    exec(compile(source.split("\n\nex.improve")[0], filename, "exec"), namespace)
    views: Blueprint = namespace["my_views"]
    return views


@pytest.fixture
def improve(task: AppTask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppTask:
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))  # answers are saved here, not in the learner's data/
    return task


def test_the_task_asks_for_busy_ordinary_orderless_and_missing_customers(improve: AppTask, course: Course) -> None:
    urls = [call.url for call in improve.calls]
    last = course.info.rows["customers"]
    assert urls[-3:] == [f"/customers/{last + 1}", "/customers/2147483647", "/customers/1000000000000"]
    assert len(urls) == 6  # busy, ordinary, without orders: three different customers on both datasets
    assert improve.timed.url == "/customers/1" and improve.budget is None


@pytest.mark.parametrize("source", [RIGHT, REFERENCE], ids=["projection", "reference"])
def test_improve_passes_a_projection_and_saves_it(
    improve: AppTask, tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str
) -> None:
    assert improve.check(cell(source, 1))
    out = capsys.readouterr().out
    assert out.startswith("Correct! Your customer page gives the baseline's answers to 6 requests")
    assert "none of its SELECTs reads a wide column" in out
    assert (tmp_path / "my_app" / "02_customer_page.py").exists()


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (WHOLE_CUSTOMER, "still reads customers.address, customers.notes"),
        (WHOLE_ORDERS, "still reads orders.shipping_address, orders.note"),
        (SELECT_STAR, "every column (SELECT *)"),
        (OLDEST_FIRST, "JSON['orders'][0]"),
        (FLOAT_TOTAL, "['total'] is"),
        (LINES_FORGOTTEN, "['lines'] is 0"),
    ],
    ids=["whole-customer", "whole-orders", "select-star", "oldest-first", "float-total", "lines-forgotten"],
)
def test_improve_rejects(
    improve: AppTask, tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str, reason: str
) -> None:
    assert not improve.check(cell(source, 2))
    out = capsys.readouterr().out
    assert out.startswith("Not yet — ") and reason in out, out
    assert not (tmp_path / "my_app" / "02_customer_page.py").exists()


def test_an_unanswered_view_races_the_baseline_against_the_reference(
    improve: AppTask, capsys: pytest.CaptureFixture[str]
) -> None:
    starter = cell(RIGHT.replace("    session = get_session()", "    session = ____"), 3)
    assert not improve.check(starter)
    assert capsys.readouterr().out.startswith("Not answered yet")
    race = improve.race(starter, reference=True)
    assert [m.variant for m in race.measurements] == ["baseline (lesson 01)", "the course's version"]
    assert race["the course's version"].statements == 2 < race.baseline.statements

"""Lesson 05 · Indexes for the app's endpoints: what serves a search and a deep page, on private copies; its three
exercises and its two improve-the-app tasks proven on both backends."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from inspect import getsource
from pathlib import Path
from typing import Any

import pytest
from flask import Blueprint
from sqlalchemy import (
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    func,
    inspect,
    select,
    text,
    tuple_,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.schema import CreateIndex, CreateTable

from helpers.course import Course
from helpers.exercises.app_task import AppTask
from helpers.exercises.lesson05 import (
    LIST_PAGE,
    Q1,
    Q2,
    Q3,
    exercises,
    keyset_task,
    next_page_after,
    search_task,
    seeking_clauses,
)
from helpers.measure.plans import analyze
from helpers.shop import optimized
from helpers.shop.models import Customer, Order, Review
from helpers.shop.queries import NEWEST_FIRST
from helpers.topics.endpoint_indexes import TIES, explain_case_sensitive_like, sorts_by_bytes
from helpers.topics.indexing import index_definition
from tests import test_lesson04
from tests.cells import notebook_code_cells, run_cell
from tests.proving import prove, verdict

NOTEBOOK = "05_indexes_for_endpoints.ipynb"
lab = test_lesson04.lab  # the fixture: a private copy of the dataset for each test
ddl = test_lesson04.ddl  # DDL on a copy, then fresh statistics


def cell(name: str) -> str:
    """The notebook's code cell that defines `name` (a starter, or the section's models)."""
    return next(
        source
        for source in notebook_code_cells(NOTEBOOK)
        if re.search(rf"^(def|class) {name}\b|^{name} = ", source, re.M)
    )


# ------------------------------------------------------------------ searching by name
def test_a_fragment_never_seeks_a_prefix_does_with_the_right_index(lab: Course) -> None:
    fragment = select(Customer.id).where(Customer.name.like("%an%"))
    prefix = select(Customer.id).where(Customer.name.like("An%"))
    ddl(lab, "CREATE INDEX ix_customers_name ON customers (name)")
    assert not lab.explain(fragment).searches("name")
    if lab.backend == "sqlite":
        # LIKE ignores case in SQLite; a BINARY index cannot serve it until the index or LIKE agrees.
        assert not lab.explain(prefix).searches("name")
        ddl(lab, "CREATE INDEX ix_customers_name_nocase ON customers (name COLLATE NOCASE)")
        assert lab.explain(prefix).uses_index("ix_customers_name_nocase") and lab.explain(prefix).searches("name")
        assert explain_case_sensitive_like(lab.engine, prefix).uses_index("ix_customers_name")
    else:
        assert sorts_by_bytes(
            lab.engine
        )  # the course's cluster: initdb --no-locale (another: test_endpoint_indexes)
        assert lab.explain(prefix).uses_index("ix_customers_name") and lab.explain(prefix).searches("name")
    assert not lab.explain(fragment).searches("name")


def test_an_expression_index_serves_lower_name(lab: Course) -> None:
    exact = select(Customer.id).where(func.lower(Customer.name) == "ana silva")
    assert lab.explain(exact).scans("customers")
    ddl(lab, "CREATE INDEX ix_customers_lower_name ON customers (lower(name))")
    assert lab.explain(exact).uses_index("ix_customers_lower_name") and not lab.explain(exact).scans("customers")


# ------------------------------------------------------------------ paging


# ------------------------------------------------------------------ paging
def test_keyset_seeks_where_offset_walks(lab: Course) -> None:
    ddl(lab, "CREATE INDEX ix_orders_created_at_id ON orders (created_at, id)")
    listing = select(Order.id, Order.created_at).order_by(*NEWEST_FIRST).limit(20)
    with lab.session() as s:
        after = s.scalar(select(Order.id).order_by(*NEWEST_FIRST).offset(999).limit(1))
    after_created_at = select(Order.created_at).where(Order.id == after).scalar_subquery()
    keyset = listing.where(tuple_(Order.created_at, Order.id) < tuple_(after_created_at, after))
    offset = listing.offset(1000)
    with lab.session() as s:
        assert s.execute(keyset).all() == s.execute(offset).all()
    assert lab.explain(keyset).searches("created_at") and not lab.explain(offset).searches("created_at")
    if lab.backend == "postgresql":  # the scan read every skipped entry; the seek read the page
        walked = re.findall(r"Index .*Scan.*actual rows=(\d+)", lab.explain(offset, analyze=True).text)
        sought = re.findall(r"Index .*Scan Backward.*actual rows=(\d+)", lab.explain(keyset, analyze=True).text)
        assert int(walked[0]) == 1020 and int(sought[0]) == 20


# ------------------------------------------------------------------ declaring indexes
def test_unique_makes_a_constraint_index_unique_a_unique_index(lab: Course) -> None:
    metadata = MetaData()
    constraint = Table(
        "t05_unique", metadata, Column("id", Integer, primary_key=True), Column("email", String(50), unique=True)
    )
    index = Table(
        "t05_index",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("email", String(50), index=True, unique=True),
    )
    assert "UNIQUE (email)" in str(CreateTable(constraint).compile(lab.engine)) and not constraint.indexes
    assert "UNIQUE" not in str(CreateTable(index).compile(lab.engine))
    assert [str(CreateIndex(ix).compile(lab.engine)) for ix in index.indexes] == [
        "CREATE UNIQUE INDEX ix_t05_index_email ON t05_index (email)"
    ]
    metadata.create_all(lab.engine)
    found = inspect(lab.engine)
    assert [uc["column_names"] for uc in found.get_unique_constraints("t05_unique")] == [["email"]]
    assert [(ix["name"], bool(ix["unique"])) for ix in found.get_indexes("t05_index")] == [
        ("ix_t05_index_email", True)
    ]


def test_partial_index_declared_for_both_backends(lab: Course) -> None:
    metadata = MetaData()
    reviews = Review.__table__.to_metadata(metadata)
    reviews.indexes.clear()
    low = text("rating <= 2")
    partial = Index("ix_t05_low_rating", reviews.c.product_id, sqlite_where=low, postgresql_where=low)
    with lab.engine.begin() as conn:
        partial.create(conn)
    analyze(lab.engine)
    assert "WHERE" in index_definition(lab.engine, "ix_t05_low_rating")
    query = select(Review.id).where(Review.product_id == 5, Review.rating <= 2)
    assert lab.explain(query).uses_index("ix_t05_low_rating")
    assert not any(ix.name == "ix_t05_low_rating" for ix in Review.__table__.indexes)


@pytest.mark.postgres
def test_create_index_concurrently_needs_autocommit(course: Course, lab: Course) -> None:
    if lab.backend != "postgresql":
        pytest.skip("CONCURRENTLY is PostgreSQL's")
    metadata = MetaData()
    orders = Order.__table__.to_metadata(metadata)
    orders.indexes.clear()
    index = Index("ix_t05_status", orders.c.status, postgresql_concurrently=True)
    assert str(CreateIndex(index).compile(lab.engine)).startswith("CREATE INDEX CONCURRENTLY")
    with pytest.raises(DBAPIError, match="cannot run inside a transaction block"), lab.engine.begin() as conn:
        index.create(conn)
    with lab.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        index.create(conn)
    assert "ix_t05_status" in {ix["name"] for ix in inspect(lab.engine).get_indexes("orders")}


# ------------------------------------------------------------------ the exercises
def test_exercises_binds_everything_to_the_lessons_copy(course: Course, lab: Course) -> None:
    assert all(question.starter in notebook_code_cells(NOTEBOOK) for question in (Q1, Q2, Q3))  # as committed
    ex = exercises(course, lab)
    assert (ex.q1.question, ex.q2.question, ex.q3.question) == (Q1, Q2, Q3)
    assert ex.q1.course is ex.q2.course is lab and ex.q3.course is course  # q3's index goes on a fresh copy
    assert ex.improve.course is ex.improve_search.course is lab
    assert ex.improve.baseline_course is None and ex.improve_search.baseline_course is None  # the same data
    assert sorted(ex.search_clauses) == list("abcdef") and len(ex.login_emails) == 2 and ex.per_page == LIST_PAGE


@pytest.fixture
def named(lab: Course) -> Course:
    """The lesson's copy with its indexes on customers' names, as exercise 1 finds it."""
    ddl(
        lab,
        "CREATE INDEX ix_customers_name ON customers (name)",
        "CREATE INDEX ix_customers_lower_name ON customers (lower(name))",
    )
    return lab


def test_q1_is_proven(named: Course) -> None:
    seeking = seeking_clauses(named)
    assert {"a", "d"} <= seeking and not {"c", "e"} & seeking  # on every backend
    assert ("b" in seeking) == ("f" in seeking) == (named.backend == "postgresql")  # the course's C collation
    prove(
        Q1.bind(named).check,
        right=[seeking, "".join(sorted(seeking)).upper()],
        wrong=[
            (set("abcdef"), ": its plan does not seek"),
            (set(), "a: its plan seeks in an index too"),
            (seeking | {"z"}, "there is no condition z"),
            ({"a", "d"} if named.backend == "postgresql" else {"a", "b", "d", "f"}, ": its plan"),  # the other's
        ],
    )


# Exercise 2's answers, run as the notebook's cell runs them (with its `listing` and PER_PAGE).
LISTING = select(Order.id, Order.customer_id, Order.status, Order.created_at, Order.total).order_by(*NEWEST_FIRST)


def next_page(body: str) -> Any:
    source = f"def my_next_page(last):\n    return {body}\n"
    return run_cell(source, "lesson05-q2", listing=LISTING, PER_PAGE=LIST_PAGE)["my_next_page"]


def test_q2_is_proven(lab: Course) -> None:
    solution = run_cell(str(Q2.solution), "lesson05-q2-solution", listing=LISTING, PER_PAGE=LIST_PAGE)
    seek = "tuple_(Order.created_at, Order.id) < tuple_(last.created_at, last.id)"
    prove(
        Q2.bind(lab).check,
        right=[
            solution["my_next_page"],
            next_page(  # the same seek, said with <= on the date (a range the index seeks into) and an OR
                "listing.where(Order.created_at <= last.created_at, "
                "or_(Order.created_at < last.created_at, Order.id < last.id)).limit(PER_PAGE)"
            ),
            next_page(  # another tie-breaker, id ascending, kept on every page
                "select(Order.id, Order.created_at).order_by(Order.created_at.desc(), Order.id).where("
                "Order.created_at <= last.created_at, or_(Order.created_at < last.created_at, Order.id > last.id))"
                ".limit(PER_PAGE)"
            ),
            next_page_after,
        ],
        wrong=[
            (next_page(f"listing.where({seek.replace(' < ', ' <= ')}).limit(PER_PAGE)"), "starts with order"),
            (
                next_page("listing.where(Order.created_at < last.created_at).limit(PER_PAGE)"),
                "were placed in the same second",
            ),
            (
                next_page(  # right rows, but the OR gives the index no range: it is read from the top
                    "listing.where(or_(Order.created_at < last.created_at, and_(Order.created_at == "
                    "last.created_at, Order.id < last.id))).limit(PER_PAGE)"
                ),
                "reading the index from its start",
            ),
            (
                next_page(
                    "listing.offset(select(func.count()).select_from(Order).where("
                    "tuple_(Order.created_at, Order.id) >= tuple_(last.created_at, last.id)).scalar_subquery())"
                    ".limit(PER_PAGE)"
                ),
                "still skips rows with OFFSET",
            ),
            (next_page(f"listing.where({seek})"), "page 2 has"),
            (next_page("[last.id]"), "not a select()"),
        ],
    )


def test_q2_builds_the_tie_it_checks(lab: Course) -> None:
    Q2.bind(lab).check(next_page_after)
    with lab.session() as s:
        tied = s.execute(select(Order.created_at).order_by(*NEWEST_FIRST).offset(TIES[1]).limit(2)).scalars().all()
    assert tied[0] == tied[1]


@pytest.fixture
def shipped(lab: Course) -> dict[str, Any]:
    """The notebook's models for shipping indexes, defined as its cell defines them (compiled without this
    module's `from __future__ import annotations`, as IPython compiles a cell: the annotations are evaluated)."""
    names: dict[str, Any] = {
        "DeclarativeBase": DeclarativeBase,
        "Mapped": Mapped,
        "mapped_column": mapped_column,
        "String": String,
        "Numeric": Numeric,
        "ForeignKey": ForeignKey,
        "Index": Index,
        "CreateIndex": CreateIndex,
        "text": text,
        "datetime": datetime,
        "Decimal": Decimal,
        "lab": lab,
        "__name__": "__main__",
    }
    exec(compile(cell("Shipped"), "/tmp/ipykernel_0/lesson05-shipped.py", "exec", dont_inherit=True), names)
    return names


def test_q3_is_proven(course: Course, shipped: dict[str, Any]) -> None:
    model = shipped["ShippedCustomer"]
    solution = run_cell(str(Q3.solution), "lesson05-q3", ShippedCustomer=model, Index=Index)["answer_3"]
    prove(
        Q3.bind(course).check,
        right=[solution, Index("uq_login_email", func.lower(model.__table__.c.email), unique=True)],
        wrong=[
            ("CREATE UNIQUE INDEX ix_login ON customers (lower(email))", "declare it on the model"),
            (Index("ix_plain_email", model.email, unique=True), "the login compares lower(email)"),
            (Index("ix_any_case", func.lower(model.email)), "was accepted beside"),
            (Index("ix_course_model", func.lower(Customer.email), unique=True), "the course's Customer"),
        ],
    )
    assert not any(ix.name == "ix_course_model" for ix in Customer.__table__.indexes)  # detached again


# ------------------------------------------------------------------ improve the app: the search
# The course's own search, as a learner's cell would hold it: the same function under the blueprint's decorator.
SEARCH = (
    "from helpers.shop.kit import Blueprint, Customer, func, get_session, int_arg, select, str_arg\n\n"
    'my_search = Blueprint("my_search", __name__)\n\n\n'
    + re.sub(r"^@bp\.get.*\n@example.*\n", '@my_search.get("/search")\n', getsource(optimized.search)).replace(
        " -> dict[str, Any]:", ":"
    )
)
FRAGMENT = "func.lower(Customer.name).contains(name.lower(), autoescape=True)"
PAGE_ORDER = ".order_by(Customer.name, Customer.id)"
SEARCH_RIGHT = {
    "lower-contains": SEARCH,
    "icontains": SEARCH.replace(FRAGMENT, "Customer.name.icontains(name, autoescape=True)"),
}
SEARCH_WRONG = {
    "filtered-in-python": (
        SEARCH.replace(
            "    session = get_session()\n",
            "    session = get_session()\n"
            "    rows = session.execute(select(Customer.id, Customer.name, Customer.city)).all()\n"
            "    found = sorted((r for r in rows if (city is None or r.city == city) and (name is None or "
            "name.lower() in r.name.lower())), key=lambda r: (r.name, r.id))\n"
            "    return {'count': len(found), 'customers': [r._asdict() for r in found[:limit]]}\n",
        ),
        "without seeking one city's rows",
    ),
    # SQLite's LIKE ignores ASCII case, PostgreSQL's does not: caught on both, at the same request.
    "case-sensitive-like": (
        SEARCH.replace(FRAGMENT, "Customer.name.contains(name, autoescape=True)"),
        "name=AN&limit=5",
    ),
    "no-autoescape": (SEARCH.replace(", autoescape=True", ""), "name=%25: your JSON['count']"),
    "counts-the-page": (
        SEARCH.replace(
            "    count = session.scalar(select(func.count()).select_from(Customer).where(*conditions))\n", ""
        ).replace(
            'return {"count": count, "customers": [row._asdict() for row in matches]}',
            'found = [row._asdict() for row in matches]\n    return {"count": len(found), "customers": found}',
        ),
        "JSON['count']",
    ),
    "ordered-by-id": (SEARCH.replace(PAGE_ORDER, ".order_by(Customer.id)"), "JSON['customers'][0]"),
    "ties-by-id-descending": (  # equal names on a page: only the tie-breaker orders them
        SEARCH.replace(PAGE_ORDER, ".order_by(Customer.name, Customer.id.desc())"),
        "JSON['customers']",
    ),
    "sorted-after-the-seek": (
        SEARCH.replace(PAGE_ORDER, '.order_by(Customer.name.concat(""), Customer.id)'),  # same order, no index
        "then sorts them all",
    ),
}


@pytest.fixture
def saved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where a passing answer is saved for the capstone: a directory of this test's own."""
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    return tmp_path / "my_app"


@pytest.fixture
def improve_search(lab: Course, saved: Path) -> AppTask:
    """The search task on a copy with the index the lesson's search section makes."""
    ddl(lab, "CREATE INDEX ix_customers_city_name_id ON customers (city, name, id)")
    return search_task(lab)


def test_the_search_checks_ask_pages_of_equal_names(improve_search: AppTask) -> None:
    """The tiny data has what the tie-breaker check depends on: equal names in a city, and three of one name."""
    urls = [call.url for call in improve_search.calls]
    assert any(re.search(r"city=\w+&name=[A-Z ]+$", url) for url in urls)
    assert any(url.endswith("&limit=2") for url in urls)


# ------------------------------------------------------------------ improve the app: keyset paging
KEYSET = """\
from helpers.shop.kit import MAX_ID, NEWEST_FIRST, Blueprint, Customer, Order, OrderLine, func, get_session
from helpers.shop.kit import int_arg, select, tuple_

my_views = Blueprint("my_views", __name__)


@my_views.get("/orders")
def order_list():
    page = int_arg("page", 1)
    per_page = int_arg("per_page", 20, high=500)
    after = int_arg("after", 0, high=MAX_ID)
    newest = select(Order.id).order_by(*NEWEST_FIRST).limit(per_page)
    if after:
        cursor = tuple_(select(Order.created_at).where(Order.id == after).scalar_subquery(), after)
        newest = newest.where(tuple_(Order.created_at, Order.id) < cursor)
    else:
        newest = newest.offset((page - 1) * per_page)
    chosen = newest.subquery()
    lines = select(func.count(OrderLine.id)).where(OrderLine.order_id == Order.id).scalar_subquery()
    rows = get_session().execute(
        select(Order.id, Customer.name, Order.status, Order.created_at, Order.total, lines)
        .join(chosen, chosen.c.id == Order.id)
        .join(Order.customer)
        .order_by(*NEWEST_FIRST)
    )
    orders = [
        {"id": i, "customer": n, "status": s, "created_at": c.isoformat(), "total": t, "lines": k}
        for i, n, s, c, t, k in rows
    ]
    next_after = orders[-1]["id"] if len(orders) == per_page else None
    if after:
        return {"after": after, "orders": orders, "next": next_after}
    return {"page": page, "orders": orders, "next": next_after}
"""
SEEK = "newest = newest.where(tuple_(Order.created_at, Order.id) < cursor)"
CURSOR = "cursor = tuple_(select(Order.created_at).where(Order.id == after).scalar_subquery(), after)"
KEYSET_RIGHT = {
    "cursor-read-in-the-statement": KEYSET,
    # The cursor's created_at read first, then sent back from Python: right on SQLite too, since the dataset
    # stores timestamps as SQLAlchemy writes them (two statements, within the budget).
    "cursor-read-from-python": KEYSET.replace(
        CURSOR, "cursor = tuple_(get_session().get(Order, after).created_at, after)"
    ),
}
KEYSET_WRONG = {
    "repeats-the-cursor": (KEYSET.replace(SEEK, SEEK.replace(" < ", " <= ")), "starts with order"),
    "offset-from-the-cursor": (
        KEYSET.replace(
            SEEK,
            "newest = newest.offset(select(func.count(Order.id)).where("
            "tuple_(Order.created_at, Order.id) >= cursor).scalar_subquery())",
        ),
        "still skips rows counted by a subquery with OFFSET",
    ),
    "created-at-only": (
        KEYSET.replace(SEEK, "newest = newest.where(Order.created_at < cursor.clauses[0])"),
        "placed in the same second",
    ),
    "no-cursor": (
        KEYSET.replace('"next": next_after}', "}").replace(', "next": next_after', ""),
        "answers without 'next'",
    ),
    "lines-lazily": (
        KEYSET.replace(
            "k}\n        for i, n, s, c, t, k in rows",
            "len(get_session().get(Order, i).lines)}\n        for i, n, s, c, t, k in rows",
        ),
        "the budget is 2",
    ),
}


@pytest.fixture
def improve(lab: Course, saved: Path) -> AppTask:
    """The keyset task on a copy with the paging index (the task makes its ties itself)."""
    ddl(lab, "CREATE INDEX ix_orders_created_at_id ON orders (created_at, id)")
    return keyset_task(lab)


def test_the_keyset_race_times_the_deepest_page_through_its_cursor(improve: AppTask, saved: Path) -> None:
    """The baseline answers ?page=N by OFFSET, yours ?after= its cursor: the same orders, on the same data."""
    deepest = -(-improve.course.info.rows["orders"] // LIST_PAGE)  # tiny: the last page
    assert re.fullmatch(rf"/orders\?page={deepest}&per_page={LIST_PAGE}&after=\d+", improve.timed.url)
    race = improve.race(run_cell(KEYSET, "lesson05-4")["my_views"], reference=True, repeat=2)
    assert [m.variant for m in race.measurements] == ["baseline (lesson 01)", "yours", "the course's version"]
    assert race["yours"].statements == 1 < race["baseline (lesson 01)"].statements


# ------------------------------------------------------------------ both tasks, proven
SAVED_AS = {"improve_search": "05_search.py", "improve": "05_order_list.py"}
ACCEPTED = [
    *(("improve_search", source) for source in SEARCH_RIGHT.values()),
    *(("improve", source) for source in KEYSET_RIGHT.values()),
    ("improve_search", optimized.bp),
    ("improve", optimized.bp),
]
REJECTED = [
    *(("improve_search", source, reason) for source, reason in SEARCH_WRONG.values()),
    *(("improve", source, reason) for source, reason in KEYSET_WRONG.values()),
]


def views(answer: str | Blueprint) -> Blueprint:
    """The blueprint a cell of code defines (or the course's own, given as is)."""
    if isinstance(answer, Blueprint):
        return answer
    return next(value for value in run_cell(answer, "lesson05-task").values() if isinstance(value, Blueprint))


@pytest.mark.parametrize(
    ("task", "answer"),
    ACCEPTED,
    ids=[*SEARCH_RIGHT, *KEYSET_RIGHT, "the-courses-search", "the-courses-order-list"],
)
def test_the_tasks_accept(
    course: Course, task: str, answer: str | Blueprint, saved: Path, request: pytest.FixtureRequest
) -> None:
    # (`course` is asked for so that its backends parametrize the test; the task's fixture uses it)
    passed, said = verdict(request.getfixturevalue(task).check, views(answer))
    assert passed and said.startswith("Correct!") and "came from a seek" in said, said
    assert (saved / SAVED_AS[task]).exists()


@pytest.mark.parametrize(("task", "answer", "reason"), REJECTED, ids=[*SEARCH_WRONG, *KEYSET_WRONG])
def test_the_tasks_reject(
    course: Course, task: str, answer: str, reason: str, saved: Path, request: pytest.FixtureRequest
) -> None:
    passed, said = verdict(request.getfixturevalue(task).check, views(answer))
    assert not passed and said.startswith("Not yet") and reason in said, said
    assert not (saved / SAVED_AS[task]).exists()


@pytest.mark.parametrize(
    ("task", "index", "reason"),
    [
        ("improve_search", "ix_customers_city_name_id", "without seeking one city's rows"),
        ("improve", "ix_orders_created_at_id", "not found by seeking in an index on (created_at, id)"),
    ],
)
def test_the_tasks_say_when_the_index_is_missing(
    course: Course, task: str, index: str, reason: str, request: pytest.FixtureRequest
) -> None:
    improve: AppTask = request.getfixturevalue(task)
    ddl(improve.course, f"DROP INDEX {index}")
    passed, said = verdict(improve.check, views(SEARCH if task == "improve_search" else KEYSET))
    assert not passed and reason in said, said

"""Lesson 04 · Indexing: plans before and after, on private copies; the shared dataset never changes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Index, Integer, MetaData, String, Table, func, inspect, select, text, tuple_
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.schema import CreateIndex, CreateTable

from helpers.course import Course
from helpers.data import content_fingerprint, copy_exists
from helpers.exercises.app_task import AppTask
from helpers.exercises.lesson04 import (
    Q1,
    Q2,
    Q3,
    email_any_case,
    exercises,
    keyset_task,
    pending_queue,
    reviews_of_product,
    search_task,
)
from helpers.measure.plans import analyze
from helpers.shop import optimized
from helpers.shop.models import Customer, Order, OrderLine, Review
from helpers.shop.queries import NEWEST_FIRST
from helpers.topics import indexing
from helpers.topics.indexing import collation, explain_case_sensitive_like, index_definition
from tests.cells import notebook_code_cells, run_cell
from tests.proving import verdict

NOTEBOOK = "04_indexing.ipynb"


@pytest.fixture
def lab(course: Course) -> Iterator[Course]:
    with course.scratch_copy("test04") as copy:
        yield copy


def ddl(lab: Course, *statements: str) -> None:
    """The lesson's DDL on a copy, then fresh statistics for the planner."""
    indexing.ddl(lab, *statements)
    analyze(lab.engine)


def busiest_customer(course: Course) -> int:
    with course.session() as s:
        return int(
            s.scalar(select(Order.customer_id).group_by(Order.customer_id).order_by(func.count().desc()).limit(1))
        )


def revenue(status: str):  # the lesson's report on the low-selectivity column
    return select(func.count(), func.sum(Order.total)).where(Order.status == status)


def test_scan_before_the_index_search_after(lab: Course) -> None:
    query = select(Order).where(Order.customer_id == 42)
    lines = select(OrderLine).where(OrderLine.order_id == 42)
    assert lab.explain(query).scans("orders") and not lab.explain(query).uses_index()
    assert lab.explain(lines).scans("order_lines")
    ddl(
        lab,
        "CREATE INDEX ix_orders_customer_id ON orders (customer_id)",
        "CREATE INDEX ix_order_lines_order_id ON order_lines (order_id)",
    )
    after = lab.explain(query)
    assert after.uses_index("ix_orders_customer_id") and after.searches("customer_id")
    assert not after.scans("orders")
    assert lab.explain(lines).uses_index("ix_order_lines_order_id") and not lab.explain(lines).scans("order_lines")


def test_explain_analyze_reports_what_ran(lab: Course) -> None:
    plan = lab.explain(select(Order).where(Order.customer_id == 42), analyze=True)
    assert plan.scans("orders")
    if lab.backend == "postgresql":  # the scan read every order and threw most of them away
        assert "actual rows" in plan.text and "Rows Removed by Filter" in plan.text


def test_compare_counts_statements_on_both_databases(course: Course, lab: Course) -> None:
    def lookups(engine) -> list[tuple]:
        with engine.connect() as conn:
            query = text("SELECT id, total FROM orders WHERE customer_id = :c ORDER BY id")
            return [tuple(r) for c in range(1, 6) for r in conn.execute(query, {"c": c})]

    ddl(lab, "CREATE INDEX ix_orders_customer_id ON orders (customer_id)")
    cmp = course.compare(
        {"scan": lambda: lookups(course.engine), "index": lambda: lookups(lab.engine)},
        engine=[course.engine, lab.engine],
        repeat=2,
        store=False,
    )
    assert cmp["scan"].statements == cmp["index"].statements == 5
    assert cmp.backend == course.backend and cmp.size == "tiny"


def test_unique_email_index_is_used_and_enforced(lab: Course) -> None:
    ddl(lab, "CREATE UNIQUE INDEX ix_customers_email ON customers (email)")
    assert lab.explain(select(Customer.id).where(Customer.email == "x@example.com")).uses_index(
        "ix_customers_email"
    )
    with lab.engine.connect() as conn, pytest.raises(IntegrityError):
        email = conn.execute(select(Customer.email).where(Customer.id == 1)).scalar_one()
        conn.execute(
            text(
                "INSERT INTO customers (name, email, city, address, notes, created_at) "
                "VALUES ('Copy', :email, 'Oslo', '-', '-', '2025-01-01 00:00:00')"
            ),
            {"email": email},
        )


def test_composite_index_serves_filter_order_and_limit(lab: Course) -> None:
    query = (
        select(Order.id, Order.created_at)
        .where(Order.customer_id == busiest_customer(lab))
        .order_by(Order.created_at.desc())
        .limit(10)
    )
    ddl(lab, "CREATE INDEX ix_orders_customer_id ON orders (customer_id)")
    single = lab.explain(query)
    assert single.uses_index("ix_orders_customer_id") and single.temp_sort()
    ddl(lab, "CREATE INDEX ix_orders_customer_created ON orders (customer_id, created_at)")
    composite = lab.explain(query)
    assert composite.uses_index("ix_orders_customer_created") and not composite.temp_sort()


def test_covering_index_avoids_the_table(lab: Course) -> None:
    query = (
        select(Order.created_at, Order.total)
        .where(Order.customer_id == busiest_customer(lab))
        .order_by(Order.created_at.desc())
        .limit(10)
    )
    ddl(lab, "CREATE INDEX ix_orders_cov ON orders (customer_id, created_at, total)")
    if lab.backend == "postgresql":
        with lab.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE orders"))
    plan = lab.explain(query)
    assert plan.covering() and plan.uses_index("ix_orders_cov") and not plan.scans("orders")
    assert not plan.temp_sort()


def test_low_selectivity_column(lab: Course) -> None:
    ddl(lab, "CREATE INDEX ix_orders_status ON orders (status)")
    common, rare = lab.explain(revenue("delivered")), lab.explain(revenue("cancelled"))
    if lab.backend == "postgresql":
        # The planner knows the value distribution: it scans for the common value, uses the index for the rare one.
        assert common.scans("orders") and not common.uses_index()
        assert rare.uses_index("ix_orders_status")
    else:
        # SQLite (without STAT4) knows only rows per value on average, and takes the index for both.
        assert common.uses_index("ix_orders_status") and rare.uses_index("ix_orders_status")
        with lab.engine.connect() as conn:
            stat = conn.execute(text("SELECT stat FROM sqlite_stat1 WHERE idx = 'ix_orders_status'")).scalar_one()
        rows, per_value = map(int, stat.split())
        assert rows // per_value == 5  # all the planner knows: five values, on average


def test_lessons_operations_leave_the_shared_dataset_unchanged(course: Course) -> None:
    """What the notebook does to its copy, done to a copy here: the shared dataset's fingerprint stays."""
    before = content_fingerprint(course.engine)
    with course.scratch_copy("test04-fingerprint") as copy:
        ddl(
            copy,
            "CREATE INDEX ix_orders_customer_id ON orders (customer_id)",
            "CREATE UNIQUE INDEX ix_customers_email ON customers (email)",
            "CREATE INDEX ix_orders_status ON orders (status)",
            "CREATE TABLE orders_write_test AS SELECT * FROM orders WHERE 1 = 0",
            "CREATE INDEX ix_wt_customer ON orders_write_test (customer_id)",
            "CREATE TABLE orders_100 AS SELECT id, customer_id, total FROM orders WHERE id <= 100",
        )
        with copy.engine.connect() as conn:
            transaction = conn.begin()
            conn.execute(text("INSERT INTO orders_write_test SELECT * FROM orders ORDER BY id LIMIT 50"))
            transaction.rollback()
        assert content_fingerprint(copy.engine) != before  # the copy did change (its indexes)
    assert not copy_exists(copy.url)  # and is gone
    assert content_fingerprint(course.engine) == before


def test_the_starters_are_the_notebooks_cells() -> None:
    assert all(question.starter in notebook_code_cells(NOTEBOOK) for question in (Q1, Q2, Q3))


def test_exercises_binds_the_questions_the_queries_and_both_tasks(course: Course, lab: Course) -> None:
    ex = exercises(course, lab)
    assert (ex.q1.question, ex.q2.question, ex.q3.question) == (Q1, Q2, Q3) and ex.q1.course is course
    assert (ex.improve.endpoint, ex.improve_search.endpoint) == ("order_list", "search")
    assert ex.improve.course is ex.improve_search.course is lab
    assert ex.improve.baseline_course is ex.improve_search.baseline_course is course
    with course.session() as s:
        assert s.execute(ex.reviews_query).all() and len(s.execute(ex.email_query).all()) == 1
        assert len(s.execute(ex.queue_query).all()) == 20


def test_q1_passes_the_reference_and_fails_the_wrong_column(course: Course) -> None:
    q1 = Q1.bind(course)
    assert q1.check(reviews_of_product())
    assert not q1.check("CREATE INDEX ix_reviews_customer ON reviews (customer_id)")
    assert not q1.check("CREATE INDEX oops ON reviews (no_such_column)")
    assert not q1.check(42)


def test_q1_accepts_an_index_object(course: Course) -> None:
    q1 = Q1.bind(course)
    table = Review.__table__
    right = Index("ix_t04_reviews_product", Review.product_id)
    wrong = Index("ix_t04_reviews_rating", Review.rating, Review.product_id)  # the filter column second
    try:
        assert q1.check(right)
        assert not q1.check(wrong)
    finally:  # an Index built from model columns attaches itself to the model's table: detach it again
        table.indexes.discard(right)
        table.indexes.discard(wrong)
    assert not any(ix.name.startswith("ix_t04") for ix in table.indexes)


def test_q2_wants_an_index_on_the_expression(course: Course, capsys: pytest.CaptureFixture[str]) -> None:
    q2 = Q2.bind(course)
    assert q2.check(email_any_case())
    assert "Correct!" in capsys.readouterr().out
    for wrong in (
        "CREATE INDEX ix_customers_email ON customers (email)",
        "CREATE UNIQUE INDEX ix_customers_email ON customers (email)",
        "CREATE INDEX ix_customers_upper_email ON customers (upper(email))",
    ):
        assert not q2.check(wrong)
        assert "lower(email), not email as stored" in capsys.readouterr().out
    table = Customer.__table__
    expression = Index("ix_t04_lower_email", func.lower(Customer.email))
    try:
        assert q2.check(expression)
    finally:
        table.indexes.discard(expression)


def test_q3_wants_a_partial_index_in_the_queue_order(course: Course, capsys: pytest.CaptureFixture[str]) -> None:
    q3 = Q3.bind(course)
    assert q3.check(pending_queue())
    assert "Correct!" in capsys.readouterr().out
    # Every order indexed: the plan is fine, the index is not what the task asks for.
    assert not q3.check("CREATE INDEX ix_orders_status_created ON orders (status, created_at, id)")
    assert "holds every order" in capsys.readouterr().out
    # Partial, but not in the queue's order: the pending orders are sorted afterwards.
    assert not q3.check("CREATE INDEX ix_orders_pending_total ON orders (total) WHERE status = 'pending'")
    assert "sorted afterwards" in capsys.readouterr().out or "does not use your index" in capsys.readouterr().out
    # Partial on the wrong rows: the query cannot use it.
    assert not q3.check("CREATE INDEX ix_orders_paid_created ON orders (created_at, id) WHERE status = 'paid'")
    assert "does not use your index" in capsys.readouterr().out


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
        assert collation(lab.engine) == "C"  # the course's cluster: initdb --no-locale
        assert lab.explain(prefix).uses_index("ix_customers_name") and lab.explain(prefix).searches("name")
    assert not lab.explain(fragment).searches("name")


def test_an_expression_index_serves_lower_name(lab: Course) -> None:
    exact = select(Customer.id).where(func.lower(Customer.name) == "ana silva")
    assert lab.explain(exact).scans("customers")
    ddl(lab, "CREATE INDEX ix_customers_lower_name ON customers (lower(name))")
    assert lab.explain(exact).uses_index("ix_customers_lower_name") and not lab.explain(exact).scans("customers")


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


def test_a_python_datetime_cursor_repeats_a_row_on_sqlite(lab: Course) -> None:
    """SQLite stores created_at as text without microseconds; a bound datetime is written with them."""
    with lab.session() as s:
        cursor = s.execute(select(Order.created_at, Order.id).order_by(*NEWEST_FIRST).limit(1)).one()
        after = s.scalars(
            select(Order.id)
            .where(tuple_(Order.created_at, Order.id) < tuple_(cursor.created_at, cursor.id))
            .order_by(*NEWEST_FIRST)
            .limit(1)
        ).all()
    assert (after == [cursor.id]) == (lab.backend == "sqlite")


# ------------------------------------------------------------------ declaring indexes
def test_unique_makes_a_constraint_index_unique_a_unique_index(lab: Course) -> None:
    metadata = MetaData()
    constraint = Table(
        "t04_unique", metadata, Column("id", Integer, primary_key=True), Column("email", String(50), unique=True)
    )
    index = Table(
        "t04_index",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("email", String(50), index=True, unique=True),
    )
    assert "UNIQUE (email)" in str(CreateTable(constraint).compile(lab.engine)) and not constraint.indexes
    assert "UNIQUE" not in str(CreateTable(index).compile(lab.engine))
    assert [str(CreateIndex(ix).compile(lab.engine)) for ix in index.indexes] == [
        "CREATE UNIQUE INDEX ix_t04_index_email ON t04_index (email)"
    ]
    metadata.create_all(lab.engine)
    found = inspect(lab.engine)
    assert [uc["column_names"] for uc in found.get_unique_constraints("t04_unique")] == [["email"]]
    assert [(ix["name"], bool(ix["unique"])) for ix in found.get_indexes("t04_index")] == [
        ("ix_t04_index_email", True)
    ]


def test_partial_index_declared_for_both_backends(lab: Course) -> None:
    metadata = MetaData()
    reviews = Review.__table__.to_metadata(metadata)
    reviews.indexes.clear()
    low = text("rating <= 2")
    partial = Index("ix_t04_low_rating", reviews.c.product_id, sqlite_where=low, postgresql_where=low)
    with lab.engine.begin() as conn:
        partial.create(conn)
    analyze(lab.engine)
    assert "WHERE" in index_definition(lab.engine, "ix_t04_low_rating")
    query = select(Review.id).where(Review.product_id == 5, Review.rating <= 2)
    assert lab.explain(query).uses_index("ix_t04_low_rating")
    assert not any(ix.name == "ix_t04_low_rating" for ix in Review.__table__.indexes)


@pytest.mark.postgres
def test_create_index_concurrently_needs_autocommit(course: Course, lab: Course) -> None:
    if lab.backend != "postgresql":
        pytest.skip("CONCURRENTLY is PostgreSQL's")
    metadata = MetaData()
    orders = Order.__table__.to_metadata(metadata)
    orders.indexes.clear()
    index = Index("ix_t04_status", orders.c.status, postgresql_concurrently=True)
    assert str(CreateIndex(index).compile(lab.engine)).startswith("CREATE INDEX CONCURRENTLY")
    with pytest.raises(DBAPIError, match="cannot run inside a transaction block"), lab.engine.begin() as conn:
        index.create(conn)
    with lab.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        index.create(conn)
    assert "ix_t04_status" in {ix["name"] for ix in inspect(lab.engine).get_indexes("orders")}


# ------------------------------------------------------------------ improve the app: keyset paging
# The notebook's starters, completed as their hints say.
SEEK = "newest = newest.where(tuple_(Order.created_at, Order.id) < cursor)"
KEYSET = (
    next(cell for cell in notebook_code_cells(NOTEBOOK) if 'my_views = Blueprint("my_views"' in cell)
    .replace("newest = newest.where(____ < cursor)", SEEK)
    .replace("next_after = ____", 'next_after = orders[-1]["id"] if len(orders) == per_page else None')
)
KEYSET_WRONG = {
    "repeats-the-cursor": (KEYSET.replace(SEEK, SEEK.replace(" < ", " <= ")), "through the cursor"),
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
def saved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where a passing answer is saved for the capstone: a directory of this test's own."""
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    return tmp_path / "my_app"


@pytest.fixture
def improve(course: Course, saved: Path) -> Iterator[AppTask]:
    """The keyset task on a copy with the paging indexes, and two neighbouring orders placed in the same second."""
    with course.scratch_copy("test04-paging") as lab:
        ddl(
            lab,
            "UPDATE orders SET created_at = (SELECT created_at FROM orders WHERE id = 1001) WHERE id = 1000",
            "CREATE INDEX ix_orders_created_at_id ON orders (created_at, id)",
            "CREATE INDEX ix_order_lines_order_id ON order_lines (order_id)",
        )
        yield keyset_task(course, lab)


def test_improve_accepts_keyset_paging(improve: AppTask, saved: Path) -> None:
    passed, said = verdict(improve.check, run_cell(KEYSET, "lesson04-1")["my_views"])
    assert passed and said.startswith("Correct!") and "came from a seek" in said
    assert (saved / "04_order_list.py").exists()


@pytest.mark.parametrize(("source", "reason"), KEYSET_WRONG.values(), ids=KEYSET_WRONG.keys())
def test_improve_rejects_wrong_keyset_paging(improve: AppTask, saved: Path, source: str, reason: str) -> None:
    passed, said = verdict(improve.check, run_cell(source, "lesson04-2")["my_views"])
    assert not passed and said.startswith("Not yet") and reason in said
    assert not (saved / "04_order_list.py").exists()


def test_improve_says_when_the_index_is_missing(improve: AppTask) -> None:
    ddl(improve.course, "DROP INDEX ix_orders_created_at_id")
    passed, said = verdict(improve.check, run_cell(KEYSET, "lesson04-3")["my_views"])
    assert not passed and "not found by seeking in an index on (created_at, id)" in said


# ------------------------------------------------------------------ improve the app: the search
FRAGMENT = "func.lower(Customer.name).contains(name.lower(), autoescape=True)"
PAGE_ORDER = ".order_by(Customer.name, Customer.id)"
SEARCH = (
    next(cell for cell in notebook_code_cells(NOTEBOOK) if 'my_search = Blueprint("my_search"' in cell)
    .replace("conditions.append(____)", "conditions.append(Customer.city == city)", 1)
    .replace("conditions.append(____)", f"conditions.append({FRAGMENT})", 1)
    .replace(".order_by(____)", PAGE_ORDER)
)
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
    "sorted-after-the-seek": (
        SEARCH.replace(PAGE_ORDER, '.order_by(Customer.name.concat(""), Customer.id)'),  # same order, no index
        "then sorts them all",
    ),
}


@pytest.fixture
def improve_search(course: Course, saved: Path) -> Iterator[AppTask]:
    """The search task on a copy with the index the lesson's search section makes."""
    with course.scratch_copy("test04-search") as lab:
        ddl(lab, "CREATE INDEX ix_customers_city_name_id ON customers (city, name, id)")
        yield search_task(course, lab)


def test_improve_search_accepts_an_indexed_search(improve_search: AppTask, saved: Path) -> None:
    passed, said = verdict(improve_search.check, run_cell(SEARCH, "lesson04-11")["my_search"])
    assert passed and said.startswith("Correct!") and "came from a seek" in said
    assert "already in the page's order" in said and (saved / "04_search.py").exists()


@pytest.mark.parametrize("task", ["improve", "improve_search"])
def test_both_tasks_accept_the_courses_version(course: Course, task: str, request: pytest.FixtureRequest) -> None:
    # (`course` is asked for here so that its backends parametrize the test; the task fixture uses it)
    passed, said = verdict(request.getfixturevalue(task).check, optimized.bp)
    assert passed and said.startswith("Correct!")


@pytest.mark.parametrize(("source", "reason"), SEARCH_WRONG.values(), ids=SEARCH_WRONG.keys())
def test_improve_search_rejects(improve_search: AppTask, saved: Path, source: str, reason: str) -> None:
    passed, said = verdict(improve_search.check, run_cell(source, "lesson04-12")["my_search"])
    assert not passed and said.startswith("Not yet") and reason in said, said
    assert not (saved / "04_search.py").exists()


def test_improve_search_says_when_the_index_is_missing(improve_search: AppTask) -> None:
    ddl(improve_search.course, "DROP INDEX ix_customers_city_name_id")
    passed, said = verdict(improve_search.check, run_cell(SEARCH, "lesson04-13")["my_search"])
    assert not passed and "without seeking one city's rows" in said

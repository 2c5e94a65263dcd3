"""Exercises for lesson 04 · Indexing, and its "improve the app" tasks (the order list paged by keyset; the
search, found through an index).

Declared here: `Q1` (reviews of a product), `Q2` (log in by email, whatever the case), `Q3` (the pending-orders
queue, from a partial index), `keyset_task(course, lab)` and `search_task(course, lab)`. The questions' answers
are indexes: each check creates the learner's index on a fresh private copy, reads the plan and compares the
query's result with and without it. The improve tasks run on the lesson's own indexed copy (`lab`), with lesson
01's baseline on the shared dataset beside it. `exercises(course, lab)` binds them all.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Index, Select, func, inspect, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.schema import CreateIndex

from ..course import Course
from ..measure.harness import first_difference
from ..measure.plans import Plan, analyze
from ..measure.recorder import QueryRecorder, record
from ..shop.models import Customer, Order, Review
from ..topics.indexing import (
    ddl,
    full_sort,
    index_definition,
    indexes_used,
    key_line,
    offsets,
    order_ids,
    seek_line,
    seeks,
    statements_on,
)
from ..topics.profiling import explain_statement
from .app_task import AppTask, Call
from .core import Exercise, Incorrect, Question, same_result
from .order_list import PER_PAGE, order_list_task

__all__ = [
    "Q1",
    "Q2",
    "Q3",
    "STARTER_Q1",
    "STARTER_Q2",
    "STARTER_Q3",
    "Lesson04Exercises",
    "email_any_case",
    "email_query",
    "exercises",
    "keyset_task",
    "pending_queue",
    "reviews_of_product",
    "reviews_query",
    "search_task",
]

_SEARCH_CITY = "Lisbon"  # the city the search task's plan is read for (lesson 04 races the same search)


# ---------------------------------------------------------------------- checking an index
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
    statement = _create_index_sql(answer, course)
    with course.scratch_copy("exercise04") as copy:
        try:
            ddl(copy, statement)
        except DBAPIError as exc:
            raise Incorrect(f"the database refused it: {str(exc.orig).strip().splitlines()[0]}") from None
        analyze(copy.engine)
        yield copy


# What a question wants of the plan on the copy with the learner's index: raises Incorrect when it falls short.
_Requirement = Callable[[Plan, Course], None]


def _check(course: Course, answer: Any, query: Select[*tuple[Any, ...]], require: _Requirement) -> str:
    with course.session() as session:
        expected = session.execute(query).all()
    with _with_index(course, answer) as copy:
        plan = copy.explain(query)
        require(plan, copy)
        with copy.session() as session:
            same_result(session.execute(query).all(), expected)
    return f"the plan now reads: {key_line(plan)}"


# ---------------------------------------------------------------------- the questions' queries
def _lookups(course: Course) -> tuple[int, str]:
    """A rarely reviewed product, and a customer's email as a person types it: the lookups the indexes are for."""
    with course.session() as session:
        product = session.scalar(
            select(Review.product_id)
            .group_by(Review.product_id)
            .order_by(func.count(), Review.product_id)
            .limit(1)
        )
        email = str(session.scalar(select(Customer.email).where(Customer.id == 7)))
    return int(product or 0), email[0].upper() + email[1:].replace("@example.com", "@Example.com")


def reviews_query(course: Course) -> Select[int, int]:
    """q1's lookup: the reviews of a rarely reviewed product."""
    product, _ = _lookups(course)
    return select(Review.id, Review.rating).where(Review.product_id == product).order_by(Review.id)


def email_query(course: Course) -> Select[int, str]:
    """q2's lookup: a customer by email, compared lowercased (`Ana.Silva7@Example.com` finds ana.silva7@...)."""
    _, typed = _lookups(course)
    return select(Customer.id, Customer.name).where(func.lower(Customer.email) == typed.lower())


# q3's query: the warehouse screen's 20 oldest pending orders.
_QUEUE_QUERY = (
    select(Order.id, Order.created_at)
    .where(Order.status == "pending")
    .order_by(Order.created_at, Order.id)
    .limit(20)
)


# ---------------------------------------------------------------------- the answers (what solution() shows)
def reviews_of_product() -> str:
    """Reference for q1: the column the lookup filters on."""
    return "CREATE INDEX ix_reviews_product_id ON reviews (product_id)"


def email_any_case() -> str:
    """Reference for q2: an index on the expression the query compares, not on the column."""
    return "CREATE INDEX ix_customers_lower_email ON customers (lower(email))"


def pending_queue() -> str:
    """Reference for q3: only the pending orders, in the queue's order, so the first 20 entries are the answer."""
    return "CREATE INDEX ix_orders_pending_created_at_id ON orders (created_at, id) WHERE status = 'pending'"


# ---------------------------------------------------------------------- q1 · reviews of a product
def _check_q1(course: Course, answer: Any) -> str:
    return _check(course, answer, reviews_query(course), partial(_finds_by, table="reviews", column="product_id"))


def _finds_by(plan: Plan, copy: Course, *, table: str, column: str) -> None:
    """The plan looks rows up by `column` through an index that starts with it."""
    if not plan.uses_index():
        raise Incorrect(f"the plan does not use an index: {key_line(plan)}")
    if not plan.searches(column):
        raise Incorrect(f"an index is read, but not to find rows by {column}: {key_line(plan)}")
    # PostgreSQL may also read a whole index whose *later* column is the filter (an 'Index Cond' all the same):
    # only an index that starts with the column can jump straight to the rows.
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


STARTER_Q1 = """\
answer_1 = ____

ex.q1.check(answer_1)"""

Q1 = Question(
    title="Reviews of a product",
    starter=STARTER_Q1,
    check=_check_q1,
    hints=(
        "The query filters reviews on one column: index that column. "
        "Form: CREATE INDEX name ON table (column), or Index('name', Model.column).",
    ),
    solution=reviews_of_product,
)


# ---------------------------------------------------------------------- q2 · log in by email
def _check_q2(course: Course, answer: Any) -> str:
    return _check(course, answer, email_query(course), _seeks_customers)


def _seeks_customers(plan: Plan, copy: Course) -> None:
    if not seeks(plan, "customers"):
        raise Incorrect(
            f"the plan still reads every customer ({key_line(plan)}): an index holds the values it was "
            "built from, and the query looks up lower(email), not email as stored"
        )


STARTER_Q2 = """\
answer_2 = ____

ex.q2.check(answer_2)"""

Q2 = Question(
    title="Log in by email, whatever the case",
    starter=STARTER_Q2,
    check=_check_q2,
    hints=(
        "The WHERE compares lower(email). An index on email is sorted by the emails as stored; index the "
        "expression itself: CREATE INDEX name ON customers (lower(email)), on both backends.",
    ),
    solution=email_any_case,
)


# ---------------------------------------------------------------------- q3 · the pending-orders queue
def _check_q3(course: Course, answer: Any) -> str:
    return _check(course, answer, _QUEUE_QUERY, _serves_the_queue)


def _serves_the_queue(plan: Plan, copy: Course) -> None:
    """A partial index read in the queue's order: no sort, and only the pending orders indexed."""
    used = indexes_used(plan)
    if not used:
        raise Incorrect(
            f"the plan does not use your index ({key_line(plan)}): a partial index serves a query "
            "whose WHERE implies the index's WHERE"
        )
    if full_sort(plan):
        raise Incorrect(
            f"your index finds the pending orders, but they are sorted afterwards ({key_line(plan)}): "
            "index the columns of the ORDER BY, in its order"
        )
    definitions = {name: index_definition(copy.engine, name) for name in used}
    if not any(re.search(r"\bWHERE\b", definition, re.I) for definition in definitions.values()):
        raise Incorrect(
            f"the plan reads {', '.join(used)}, which holds every order: the queue only ever asks for "
            "pending ones, so index just those (a partial index: ... WHERE status = 'pending')"
        )


STARTER_Q3 = """\
answer_3 = ____

ex.q3.check(answer_3)"""

Q3 = Question(
    title="The pending-orders queue, from a partial index",
    starter=STARTER_Q3,
    check=_check_q3,
    hints=(
        "Index only the rows the queue reads: CREATE INDEX name ON orders (the ORDER BY columns, in order) "
        "WHERE status = 'pending'. The first 20 entries of that index are the answer, already sorted.",
    ),
    solution=pending_queue,
)


# ---------------------------------------------------------------------- improve the app: keyset paging
def _get(client: FlaskClient, url: str) -> Any:
    """The JSON of a GET that must answer 200 (Incorrect, with the app's message, when it does not)."""
    response = client.get(url)
    if response.status_code != 200:
        message = (response.get_json(silent=True) or {}).get("message", "") if response.is_json else ""
        raise Incorrect(f"GET {url} answered {response.status_code}" + (f" ({message})" if message else ""))
    return response.get_json()


def _page_difference(lab: Course, body: Any, *, offset: int, limit: int, what: str) -> str | None:
    """How a page's order ids differ from those OFFSET `offset` gives (None: they do not)."""
    expected = order_ids(lab, offset=offset, limit=limit)
    got = [order.get("id") for order in body.get("orders", [])]
    return first_difference(expected, got, what)


def _follow_cursor(client: FlaskClient, lab: Course, per_page: int) -> None:
    """Following `next` from page 1 gives pages 2, 3, 4 exactly as OFFSET does."""
    first = _get(client, f"/orders?per_page={per_page}")
    if not isinstance(first, dict) or "next" not in first:
        raise Incorrect(
            "your /orders answers without 'next': add the id of the page's last order, the cursor a client "
            "sends back as ?after= for the next page"
        )
    cursor = first["next"]
    for page in range(2, 5):
        if cursor is None:
            raise Incorrect(f"page {page - 1} is full but its 'next' is null: give the id of its last order")
        url = f"/orders?per_page={per_page}&after={cursor}"
        body = _get(client, url)
        what = f"page {page} through the cursor (order ids)"
        difference = _page_difference(lab, body, offset=(page - 1) * per_page, limit=per_page, what=what)
        if difference is not None:
            raise Incorrect(f"GET {url}: {difference}, as OFFSET pages them")
        cursor = body.get("next")


def _last_page(app: Flask, lab: Course, per_page: int) -> tuple[QueryRecorder, list[Plan], str]:
    """The last page through a cursor (deeper than ?page= reaches at the larger sizes): the same orders as OFFSET,
    no rows skipped, found by a seek. Returns the recorded statements, their plans and the URL."""
    last = -(-lab.info.rows["orders"] // per_page)
    before = order_ids(lab, offset=(last - 1) * per_page - 1, limit=1)[0]
    url = f"/orders?per_page={per_page}&after={before}"
    engine = app.extensions["engine"]
    with record(engine) as rec:
        body = _get(app.test_client(), url)
    what = "last page through the cursor (order ids)"
    difference = _page_difference(lab, body, offset=(last - 1) * per_page, limit=per_page, what=what)
    if difference is not None:
        raise Incorrect(f"GET {url}: {difference}")
    if len(body["orders"]) < per_page and body.get("next") is not None:
        raise Incorrect(f"the last page (GET {url}) has {len(body['orders'])} orders but a 'next': make it null")
    skips = [offset for statement in rec.statements for offset in offsets(statement) if offset != 0]
    if skips:
        how_many = "rows counted by a subquery" if None in skips else f"{sum(o or 0 for o in skips):,} rows"
        raise Incorrect(
            f"GET {url} still skips {how_many} with OFFSET, walking past every one of them: with a cursor, "
            "seek past it in a WHERE condition instead"
        )
    plans = [explain_statement(engine, s, analyze=False) for s in statements_on(rec.statements, "orders")]
    if not any(plan.searches("created_at") for plan in plans):
        lines = "; ".join(key_line(plan) for plan in plans) or "no statement on orders"
        raise Incorrect(
            f"the last page is not found by seeking in an index on (created_at, id) (the plan reads: "
            f"{lines}): compare the row value tuple_(Order.created_at, Order.id) with the cursor's, and "
            "create the index in the paging section above"
        )
    return rec, plans, url


def _tied_pair(lab: Course) -> tuple[int, int] | None:
    """Two orders placed in the same second, next to each other in the list: a cursor between them tests the id."""
    # The second is compared inside the database: sent back from Python, SQLite would compare it as text
    # formatted differently from the stored value (with microseconds) and find nothing.
    second = (
        select(Order.created_at)
        .group_by(Order.created_at)
        .having(func.count() > 1)
        .order_by(Order.created_at)
        .limit(1)
        .scalar_subquery()
    )
    with lab.session() as session:
        pair = list(
            session.scalars(select(Order.id).where(Order.created_at == second).order_by(Order.id.desc()).limit(2))
        )
    return (pair[0], pair[1]) if len(pair) == 2 else None


def _ties_go_by_id(client: FlaskClient, lab: Course) -> None:
    """Two orders in the same second: a cursor on the first gives the second next."""
    pair = _tied_pair(lab)
    if pair is not None:
        following = _get(client, f"/orders?per_page=1&after={pair[0]}").get("orders", [])
        if [order.get("id") for order in following] != [pair[1]]:
            raise Incorrect(
                f"orders {pair[0]} and {pair[1]} were placed in the same second; after {pair[0]} the list "
                f"continues with {pair[1]}, yours with {[o.get('id') for o in following]}: compare "
                "(created_at, id) together, not created_at alone"
            )


def _check_keyset(app: Flask, *, lab: Course, per_page: int = PER_PAGE) -> str:
    """The keyset task's further check: `next` leads through the OFFSET pages, and a deep page is a seek."""
    client = app.test_client()
    _follow_cursor(client, lab, per_page)
    rec, plans, _ = _last_page(app, lab, per_page)
    _ties_go_by_id(client, lab)
    bad = client.get("/orders?after=abc")
    if bad.status_code != 400:
        raise Incorrect(f"GET /orders?after=abc answered {bad.status_code}: read it with int_arg, which says 400")
    seek = next(seek_line(plan, "created_at") for plan in plans if plan.searches("created_at"))
    return (
        "Your order list gives the baseline's pages, and its 'next' cursor leads through them as OFFSET "
        f"does; the last page came from a seek ({seek}) in {rec.count} "
        f"statement{'s' if rec.count != 1 else ''}."
    )


def keyset_task(course: Course, lab: Course) -> AppTask:
    """The order list paged by keyset, on the lesson's indexed copy, against the baseline on the shared dataset."""
    return order_list_task(
        "04",
        lab,
        edges=False,
        hint_text=(
            "Two blanks. The seek: orders that come after the cursor in the list's order (created_at "
            "descending, then id descending) are those whose (created_at, id) is smaller than the cursor's: "
            "tuple_(Order.created_at, Order.id), compared with the cursor. The next cursor: the id of "
            "this page's last order when the page is full (more may follow), else None."
        ),
        baseline_course=course,  # the baseline has no cursor; everything else must match
        extra=partial(_check_keyset, lab=lab),
    )


# ---------------------------------------------------------------------- improve the app: the search
def _check_search(app: Flask) -> str:
    """The search task's further check: one city's customers are found through an index, already in the page's
    order (no sort of the rows found), as the lesson's `(city, name, id)` index allows."""
    url = f"/search?city={_SEARCH_CITY}&name=an&limit=20"
    engine = app.extensions["engine"]
    with record(engine) as rec:
        app.test_client().get(url)
    plans = [(s, explain_statement(engine, s, analyze=False)) for s in statements_on(rec.statements, "customers")]
    found = [plan for _, plan in plans if plan.searches("city")]
    if not found:
        lines = "; ".join(key_line(plan) for _, plan in plans) or "no statement on customers"
        raise Incorrect(
            f"GET {url} reads customers without seeking one city's rows (the plan reads: {lines}): filter "
            "the city in the WHERE, where the index on (city, name, id) made above finds it"
        )
    sorted_pages = [plan for s, plan in plans if re.search(r"\bLIMIT\b", s.sql, re.I) and full_sort(plan)]
    if sorted_pages:
        raise Incorrect(
            f"GET {url} finds the city's customers, then sorts them all ({key_line(sorted_pages[0])}): order "
            "the page by (name, id), the order the index already holds them in"
        )
    return (
        f"Your search gives the baseline's answers; {_SEARCH_CITY}'s customers came from a seek "
        f"({seek_line(found[0], 'city')}) in {rec.count} statement{'s' if rec.count != 1 else ''}, "
        "already in the page's order."
    )


def search_task(course: Course, lab: Course) -> AppTask:
    """The search, filtered, counted and paged by the database through the (city, name, id) index."""
    return AppTask(
        lesson="04",
        endpoint="search",
        rule="/search",
        calls=[
            Call(f"/search?city={_SEARCH_CITY}&name=an"),
            Call(f"/search?city={_SEARCH_CITY}"),  # more matches than one page: the count is of them all
            Call("/search?name=AN&limit=5"),  # any case, and no city
            Call(f"/search?city={_SEARCH_CITY}&name=%25"),  # '%' and '_' are characters to find, as in Python
            Call("/search?name=_&limit=3"),
            Call("/search?city=Atlantis&name=an"),
            Call("/search?limit=abc"),
            Call("/search?limit=501"),
        ],
        timed=Call(f"/search?city={_SEARCH_CITY}&name=an&limit=20"),  # what lesson 01 measured
        budget=2,
        hint_text=(
            "Three blanks. The city: Customer.city == city. The fragment, in any case: "
            "func.lower(Customer.name).contains(name.lower(), autoescape=True) (autoescape makes a '%' or '_' "
            "in the fragment a character to find, as Python's `in` does). The order: Customer.name, then "
            "Customer.id, the order the (city, name, id) index holds one city's customers in."
        ),
        course=lab,
        baseline_course=course,
        extra=_check_search,
    )


# ---------------------------------------------------------------------- the lesson's exercises
@dataclass(frozen=True)
class Lesson04Exercises:
    """Lesson 04's exercises, the queries they index for, and its two improve-the-app tasks."""

    q1: Exercise
    q2: Exercise
    q3: Exercise
    improve: AppTask
    improve_search: AppTask
    reviews_query: Select[int, int]
    email_query: Select[int, str]
    queue_query: Select[int, datetime]


def exercises(course: Course, lab: Course) -> Lesson04Exercises:
    """The lesson's exercises bound to its database; the improve tasks run on `lab`, its indexed copy."""
    return Lesson04Exercises(
        q1=Q1.bind(course),
        q2=Q2.bind(course),
        q3=Q3.bind(course),
        improve=keyset_task(course, lab),
        improve_search=search_task(course, lab),
        reviews_query=reviews_query(course),
        email_query=email_query(course),
        queue_query=_QUEUE_QUERY,
    )

"""Exercises for lesson 04 · Indexing, and its "improve the app" tasks (the order list paged by keyset; the
search, found through an index).

The exercises' answers are indexes: each check creates the learner's index on a fresh private copy, reads the
plan and compares the query's result with and without it. The improve task runs on the lesson's own indexed
copy, with lesson 01's baseline on the shared dataset beside it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

from flask import Flask
from sqlalchemy import Engine, Index, func, inspect, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.schema import CreateIndex

from ..course import Course
from ..data import drop_copy
from ..measure.harness import first_difference
from ..measure.plans import Plan, analyze
from ..measure.recorder import Statement, record
from ..shop.models import Customer, Order, Review
from ..shop.queries import NEWEST_FIRST
from ..topics.profiling import explain_statement
from .app_task import AppTask, Call
from .core import Incorrect, LegacyExercise, same_result
from .lesson03 import deep_pages, without_next

KEYSET_PAGE = 7  # orders per page when the improve check follows cursors
SEARCH_CITY = "Lisbon"  # the city the search task's plan is read for (lesson 04 races the same search)


def reviews_of_product() -> str:
    """Reference for q1: the column the lookup filters on."""
    return "CREATE INDEX ix_reviews_product_id ON reviews (product_id)"


def email_any_case() -> str:
    """Reference for q2: an index on the expression the query compares, not on the column."""
    return "CREATE INDEX ix_customers_lower_email ON customers (lower(email))"


def pending_queue() -> str:
    """Reference for q3: only the pending orders, in the queue's order, so the first 20 entries are the answer."""
    return "CREATE INDEX ix_orders_pending_created_at_id ON orders (created_at, id) WHERE status = 'pending'"


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


def _seek_line(plan: Plan, column: str) -> str:
    """The plan line(s) of a seek on `column`: SQLite's SEARCH, PostgreSQL's scan with its Index Cond."""
    lines = [line.strip().removeprefix("->").strip() for line in plan.lines]
    for i, line in enumerate(lines):
        if re.search(rf"\b{re.escape(column)}\b", line):
            if line.startswith("SEARCH"):
                return line
            if line.startswith("Index Cond:"):
                scan = next((earlier for earlier in reversed(lines[:i]) if "Scan" in earlier), "")
                return f"{scan}, {line}" if scan else line
    return _key_line(plan)


def _seeks(plan: Plan, table: str) -> bool:
    """The plan jumps to the rows through an index (SQLite 'SEARCH t', PostgreSQL an 'Index Cond')."""
    if plan.backend == "sqlite":
        return any(re.match(rf"\s*SEARCH {re.escape(table)}\b", line) for line in plan.lines)
    return plan.uses_index() and any("Index Cond:" in line for line in plan.lines)


def _full_sort(plan: Plan) -> bool:
    """A sort of every row found (an incremental sort of rows already in order does not count)."""
    return any(
        re.search(r"USE TEMP B-TREE FOR ORDER BY|^\s*(->\s*)?Sort\b", line) and "RIGHT PART" not in line
        for line in plan.lines
    )


def _indexes_used(plan: Plan) -> list[str]:
    """The names of the indexes a plan reads."""
    pattern = r"USING (?:COVERING )?INDEX (\w+)|Index (?:Only )?Scan (?:Backward )?using (\w+)|Index Scan on (\w+)"
    return [
        next(g for g in found.groups() if g)
        for line in plan.lines
        for found in [re.search(pattern, line)]
        if found
    ]


def index_definition(engine: Engine, name: str) -> str:
    """The CREATE INDEX statement the database keeps for an index ('' if there is no such index)."""
    query = (
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :name"
        if engine.dialect.name == "sqlite"
        else "SELECT indexdef FROM pg_indexes WHERE indexname = :name"
    )
    with engine.connect() as conn:
        return str(conn.execute(text(query), {"name": name}).scalar() or "")


def _check(course: Course, ddl: Any, query: Any, require: Callable[[Plan, Course], None]) -> str:
    with course.session() as session:
        expected = session.execute(query).all()
    with _with_index(course, ddl) as copy:
        plan = copy.explain(query)
        require(plan, copy)
        with copy.session() as session:
            same_result(session.execute(query).all(), expected)
    return f"the plan now reads: {_key_line(plan)}"


# ---------------------------------------------------------------------- the improve task's checks
def offsets(statement: Statement) -> list[int | None]:
    """The OFFSETs of a statement, read from its SQL and parameters (None: computed in the statement itself)."""
    found_offsets: list[int | None] = []
    for found in re.finditer(r"\bOFFSET\s+(\?|%\((\w+)\)s|\d+)?", statement.sql, re.I):
        token, name = found.group(1), found.group(2)
        if token is None:
            found_offsets.append(None)  # OFFSET (SELECT ...): a number of rows the database counts, then skips
        elif token.isdigit():
            found_offsets.append(int(token))
        elif name is not None:
            found_offsets.append(int(statement.params[name]))
        else:  # qmark style: the parameter's position is the number of ? before it
            found_offsets.append(int(statement.params[statement.sql[: found.start()].count("?")]))
    return found_offsets


def _order_ids(lab: Course, *, offset: int, limit: int) -> list[int]:
    with lab.session() as session:
        return list(session.scalars(select(Order.id).order_by(*NEWEST_FIRST).offset(offset).limit(limit)))


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
        ids = session.scalars(
            select(Order.id).where(Order.created_at == second).order_by(Order.id.desc()).limit(2)
        )
        pair = list(ids)
    if len(pair) < 2:
        return None
    first, following = pair
    return first, following


def keyset_check(lab: Course, per_page: int = KEYSET_PAGE) -> Callable[[Flask], str]:
    """The improve task's further check: `next` leads through the OFFSET pages, and a deep page is a seek."""

    def extra(app: Flask) -> str:
        client = app.test_client()

        def get(url: str) -> Any:
            response = client.get(url)
            if response.status_code != 200:
                message = (response.get_json(silent=True) or {}).get("message", "") if response.is_json else ""
                raise Incorrect(
                    f"GET {url} answered {response.status_code}" + (f" ({message})" if message else "")
                )
            return response.get_json()

        first = get(f"/orders?per_page={per_page}")
        if not isinstance(first, dict) or "next" not in first:
            raise Incorrect(
                "your /orders answers without 'next': add the id of the page's last order, the cursor a client "
                "sends back as ?after= for the next page"
            )
        # 1 · Following the cursor from page 1 gives pages 2, 3, 4 exactly as OFFSET does.
        cursor = first["next"]
        for page in range(2, 5):
            if cursor is None:
                raise Incorrect(f"page {page - 1} is full but its 'next' is null: give the id of its last order")
            url = f"/orders?per_page={per_page}&after={cursor}"
            expected = _order_ids(lab, offset=(page - 1) * per_page, limit=per_page)
            body = get(url)
            got = [order.get("id") for order in body.get("orders", [])]
            difference = first_difference(expected, got, f"page {page} through the cursor (order ids)")
            if difference is not None:
                raise Incorrect(f"GET {url}: {difference}, as OFFSET pages them")
            cursor = body.get("next")
        # 2 · The last page, reached through a cursor (deeper than ?page= reaches at the larger sizes): the same
        # orders as OFFSET would give, no rows skipped, found by a seek.
        last = -(-lab.info.rows["orders"] // per_page)
        before = _order_ids(lab, offset=(last - 1) * per_page - 1, limit=1)[0]
        url = f"/orders?per_page={per_page}&after={before}"
        engine = app.extensions["engine"]
        with record(engine) as rec:
            body = get(url)
        expected = _order_ids(lab, offset=(last - 1) * per_page, limit=per_page)
        got = [order.get("id") for order in body.get("orders", [])]
        difference = first_difference(expected, got, "last page through the cursor (order ids)")
        if difference is not None:
            raise Incorrect(f"GET {url}: {difference}")
        if len(body["orders"]) < per_page and body.get("next") is not None:
            raise Incorrect(
                f"the last page (GET {url}) has {len(body['orders'])} orders but a 'next': make it null"
            )
        skips = [offset for statement in rec.statements for offset in offsets(statement) if offset != 0]
        if skips:
            how_many = "rows counted by a subquery" if None in skips else f"{sum(o or 0 for o in skips):,} rows"
            raise Incorrect(
                f"GET {url} still skips {how_many} with OFFSET, walking past every one of them: with a cursor, "
                "seek past it in a WHERE condition instead"
            )
        on_orders = [s for s in rec.statements if re.search(r"\bFROM orders\b", s.sql)]
        plans = [explain_statement(engine, s, analyze=False) for s in on_orders]
        if not any(plan.searches("created_at") for plan in plans):
            lines = "; ".join(_key_line(plan) for plan in plans) or "no statement on orders"
            raise Incorrect(
                f"the last page is not found by seeking in an index on (created_at, id) (the plan reads: "
                f"{lines}): compare the row value tuple_(Order.created_at, Order.id) with the cursor's, and "
                "create the index in the paging section above"
            )
        # 3 · Two orders in the same second: a cursor on the first must give the second next (ties go by id).
        pair = _tied_pair(lab)
        if pair is not None:
            following = get(f"/orders?per_page=1&after={pair[0]}").get("orders", [])
            if [order.get("id") for order in following] != [pair[1]]:
                raise Incorrect(
                    f"orders {pair[0]} and {pair[1]} were placed in the same second; after {pair[0]} the list "
                    f"continues with {pair[1]}, yours with {[o.get('id') for o in following]}: compare "
                    "(created_at, id) together, not created_at alone"
                )
        bad = client.get("/orders?after=abc")
        if bad.status_code != 400:
            raise Incorrect(
                f"GET /orders?after=abc answered {bad.status_code}: read it with int_arg, which says 400"
            )
        seek = next(_seek_line(plan, "created_at") for plan in plans if plan.searches("created_at"))
        return (
            "Your order list gives the baseline's pages, and its 'next' cursor leads through them as OFFSET "
            f"does; the last page came from a seek ({seek}) in {rec.count} "
            f"statement{'s' if rec.count != 1 else ''}."
        )

    return extra


def search_check(lab: Course) -> Callable[[Flask], str]:
    """The search task's further check: one city's customers are found through an index, already in the page's
    order (no sort of the rows found), as the lesson's `(city, name, id)` index allows."""

    def extra(app: Flask) -> str:
        url = f"/search?city={SEARCH_CITY}&name=an&limit=20"
        engine = app.extensions["engine"]
        with record(engine) as rec:
            app.test_client().get(url)
        on_customers = [s for s in rec.statements if re.search(r"\bFROM customers\b", s.sql)]
        plans = [(s, explain_statement(engine, s, analyze=False)) for s in on_customers]
        seeks = [plan for _, plan in plans if plan.searches("city")]
        if not seeks:
            lines = "; ".join(_key_line(plan) for _, plan in plans) or "no statement on customers"
            raise Incorrect(
                f"GET {url} reads customers without seeking one city's rows (the plan reads: {lines}): filter "
                "the city in the WHERE, where the index on (city, name, id) made above finds it"
            )
        sorted_pages = [plan for s, plan in plans if re.search(r"\bLIMIT\b", s.sql, re.I) and _full_sort(plan)]
        if sorted_pages:
            raise Incorrect(
                f"GET {url} finds the city's customers, then sorts them all ({_key_line(sorted_pages[0])}): order "
                "the page by (name, id), the order the index already holds them in"
            )
        return (
            f"Your search gives the baseline's answers; {SEARCH_CITY}'s customers came from a seek "
            f"({_seek_line(seeks[0], 'city')}) in {rec.count} statement{'s' if rec.count != 1 else ''}, "
            "already in the page's order."
        )

    return extra


# ---------------------------------------------------------------------- the lesson's exercises
def exercises(course: Course, lab: Course | None = None) -> SimpleNamespace:
    """The lesson's exercises, bound to its database; with `lab` (its indexed copy), the improve task too."""
    with course.session() as session:
        # A rarely reviewed product and a customer's email as a person types it: the lookups the indexes are for.
        product = session.scalar(
            select(Review.product_id)
            .group_by(Review.product_id)
            .order_by(func.count(), Review.product_id)
            .limit(1)
        )
        email = str(session.scalar(select(Customer.email).where(Customer.id == 7)))
    typed = email[0].upper() + email[1:].replace("@example.com", "@Example.com")
    reviews_query = select(Review.id, Review.rating).where(Review.product_id == product).order_by(Review.id)
    email_query = select(Customer.id, Customer.name).where(func.lower(Customer.email) == typed.lower())
    queue_query = (
        select(Order.id, Order.created_at)
        .where(Order.status == "pending")
        .order_by(Order.created_at, Order.id)
        .limit(20)
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
            if not _seeks(plan, "customers"):
                raise Incorrect(
                    f"the plan still reads every customer ({_key_line(plan)}): an index holds the values it was "
                    "built from, and the query looks up lower(email), not email as stored"
                )

        return _check(course, answer, email_query, require)

    def check_q3(answer: Any) -> str:
        def require(plan: Plan, copy: Course) -> None:
            used = _indexes_used(plan)
            if not used:
                raise Incorrect(
                    f"the plan does not use your index ({_key_line(plan)}): a partial index serves a query "
                    "whose WHERE implies the index's WHERE"
                )
            if _full_sort(plan):
                raise Incorrect(
                    f"your index finds the pending orders, but they are sorted afterwards ({_key_line(plan)}): "
                    "index the columns of the ORDER BY, in its order"
                )
            definitions = {name: index_definition(copy.engine, name) for name in used}
            if not any(re.search(r"\bWHERE\b", definition, re.I) for definition in definitions.values()):
                raise Incorrect(
                    f"the plan reads {', '.join(used)}, which holds every order: the queue only ever asks for "
                    "pending ones, so index just those (a partial index: ... WHERE status = 'pending')"
                )

        return _check(course, answer, queue_query, require)

    tasks: dict[str, Any] = {}
    if lab is not None:
        deep = deep_pages(course.info.rows["orders"], per_page=7)
        tasks["improve"] = AppTask(
            lesson="04",
            endpoint="order_list",
            rule="/orders",
            calls=[
                Call("/orders"),
                Call("/orders?page=2&per_page=7"),
                *(Call(f"/orders?page={page}&per_page=7") for page in deep),  # the oldest, or as deep as ?page=
                Call("/orders?page=abc"),
                Call("/orders?per_page=501"),
            ],
            timed=Call("/orders?page=1&per_page=20"),  # what lesson 01 measured
            budget=2,
            hint_text=(
                "Two blanks. The seek: orders that come after the cursor in the list's order (created_at "
                "descending, then id descending) are those whose (created_at, id) is smaller than the cursor's: "
                "tuple_(Order.created_at, Order.id), compared with the cursor. The next cursor: the id of "
                "this page's last order when the page is full (more may follow), else None."
            ),
            course=lab,
            baseline_course=course,
            same=without_next,  # the baseline has no cursor; everything else must match
            extra=keyset_check(lab),
        )
        tasks["improve_search"] = AppTask(
            lesson="04",
            endpoint="search",
            rule="/search",
            calls=[
                Call(f"/search?city={SEARCH_CITY}&name=an"),
                Call(f"/search?city={SEARCH_CITY}"),  # more matches than one page: the count is of them all
                Call("/search?name=AN&limit=5"),  # any case, and no city
                Call(f"/search?city={SEARCH_CITY}&name=%25"),  # '%' and '_' are characters to find, as in Python
                Call("/search?name=_&limit=3"),
                Call("/search?city=Atlantis&name=an"),
                Call("/search?limit=abc"),
                Call("/search?limit=501"),
            ],
            timed=Call(f"/search?city={SEARCH_CITY}&name=an&limit=20"),  # what lesson 01 measured
            budget=2,
            hint_text=(
                "Three blanks. The city: Customer.city == city. The fragment, in any case: "
                "func.lower(Customer.name).contains(name.lower(), autoescape=True) (autoescape makes a '%' or '_' "
                "in the fragment a character to find, as Python's `in` does). The order: Customer.name, then "
                "Customer.id, the order the (city, name, id) index holds one city's customers in."
            ),
            course=lab,
            baseline_course=course,
            extra=search_check(lab),
        )

    return SimpleNamespace(
        q1=LegacyExercise(
            "Reviews of a product",
            check_q1,
            "The query filters reviews on one column: index that column. "
            "Form: CREATE INDEX name ON table (column), or Index('name', Model.column).",
            reviews_of_product,
        ),
        q2=LegacyExercise(
            "Log in by email, whatever the case",
            check_q2,
            "The WHERE compares lower(email). An index on email is sorted by the emails as stored; index the "
            "expression itself: CREATE INDEX name ON customers (lower(email)), on both backends.",
            email_any_case,
        ),
        q3=LegacyExercise(
            "The pending-orders queue, from a partial index",
            check_q3,
            "Index only the rows the queue reads: CREATE INDEX name ON orders (the ORDER BY columns, in order) "
            "WHERE status = 'pending'. The first 20 entries of that index are the answer, already sorted.",
            pending_queue,
        ),
        reviews_query=reviews_query,
        email_query=email_query,
        queue_query=queue_query,
        **tasks,
    )

"""Exercises for lesson 05 · Indexes for the app's endpoints, and its two "improve the app" tasks.

Declared here: `Q1` (read the plans: which of six conditions on a name seek in an index), `Q2` (your keyset
query: the lesson's main optimization, raced after its check), `Q3` (a unique login index declared on a model,
as a migration ships it), `search_task(lab)` (the search, filtered, counted and paged by the database through
the (city, name, id) index) and `keyset_task(lab)` (the order list paged by keyset). Everything runs on the
lesson's indexed copy `lab`: the learner's app and lesson 01's baseline on the same data, so that a race
measures the code, not the index. `exercises(course, lab)` binds them all.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Executable, Index, Select, func, insert, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from ..course import Course
from ..measure.harness import first_difference
from ..measure.plans import Plan, analyze
from ..measure.recorder import QueryRecorder, record
from ..shop.models import Base, Customer, Order
from ..shop.queries import NEWEST_FIRST
from ..topics.endpoint_indexes import (
    TIES,
    cursor_before,
    ensure_ties,
    like_respects_case,
    offsets,
    order_ids,
    statements_on,
)
from ..topics.indexing import ddl, full_sort, key_line, seek_line, seeks
from ..topics.profiling import explain_statement
from .app_task import AppTask, Call
from .core import Exercise, Incorrect, Question, same_result
from .lesson04 import starter_cell, with_index
from .order_list import PER_PAGE, order_list_task

__all__ = [
    "LIST_PAGE",
    "Q1",
    "Q2",
    "Q3",
    "Lesson05Exercises",
    "exercises",
    "keyset_task",
    "login_emails",
    "next_page_after",
    "search_clauses",
    "search_task",
    "seeking_clauses",
]

LIST_PAGE = 20  # orders per page in the lesson's paging section and q2 (the order list's default)
_SEARCH_CITY = "Lisbon"  # the city the search task's plan is read for (lesson 01 timed the same search)
# Requests whose answers depend on finding names in any case: asked as they are, and on SQLite asked again with
# LIKE respecting case (as PostgreSQL's always does).
_CASE_CALLS = ("/search?name=AN&limit=5", f"/search?city={_SEARCH_CITY}&name=aN")


# ---------------------------------------------------------------------- q1 · which conditions seek?
def search_clauses(course: Course) -> dict[str, ColumnElement[bool]]:
    """q1's six conditions on customers' names, about the name of customer 1 ('Ana Silva', say)."""
    with course.session() as session:
        name = str(session.scalar(select(Customer.name).where(Customer.id == 1)))
    first, last = name.split()[0], name.split()[-1]
    return {
        "a": func.lower(Customer.name) == name.lower(),
        "b": func.lower(Customer.name).like(first[:2].lower() + "%"),
        "c": Customer.name.like("%" + last),
        "d": Customer.name == name,
        "e": func.upper(Customer.name) == name.upper(),
        "f": Customer.name.like(first[:2] + "%"),
    }


def seeking_clauses(course: Course) -> set[str]:
    """Reference for q1, read from the plans: the labels of the conditions whose plan seeks in an index."""
    return {
        label
        for label, clause in search_clauses(course).items()
        if seeks(course.explain(select(Customer.id).where(clause)), "customers")
    }


def _labels(answer: Any) -> set[str]:
    if isinstance(answer, str):
        return {ch for ch in answer.lower() if ch.isalpha()}
    if isinstance(answer, set | frozenset | list | tuple):
        return {str(label).strip().lower() for label in answer}
    raise Incorrect("answer with the labels of the conditions that seek: a set such as {'a', 'x'}, or 'ax'")


def _check_q1(course: Course, answer: Any) -> str:
    said = _labels(answer)
    clauses = search_clauses(course)
    if unknown := sorted(said - set(clauses)):
        raise Incorrect(f"there is no condition {', '.join(unknown)}: the labels are {', '.join(clauses)}")
    for label, clause in clauses.items():
        plan = course.explain(select(Customer.id).where(clause))
        if seeks(plan, "customers") and label not in said:
            raise Incorrect(f"{label}: its plan seeks in an index too; read it (lab.explain(...))")
        if not seeks(plan, "customers") and label in said:
            raise Incorrect(f"{label}: its plan does not seek, it reads {key_line(plan)}")
    return f"{', '.join(sorted(said)) or 'none'} seek on {course.backend}, the other conditions read every entry."


_HINTS_Q1 = (
    "An index serves a condition when the condition asks for one value, or one range, of what the index "
    "holds, compared the way the index is sorted: the same expression, and a pattern that fixes the "
    "start of the value. Check each one rather than guess: the backends differ.",
    "lab.explain(...) of a select() of customers' ids filtered by a condition gives its plan; SQLite's seek is "
    "a 'SEARCH customers ...' line, PostgreSQL's an 'Index Cond:' under an index scan.",
)
Q1 = Question(
    "Read the plans: which conditions seek?",
    starter_cell(
        1,
        "answer_1",
        """\
# The labels of the conditions whose plan seeks in an index, on the lesson's copy, e.g. {"a", "x"}.
answer_1 = ____""",
    ),
    _check_q1,
    _HINTS_Q1,
    seeking_clauses,
)


# ---------------------------------------------------------------------- q2 · your keyset query
_LISTING = select(Order.id, Order.customer_id, Order.status, Order.created_at, Order.total)
_OLDEST_ID_FIRST = (Order.created_at.desc(), Order.id.asc())  # another tie-breaker, as correct as NEWEST_FIRST


def next_page_after(last: Any) -> Select[*tuple[Any, ...]]:
    """Reference for q2: the page after `last` (a row with .created_at and .id), sought in the (created_at, id)
    index by comparing row values, as tuples compare in Python."""
    after = tuple_(Order.created_at, Order.id) < tuple_(last.created_at, last.id)
    return _LISTING.where(after).order_by(*NEWEST_FIRST).limit(LIST_PAGE)


def _pages(course: Course) -> list[int]:
    """The pages q2 asks for: 2 (its cursor is the first of two orders placed in the same second), a middle page
    and the last page, the deepest."""
    last = math.ceil(course.info.rows["orders"] / LIST_PAGE)
    return sorted({2, max(2, last // 2), last})


def _list_rows(course: Course, order: Sequence[Any], offset: int, limit: int) -> list[Any]:
    with course.session() as session:
        return list(
            session.execute(select(Order.id, Order.created_at).order_by(*order).offset(offset).limit(limit))
        )


def _run_page(course: Course, answer: Callable[[Any], Any], last: Any) -> tuple[list[int], QueryRecorder, Any]:
    statement = answer(last)
    if not isinstance(statement, Executable):
        raise Incorrect(
            f"my_next_page returned {type(statement).__name__}, not a select(): return the statement, which the "
            "check runs and explains"
        )
    with course.session() as session, record(course.engine) as rec:
        rows = session.execute(statement).all()
    return [row[0] for row in rows], rec, statement


def _pages_in(
    course: Course, answer: Callable[[Any], Any], order: Sequence[Any], ties: list[tuple[int, int]]
) -> list[Plan]:
    """q2's pages in one order of the list: each the page OFFSET gives, in one statement, without OFFSET.
    Returns their plans, first page to last."""
    plans = []
    for page in _pages(course):
        last, *_ = _list_rows(course, order, (page - 1) * LIST_PAGE - 1, 1)
        expected = [row.id for row in _list_rows(course, order, (page - 1) * LIST_PAGE, LIST_PAGE)]
        got, rec, statement = _run_page(course, answer, last)
        if got != expected:
            raise Incorrect(_page_mistake(page, last.id, got, expected, ties))
        if rec.count != 1:
            raise Incorrect(f"page {page} took {rec.count} statements: one select() is the whole page")
        if any(skip != 0 for s in rec.statements for skip in offsets(s)):
            raise Incorrect(
                f"page {page} still skips rows with OFFSET, walking past each of them: seek past the cursor in "
                "the WHERE instead"
            )
        plans.append(course.explain(statement))
    return plans


def _page_mistake(page: int, cursor: int, got: list[int], expected: list[int], ties: list[tuple[int, int]]) -> str:
    """Why a page differs from the one OFFSET gives, in the words of the usual mistakes."""
    if got and got[0] == cursor:
        return f"the page after order {cursor} starts with order {cursor} itself: strictly after the cursor"
    for first, second in ties:
        if cursor == first and expected[:1] == [second] and second not in got:
            return (
                f"orders {first} and {second} were placed in the same second; the list goes on from {first} to "
                f"{second}, yours skips it: compare created_at and id together, not created_at alone"
            )
    if len(got) != len(expected):
        return f"page {page} has {len(got)} orders, the list's pages have {len(expected)}"
    return f"page {page} (after order {cursor}): " + (first_difference(expected, got, "order ids") or "")


def _check_q2(course: Course, answer: Any) -> str:
    if not callable(answer):
        raise Incorrect("pass your function, my_next_page, not its result")
    ddl(course, "CREATE INDEX IF NOT EXISTS ix_orders_created_at_id ON orders (created_at, id)")
    analyze(course.engine)
    ties = ensure_ties(course, TIES)  # a page of LIST_PAGE ends on a tie
    mistakes = []
    for order in (NEWEST_FIRST, _OLDEST_ID_FIRST):  # either tie-breaker is right, if the pages keep to it
        try:
            plans = _pages_in(course, answer, order, ties)
            break
        except Incorrect as exc:
            mistakes.append(exc)
    else:
        raise mistakes[0]
    for page, plan in zip(_pages(course), plans, strict=True):
        if not plan.searches("created_at"):
            raise Incorrect(
                f"the right orders, but page {page} is found by reading the index from its start "
                f"({key_line(plan)}): give the database a range of created_at to seek into"
            )
    last = seek_line(plans[-1], "created_at")
    return f"every page as OFFSET gives it, each in one statement, by a seek; the last: {last}"


_HINTS_Q2 = (
    "The next page is the orders that sort after the cursor: an older created_at, or the same created_at "
    "and a smaller id. Said as one condition the index can seek to, and limited to a page, there is "
    "nothing to skip.",
    "sqlalchemy.tuple_ builds a row value (created_at, id) that compares as a tuple does; look up "
    "Select.where, Select.order_by (the list's order is NEWEST_FIRST) and Select.limit.",
)
Q2 = Question(
    "Your keyset query",
    starter_cell(
        2,
        "my_next_page",
        """\
def my_next_page(last):
    \"\"\"The PER_PAGE orders that come after `last` (the previous page's last row: it has .created_at and
    .id) in the list's order, newest first: a select() built on `listing`, without OFFSET.\"\"\"
    ____
""",
    ),
    _check_q2,
    _HINTS_Q2,
    """\
def my_next_page(last):
    after = tuple_(Order.created_at, Order.id) < tuple_(last.created_at, last.id)
    return listing.where(after).limit(PER_PAGE)
""",
)


# ---------------------------------------------------------------------- q3 · a unique login index on the model
def login_emails(course: Course) -> list[str]:
    """Two customers' emails as people type them (capitals), the lookups q3's index is for."""
    with course.session() as session:
        emails = session.scalars(select(Customer.email).where(Customer.id.in_([7, 11])).order_by(Customer.id))
        return [email[0].upper() + email[1:].replace("@example.com", "@Example.com") for email in emails]


def _login(typed: str) -> Select[*tuple[Any, ...]]:
    return select(Customer.id, Customer.name).where(func.lower(Customer.email) == typed.lower())


def _check_q3(course: Course, answer: Any) -> str:
    if isinstance(answer, str):
        raise Incorrect(
            "declare it on the model, as an sqlalchemy Index built from ShippedCustomer's column: the migration "
            "creates what the models declare, not a statement typed elsewhere"
        )
    if not isinstance(answer, Index) or answer.table is None:
        raise Incorrect("the answer is an sqlalchemy Index built from ShippedCustomer's email column")
    if answer.table.metadata is Base.metadata:
        answer.table.indexes.discard(answer)  # it attached itself to the course's own table: detach it
        raise Incorrect(
            "built from the course's Customer, it attached itself to the course's table: declare it on "
            "ShippedCustomer, the app's model in this lesson"
        )
    if answer.table.name != "customers":
        raise Incorrect(f"it is declared on {answer.table.name}, not on the customers' model")
    typed = login_emails(course)
    with course.session() as session:
        expected = {email: session.execute(_login(email)).all() for email in typed}
    with with_index(course, answer) as copy:
        for email in typed:
            plan = copy.explain(_login(email))
            if not seeks(plan, "customers"):
                raise Incorrect(
                    f"the login for {email} still reads every customer ({key_line(plan)}): the login compares "
                    "lower(email), and an index serves the expression it was built from"
                )
            with copy.session() as session:
                same_result(session.execute(_login(email)).all(), expected[email], f"login for {email}")
        _refuses_the_same_email(copy, typed[0])
    return f"both logins seek ({key_line(plan)}), and {typed[0].upper()} cannot be registered a second time."


def _new_customer(email: str) -> Any:
    return insert(Customer).values(
        name="New Customer", email=email, city="Oslo", address="-", notes="-", created_at=datetime(2026, 1, 1)
    )


def _refuses_the_same_email(copy: Course, typed: str) -> None:
    """A second account with an existing email in other capitals is refused; a new email is not."""
    with copy.engine.connect() as conn:
        try:
            conn.execute(_new_customer(typed.upper()))
        except IntegrityError:
            pass
        else:
            raise Incorrect(
                f"a second account as {typed.upper()} was accepted beside {typed.lower()}: the index must refuse "
                "an email that is already there in any case"
            )
        finally:
            conn.rollback()
        try:
            conn.execute(_new_customer("someone.new@example.org"))
        except IntegrityError:
            raise Incorrect("a customer with a new email was refused: the index refuses too much") from None
        finally:
            conn.rollback()


_HINTS_Q3 = (
    "Three properties in one declaration: on the model, so that the migration creates it on every "
    "database; on the lowered email, which the login compares, so that the login seeks; unique, so that "
    "the database refuses Ana@Example.com when ana@example.com has an account.",
    "Look up sqlalchemy.Index: a name, then the columns or SQL expressions it holds (func.lower of a column is "
    "one), and its unique flag. An Index built from a model's column attaches itself to that model's table.",
)
Q3 = Question(
    "Ship a login index: unique, whatever the case",
    starter_cell(
        3,
        "answer_3",
        """\
# An sqlalchemy Index declared on ShippedCustomer (the app's model above), which the migration would create.
answer_3 = ____""",
    ),
    _check_q3,
    _HINTS_Q3,
    """\
answer_3 = Index("ix_customers_lower_email", func.lower(ShippedCustomer.email), unique=True)
""",
)


# ---------------------------------------------------------------------- improve the app: the search
def _calls_on_equal_names(lab: Course) -> list[Call]:
    """Requests whose pages hold customers of the same name, so that only the tie-breaker orders them: a name
    shared in one city (asked in capitals), and one shared by three customers, two to a page."""
    with lab.session() as session:
        in_a_city = session.execute(
            select(Customer.city, Customer.name).group_by(Customer.city, Customer.name).having(func.count() > 1)
            .order_by(Customer.city, Customer.name).limit(1)
        ).first()  # fmt: skip
        thrice = session.scalar(
            select(Customer.name).group_by(Customer.name).having(func.count() > 2).order_by(Customer.name).limit(1)
        )
    calls = []
    if in_a_city is not None:
        calls.append(Call(f"/search?city={in_a_city.city}&name={in_a_city.name.upper()}"))
    if thrice is not None:
        calls.append(Call(f"/search?name={thrice.lower()}&limit=2"))
    return calls


def _same_answers_when_like_respects_case(app: Flask, lab: Course) -> None:
    """The case calls again with LIKE respecting case (SQLite's ignores ASCII case unless told): an answer that
    leans on that fails here as it fails on PostgreSQL."""
    if not like_respects_case(app.extensions["engine"]):
        return  # this SQLite cannot make LIKE respect case: the requests above in capitals are all there is
    baseline = lab.app()
    try:
        for url in _CASE_CALLS:
            expected = baseline.test_client().get(url).get_json()
            difference = first_difference(expected, _get(app.test_client(), url), "JSON")
            if difference is not None:
                raise Incorrect(
                    f"GET {url}, with LIKE respecting case as PostgreSQL's does: {difference}. Your search "
                    "leans on SQLite's LIKE ignoring case: compare lowered text on both sides"
                )
    finally:
        baseline.extensions["engine"].dispose()


def _check_search(app: Flask, *, lab: Course) -> str:
    """The search task's further checks: any case on both backends, and one city's customers found through an
    index, already in the page's order (no sort of the rows found)."""
    _same_answers_when_like_respects_case(app, lab)
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
        f"Your search gives the baseline's answers, in any case on {lab.backend}; {_SEARCH_CITY}'s customers came "
        f"from a seek ({seek_line(found[0], 'city')}) in {rec.count} statement{'s' if rec.count != 1 else ''}, "
        "already in the page's order."
    )


def search_task(lab: Course) -> AppTask:
    """The search, filtered, counted and paged by the database through the (city, name, id) index; the learner's
    app and the baseline both on the lesson's copy."""
    calls = [
        Call(f"/search?city={_SEARCH_CITY}&name=an"),
        Call(f"/search?city={_SEARCH_CITY}"),  # more matches than one page: the count is of them all
        *(Call(url) for url in _CASE_CALLS),  # any case, and no city; then in a city
        Call(f"/search?city={_SEARCH_CITY}&name=%25"),  # '%' and '_' are characters to find, as in Python
        Call("/search?name=_&limit=3"),
        *_calls_on_equal_names(lab),
        Call("/search?city=Atlantis&name=an"),
        Call("/search?limit=abc"),
        Call("/search?limit=501"),
    ]
    return AppTask(
        lesson="05",
        endpoint="search",
        rule="/search",
        calls=calls,
        timed=Call(f"/search?city={_SEARCH_CITY}&name=an&limit=20"),  # what lesson 01 measured
        budget=2,
        hint_text=(
            "Let the database do all of it: a WHERE for the city and for the fragment in any case (lower the "
            "name and the fragment, and escape '%' and '_' so they are characters to find), a count, an ORDER BY "
            "name then id, a LIMIT. Look up ColumnOperators.contains and its autoescape, func.lower, func.count."
        ),
        course=lab,
        extra=partial(_check_search, lab=lab),
    )


# ---------------------------------------------------------------------- improve the app: keyset paging
def _get(client: FlaskClient, url: str) -> Any:
    """The JSON of a GET that must answer 200 (Incorrect, with the app's message, when it does not)."""
    response = client.get(url)
    if response.status_code != 200:
        message = (response.get_json(silent=True) or {}).get("message", "") if response.is_json else ""
        raise Incorrect(f"GET {url} answered {response.status_code}" + (f" ({message})" if message else ""))
    return response.get_json()


def _orders_only(body: Any) -> Any:
    """What the keyset task compares: the orders (the baseline answers ?page= with 'page', a cursor's page
    answers with 'after', and the baseline has no 'next')."""
    return body.get("orders") if isinstance(body, dict) and "orders" in body else body


def _page_difference(lab: Course, body: Any, *, offset: int, limit: int, what: str) -> str | None:
    """How a page's order ids differ from those OFFSET `offset` gives (None: they do not)."""
    expected = order_ids(lab, offset=offset, limit=limit)
    got = [order.get("id") for order in body.get("orders", [])]
    return first_difference(expected, got, what)


def _follow_cursor(client: FlaskClient, lab: Course, per_page: int, ties: list[tuple[int, int]]) -> None:
    """Following `next` from page 1 gives pages 2, 3, 4 exactly as OFFSET does (page 1 ends on a tie)."""
    first = _get(client, f"/orders?per_page={per_page}")
    if not isinstance(first, dict) or "next" not in first:
        raise Incorrect(
            "your /orders answers without 'next': add the id of the page's last order, the cursor a client "
            "sends back as ?after= for the next page"
        )
    if first.get("page") != 1:
        raise Incorrect(f"GET /orders?per_page={per_page} answered page {first.get('page')!r}: say which page, 1")
    cursor = first["next"]
    for page in range(2, 5):
        if cursor is None:
            raise Incorrect(f"page {page - 1} is full but its 'next' is null: give the id of its last order")
        url = f"/orders?per_page={per_page}&after={cursor}"
        body = _get(client, url)
        what = f"page {page} through the cursor (order ids)"
        difference = _page_difference(lab, body, offset=(page - 1) * per_page, limit=per_page, what=what)
        if difference is not None:
            _tie_skipped(cursor, [order.get("id") for order in body.get("orders", [])], ties)
            raise Incorrect(f"GET {url}: {difference}, as OFFSET pages them")
        cursor = body.get("next")


def _last_page(app: Flask, lab: Course, per_page: int) -> tuple[QueryRecorder, list[Plan]]:
    """The last page through a cursor (deeper than ?page= reaches at the larger sizes): the same orders as OFFSET,
    no rows skipped, found by a seek. Returns the recorded statements and their plans."""
    last = -(-lab.info.rows["orders"] // per_page)
    before = cursor_before(lab, last, per_page)
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
            f"{lines}): compare the row value (created_at, id) with the cursor's, and create the index in the "
            "paging section above"
        )
    return rec, plans


def _tie_skipped(cursor: Any, following: list[Any], ties: list[tuple[int, int]]) -> None:
    """Incorrect, in the words of the usual mistake, when the page after a cursor repeats the cursor or skips
    the order placed in the same second as it."""
    if following[:1] == [cursor]:
        raise Incorrect(
            f"the page after order {cursor} starts with order {cursor} itself: the orders strictly after it"
        )
    for first, second in ties:
        if cursor == first and second not in following:
            raise Incorrect(
                f"orders {first} and {second} were placed in the same second; after {first} the list continues "
                f"with {second}, yours with {following[:3]}: compare (created_at, id) together, not created_at "
                "alone"
            )


def _ties_go_by_id(client: FlaskClient, ties: list[tuple[int, int]]) -> None:
    """Two orders placed in the same second: a cursor on the first gives the second next (two such pairs)."""
    for first, second in ties:
        following = [order.get("id") for order in _get(client, f"/orders?per_page=1&after={first}")["orders"]]
        _tie_skipped(first, following, ties)
        if following != [second]:
            raise Incorrect(
                f"GET /orders?per_page=1&after={first} gave {following}, the list goes on with {second}"
            )


def _check_keyset(app: Flask, *, lab: Course, ties: list[tuple[int, int]], per_page: int = PER_PAGE) -> str:
    """The keyset task's further check: `next` leads through the OFFSET pages, and a deep page is a seek."""
    client = app.test_client()
    _follow_cursor(client, lab, per_page, ties)
    rec, plans = _last_page(app, lab, per_page)
    _ties_go_by_id(client, ties)
    bad = client.get("/orders?after=abc")
    if bad.status_code != 400:
        raise Incorrect(f"GET /orders?after=abc answered {bad.status_code}: read it with int_arg, which says 400")
    seek = next(seek_line(plan, "created_at") for plan in plans if plan.searches("created_at"))
    return (
        "Your order list gives the baseline's pages, and its 'next' cursor leads through them as OFFSET "
        f"does; the last page came from a seek ({seek}) in {rec.count} "
        f"statement{'s' if rec.count != 1 else ''}."
    )


def keyset_task(lab: Course) -> AppTask:
    """The order list paged by keyset, with the baseline on the same indexed copy (two pairs of orders placed in
    the same second made first), raced on a deep page: the baseline's ?page=N by OFFSET, yours through the cursor
    that leads to it."""
    ties = ensure_ties(lab, TIES)
    task = order_list_task(
        "05",
        lab,
        edges=False,
        hint_text=(
            "Keep ?page= as it was, and with ?after= seek instead of skipping: the orders that come after the "
            "cursor in the list's order (created_at descending, then id descending) are those whose (created_at, "
            "id) row value is smaller than the cursor's, whose created_at the database can read by its id. "
            "'next' is the id of a full page's last order. Look up sqlalchemy.tuple_ and Select.scalar_subquery."
        ),
        extra=partial(_check_keyset, lab=lab, ties=ties),
    )
    deep = min(math.ceil(lab.info.rows["orders"] / LIST_PAGE), 10_000)  # the deepest page ?page= reaches
    cursor = cursor_before(lab, deep, LIST_PAGE)
    timed = Call(
        f"/orders?page={deep}&per_page={LIST_PAGE}&after={cursor}"
    )  # the baseline reads page, yours after
    return replace(task, timed=timed, same=_orders_only)


# ---------------------------------------------------------------------- the lesson's exercises
@dataclass(frozen=True)
class Lesson05Exercises:
    """Lesson 05's exercises, the conditions q1 is about, and its two improve-the-app tasks."""

    q1: Exercise
    q2: Exercise
    q3: Exercise
    improve_search: AppTask
    improve: AppTask
    search_clauses: dict[str, ColumnElement[bool]]
    login_emails: list[str]
    per_page: int = LIST_PAGE


def exercises(course: Course, lab: Course) -> Lesson05Exercises:
    """The lesson's exercises, on its indexed copy `lab`; but q3's index goes on a fresh copy of `course`."""
    return Lesson05Exercises(
        improve_search=search_task(lab),
        improve=keyset_task(lab),
        q1=Q1.bind(lab),
        q2=Q2.bind(lab),
        q3=Q3.bind(course),
        search_clauses=search_clauses(lab),
        login_emails=login_emails(course),
    )

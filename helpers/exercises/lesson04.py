"""Exercises for lesson 04 · Indexes: the fundamentals.

Declared here: `Q1` (the foreign-key index: the lesson's main optimization, the learner's own CREATE INDEX, raced
after its check), `Q2` (read the plans: which index the planner reads for each of four queries, stated by name)
and `Q3` (the pending-orders queue, from a partial index in the queue's order). An answer that is an index is
created on a fresh private copy (`with_index`), where the check reads the plans of two or more lookups and
compares their rows with those of the shared dataset. `exercises(course, lab)` binds them; Q2 to the lesson's
copy, whose plans it asks about.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, func, inspect, select, tuple_
from sqlalchemy.exc import DBAPIError

from ..course import Course
from ..errors import gist
from ..measure.plans import Plan, analyze
from ..shop.models import Order
from ..topics.indexing import ddl, full_sort, index_definition, index_sql, indexes_used, key_line, seek_line
from .core import Exercise, Incorrect, Question, same_result

__all__ = [
    "Q1",
    "Q2",
    "Q3",
    "Lesson04Exercises",
    "exercises",
    "foreign_key_index",
    "lookup_customers",
    "pending_queue",
    "plan_queries",
    "plans_read",
    "starter_cell",
    "with_index",
]


# ---------------------------------------------------------------------- checking an index
@contextmanager
def with_index(course: Course, answer: Any) -> Iterator[Course]:
    """A private copy of the dataset with the learner's index created, fresh statistics; removed afterwards."""
    sql = index_sql(answer, course.engine)
    if sql is None or not re.match(r"\s*CREATE\s+(UNIQUE\s+)?INDEX\b", sql, re.I):
        raise Incorrect(
            "the answer should be a CREATE INDEX statement (a string), or an sqlalchemy Index built from model "
            "columns"
        )
    with course.scratch_copy("exercise-index") as copy:
        try:
            ddl(copy, sql)
        except DBAPIError as exc:
            raise Incorrect(f"the database refused it: {gist(exc)}") from None
        analyze(copy.engine)
        yield copy


def starter_cell(number: int, answer: str, cell: str) -> str:
    """A question's starter cell: the learner's lines (with ____), then the check, and the calls that help."""
    q = f"ex.q{number}"
    return f"{cell}\n\n{q}.check({answer})\n# {q}.hint(), {q}.hint(2), {q}.solution()"


# What a question wants of one lookup's plan on the copy with the learner's index: raises Incorrect if it falls
# short. `what` names the lookup in the message (for customer 17, ...).
_Requirement = Callable[[Plan, Course, str], None]


def _check_lookups(
    course: Course, answer: Any, queries: Mapping[str, Select[*tuple[Any, ...]]], require: _Requirement
) -> list[Plan]:
    """Each query's plan on a copy with the learner's index meets `require`, and its rows are those the shared
    dataset gives without the index. Returns the plans."""
    with course.session() as session:
        expected = {what: session.execute(query).all() for what, query in queries.items()}
    plans = []
    with with_index(course, answer) as copy:
        for what, query in queries.items():
            plan = copy.explain(query)
            require(plan, copy, what)
            with copy.session() as session:
                same_result(session.execute(query).all(), expected[what], f"rows {what}")
            plans.append(plan)
    return plans


def _columns(copy: Course, table: str, name: str) -> list[str]:
    """The columns of an index on the copy, in order (an expression counts as '')."""
    found = [ix for ix in inspect(copy.engine).get_indexes(table) if ix["name"] == name]
    return [column or "" for column in found[0]["column_names"]] if found else []


def _partial(copy: Course, plan: Plan) -> list[str]:
    """The indexes a plan reads that hold only the rows their own WHERE keeps."""
    return [
        name for name in indexes_used(plan) if re.search(r"\bWHERE\b", index_definition(copy.engine, name), re.I)
    ]


def _finds_by(plan: Plan, copy: Course, what: str, *, table: str, column: str) -> None:
    """The plan looks rows up by `column` through an index that starts with it, and holds every row."""
    if _partial(copy, plan):
        raise Incorrect(
            f"{what}, the plan reads {_partial(copy, plan)[0]}, which holds only the rows its WHERE keeps: the "
            f"lookups are for every {column.removesuffix('_id')}"
        )
    if not plan.uses_index():
        raise Incorrect(f"{what}, the database still reads every row: {key_line(plan)}")
    if not plan.searches(column):
        raise Incorrect(f"{what}, an index is read, but not to find rows by {column}: {key_line(plan)}")
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


# ---------------------------------------------------------------------- q1 · the foreign-key index
def lookup_customers(course: Course) -> tuple[int, int]:
    """Two customers whose orders q1 looks up: the one with the median number of orders, and one with more
    than nine in ten customers have (two inputs: an index made for one customer serves the other no better)."""
    with course.session() as session:
        counts = session.execute(
            select(Order.customer_id, func.count())
            .group_by(Order.customer_id)
            .order_by(func.count(), Order.customer_id)
        ).all()
    return int(counts[len(counts) // 2][0]), int(counts[len(counts) * 9 // 10][0])


def _orders_of(customer: int) -> Select[*tuple[Any, ...]]:
    return select(Order.id, Order.total).where(Order.customer_id == customer).order_by(Order.id)


def foreign_key_index() -> str:
    """Reference for q1: an index on the column the lookups filter on, orders.customer_id."""
    return "CREATE INDEX ix_orders_customer_id ON orders (customer_id)"


def _check_q1(course: Course, answer: Any) -> str:
    queries = {f"for customer {c}": _orders_of(c) for c in lookup_customers(course)}
    plans = _check_lookups(course, answer, queries, lambda plan, copy, what: _finds_by(
        plan, copy, what, table="orders", column="customer_id"
    ))  # fmt: skip
    return f"both customers' orders are found by a seek: {seek_line(plans[-1], 'customer_id')}"


_HINTS_Q1 = (
    "The lookups filter orders on one column, the foreign key to the customer. An index on that column is "
    "a sorted copy of its values, each with its row's id: the database jumps to one customer's entries "
    "instead of reading every order.",
    "Look up CREATE INDEX in SQLite's or PostgreSQL's documentation: a name of your choosing, the table, "
    "and the column in parentheses. (sqlalchemy.Index builds the same statement from a model's column.)",
)
Q1 = Question(
    "The foreign-key index",
    starter_cell(
        1,
        "my_index",
        """\
# Your statement: the index that lets the database find one customer's orders without reading every order.
my_index = ____""",
    ),
    _check_q1,
    _HINTS_Q1,
    foreign_key_index,
)


# ---------------------------------------------------------------------- q2 · read the plans
def plan_queries(course: Course) -> dict[str, Select[*tuple[Any, ...]]]:
    """q2's four queries: two customers' lookups, a rare status counted, and orders above a total (the lesson
    made no index for that one)."""
    first, second = lookup_customers(course)
    with course.session() as session:
        newest = session.execute(select(func.max(Order.created_at))).scalar_one()
        large = session.execute(select(Order.total).order_by(Order.total.desc()).offset(20).limit(1)).scalar_one()
    since = newest - timedelta(days=365)
    return {
        "a": select(Order.id, Order.status).where(Order.customer_id == first),
        "b": select(func.sum(Order.total)).where(Order.customer_id == second, Order.created_at >= since),
        "c": select(func.count()).select_from(Order).where(Order.status == "cancelled"),
        "d": select(Order.id).where(Order.total > int(large)),  # an int: EXPLAIN binds it as the driver does
    }


def plans_read(course: Course) -> dict[str, str | None]:
    """Reference for q2, read from the plans themselves: the index each query's plan reads (None: it scans)."""
    return {
        label: next(iter(indexes_used(course.explain(query))), None)
        for label, query in plan_queries(course).items()
    }


def _said(value: Any) -> str | None:
    """An index name as a learner may write it; None, '', 'none', 'scan' or 'no index' for a plan that scans."""
    if value is None:
        return None
    said = str(value).strip().lower()
    return None if said in ("", "none", "scan", "no index", "seq scan", "table scan") else said


def _answers(answer: Any, labels: Sequence[str]) -> dict[str, str | None]:
    if isinstance(answer, Mapping):
        missing = [label for label in labels if label not in answer]
        if missing:
            raise Incorrect(f"give an index name (or None) for every query: {', '.join(missing)} missing")
        return {label: _said(answer[label]) for label in labels}
    if isinstance(answer, list | tuple) and len(answer) == len(labels):
        return {label: _said(value) for label, value in zip(labels, answer, strict=True)}
    raise Incorrect(f"answer with a dict {{label: index name or None}} for the queries {', '.join(labels)}")


def _check_q2(course: Course, answer: Any) -> str:
    queries = plan_queries(course)
    said = _answers(answer, list(queries))
    known = {ix["name"].lower() for ix in inspect(course.engine).get_indexes("orders") if ix["name"]}
    for label, query in queries.items():
        plan = course.explain(query)
        used = [name.lower() for name in indexes_used(plan)]
        given = said[label]
        if given is not None and given not in used:
            if given not in known:
                raise Incorrect(f"query {label}: there is no index called {given!r} on orders")
            raise Incorrect(f"query {label}: its plan does not read {given}; read it again (lab.explain(...))")
        if given is None and used:
            raise Incorrect(f"query {label}: its plan does read an index; which one?")
    scans = [label for label, given in said.items() if given is None]
    return "you read every plan right" + (f"; {' and '.join(scans)} read the whole table" if scans else "") + "."


_HINTS_Q2 = (
    "Ask the database for each query's plan: a plan names the index it reads, and one that names none reads "
    "the table row by row. Which index the planner takes depends on the columns the query filters, sorts "
    "and reads, and on how many rows it expects.",
    "lab.explain(...) returns a query's plan on the lesson's copy (ex.plan_queries holds the four queries); in "
    "its text, SQLite writes 'USING (COVERING) INDEX name', PostgreSQL 'Index (Only) Scan using name' or 'Bitmap "
    "Index Scan on name'.",
)
Q2 = Question(
    "Read the plans: which index?",
    starter_cell(
        2,
        "answer_2",
        """\
# For each query, the name of the index its plan reads on the lesson's copy, or None if it reads the table.
answer_2 = {"a": ____, "b": ____, "c": ____, "d": ____}""",
    ),
    _check_q2,
    _HINTS_Q2,
    plans_read,
)


# ---------------------------------------------------------------------- q3 · the pending-orders queue
def _queue_queries(course: Course) -> dict[str, Select[*tuple[Any, ...]]]:
    """q3's two screens: the 20 oldest pending orders, and the next 20 after the last of them."""
    first = (
        select(Order.id, Order.created_at)
        .where(Order.status == "pending")
        .order_by(Order.created_at, Order.id)
        .limit(20)
    )
    with course.session() as session:
        last = session.execute(first).all()[-1]
    after = first.where(tuple_(Order.created_at, Order.id) > tuple_(last.created_at, last.id))
    return {"for the first screen": first, "for the next screen": after}


def pending_queue() -> str:
    """Reference for q3: only the pending orders, in the queue's order, so the first 20 entries are the answer."""
    return "CREATE INDEX ix_orders_pending_created_at_id ON orders (created_at, id) WHERE status = 'pending'"


def _serves_the_queue(plan: Plan, copy: Course, what: str) -> None:
    """A partial index read in the queue's order: no sort, and only the pending orders indexed."""
    used = indexes_used(plan)
    if not used:
        raise Incorrect(
            f"{what}, the plan does not use your index ({key_line(plan)}): a partial index serves a query whose "
            "WHERE implies the index's WHERE"
        )
    partial = _partial(copy, plan)
    if not partial:
        raise Incorrect(
            f"the plan reads {', '.join(used)}, which holds every order: the queue only ever asks for pending "
            "ones, so index just those"
        )
    columns = [c for c in _columns(copy, "orders", partial[0]) if c != "status"]
    if columns[:2] != ["created_at", "id"]:
        # SQLite's entries carry the row's id, so (created_at) alone keeps the queue's order there; PostgreSQL's
        # do not, and sorts. The same answer should serve the queue on both.
        raise Incorrect(
            f"{partial[0]} is on ({', '.join(columns)}): index the queue's ORDER BY itself, created_at then id, "
            "so that the entries are in the screen's order on every database"
        )
    if full_sort(plan):
        raise Incorrect(
            f"{what}, your index finds the pending orders, but they are sorted afterwards ({key_line(plan)}): "
            "index the columns of the ORDER BY, in its order"
        )


def _check_q3(course: Course, answer: Any) -> str:
    plans = _check_lookups(course, answer, _queue_queries(course), _serves_the_queue)
    return f"both screens are read from your partial index, in order: {key_line(plans[-1])}"


_HINTS_Q3 = (
    "Two ideas at once. An index can hold only some rows (those its own WHERE keeps), and a query whose "
    "WHERE implies that one can use it; and entries sorted the way the screen lists orders make its first "
    "20 entries the answer, with no sort.",
    "Look up partial indexes: SQLite's 'Partial Indexes' page, PostgreSQL's chapter of the same name "
    "(CREATE INDEX ... WHERE ...). The columns go in the order of the query's ORDER BY.",
)
Q3 = Question(
    "The pending-orders queue, from a partial index",
    starter_cell(
        3,
        "answer_3",
        """\
answer_3 = ____""",
    ),
    _check_q3,
    _HINTS_Q3,
    pending_queue,
)


# ---------------------------------------------------------------------- the lesson's exercises
@dataclass(frozen=True)
class Lesson04Exercises:
    """Lesson 04's exercises and the queries they are about."""

    q1: Exercise
    q2: Exercise
    q3: Exercise
    plan_queries: dict[str, Select[*tuple[Any, ...]]]
    queue_query: Select[*tuple[Any, ...]]


def exercises(course: Course, lab: Course) -> Lesson04Exercises:
    """The lesson's exercises: q1 and q3 checked on copies of the shared dataset, q2 on the lesson's copy `lab`."""
    return Lesson04Exercises(
        q1=Q1.bind(course),
        q2=Q2.bind(lab),
        q3=Q3.bind(course),
        plan_queries=plan_queries(lab),
        queue_query=_queue_queries(course)["for the first screen"],
    )

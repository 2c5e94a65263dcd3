"""Lesson 04's instruments (indexes: the fundamentals), and the plan reading lesson 05 shares: DDL on a lesson's
private copy, the plans' answers beyond `measure.plans.Plan`, the databases' own catalogs, and the sweeps.

* `ddl(lab, ...)` runs CREATE / DROP statements on the lesson's copy; `index_sql` turns an answer (a statement or
  an `Index`) into SQL; `create_yours` puts the learner's index on the copy; `drop_indexes` clears a table's;
* `plan_line`, `key_line`, `seek_line`, `seeks`, `full_sort` and `indexes_used` read a `Plan` the way the
  lessons' sentences and exercise checks do; `seek_table` sets plans side by side; `sql_text` prints a query
  with its values; `planner_knowledge` says what the planner knew to choose as it did;
* `index_names`, `secondary_indexes`, `index_definition`, `index_sizes` and `has_stat4` ask the database about
  itself; `index_effect` words what an index did to a query's time;
* `lookup_customers` (who the main race looks up), `insert_cost` (insert time against the number of indexes)
  and `size_sweep` (lookup time against table size, scan against index) are lesson 04's measurements;
  `reader` makes a variant of a query.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, Executable, Index, Row, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.schema import CreateIndex
from sqlalchemy.sql import ClauseElement

from ..course import Course
from ..errors import gist
from ..measure.display import say
from ..measure.harness import Measurement, Variants, scaling
from ..measure.plans import Plan, analyze
from ..shop.models import Base

__all__ = [
    "create_yours",
    "ddl",
    "drop_indexes",
    "full_sort",
    "has_stat4",
    "index_definition",
    "index_effect",
    "index_names",
    "index_sizes",
    "index_sql",
    "indexes_used",
    "insert_cost",
    "key_line",
    "lookup_customers",
    "plan_line",
    "planner_knowledge",
    "reader",
    "secondary_indexes",
    "seek_line",
    "seek_table",
    "seeks",
    "size_sweep",
    "sql_text",
]


# ---------------------------------------------------------------------- the lesson's copy
def ddl(lab: Course, *statements: str) -> None:
    """Run CREATE / DROP statements on a database (the lesson's private copy), in order, in one transaction."""
    with lab.engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))


def index_sql(answer: Any, engine: Engine) -> str | None:
    """An answer as CREATE INDEX SQL: a string as given, an `Index` compiled for the backend; None for anything
    else (the `____` of a starter cell)."""
    if isinstance(answer, Index) and answer.table is not None:
        if answer.table.metadata is Base.metadata:
            # Built from the course's models, it attached itself to their table, and every dataset built later
            # in this kernel would get it: detach it (its SQL is all the lesson needs).
            answer.table.indexes.discard(answer)
        return str(CreateIndex(answer).compile(dialect=engine.dialect))
    return answer if isinstance(answer, str) else None


def secondary_indexes(engine: Engine, table: str) -> set[str]:
    """A table's indexes that a statement made and a statement can drop: not the primary key's, not those SQLite
    makes for a UNIQUE constraint."""
    with engine.connect() as conn:
        names = index_names(conn, table)
    return {n for n in names if not n.startswith("sqlite_autoindex_") and n != f"{table}_pkey"}


def drop_indexes(lab: Course, table: str, *, keep: Sequence[str] = ()) -> None:
    """Drop a table's secondary indexes on the lesson's copy (but those in `keep`): a cell that builds on
    "only these indexes" starts from them however often it is rerun."""
    gone = sorted(secondary_indexes(lab.engine, table) - set(keep))
    ddl(lab, *(f"DROP INDEX IF EXISTS {name}" for name in gone))


def create_yours(lab: Course, answer: Any, table: str = "orders") -> bool:
    """Put the learner's index on the lesson's copy, `table` cleared of other indexes first (so that a rerun, or
    a changed answer, starts again from none). Says in one line why not, and returns False, while the answer is
    still `____` or the database refuses it."""
    sql = index_sql(answer, lab.engine)
    drop_indexes(lab, table)
    if sql is None:
        say("Your index is not written yet (the cell above holds ____): the race runs without it.", "#7a6a00")
        return False
    try:
        ddl(lab, sql)
    except DBAPIError as exc:
        say(f"The database refused your statement ({gist(exc)}): the race runs without it.", "#b00020")
        return False
    analyze(lab.engine)
    return True


# ---------------------------------------------------------------------- reading plans
def plan_line(plan: Plan) -> str:
    """A plan on one line, its steps separated by ' / '."""
    return plan.text.replace("\n", " / ")


def _steps(plan: Plan) -> list[str]:
    """The plan's lines without indentation or PostgreSQL's '->' arrows."""
    return [line.strip().removeprefix("->").strip() for line in plan.lines]


def key_line(plan: Plan) -> str:
    """The plan line that says how the table is read (PostgreSQL's first line is often Limit or Sort)."""
    for line in plan.lines:
        if re.search(r"SCAN|SEARCH|Scan", line):
            return line.strip().removeprefix("->").strip()
    return plan.lines[0].strip() if plan.lines else ""


def seek_line(plan: Plan, column: str) -> str:
    """The plan line(s) of a seek on `column`: SQLite's SEARCH, PostgreSQL's scan with its Index Cond."""
    lines = _steps(plan)
    for i, line in enumerate(lines):
        if re.search(rf"\b{re.escape(column)}\b", line):
            if line.startswith("SEARCH"):
                return line
            if line.startswith("Index Cond:"):
                scan = next((earlier for earlier in reversed(lines[:i]) if "Scan" in earlier), "")
                return f"{scan}, {line}" if scan else line
    return key_line(plan)


def seeks(plan: Plan, table: str) -> bool:
    """The plan jumps to the rows through an index (SQLite 'SEARCH t', PostgreSQL an 'Index Cond')."""
    if plan.backend == "sqlite":
        return any(re.match(rf"\s*SEARCH {re.escape(table)}\b", line) for line in plan.lines)
    return plan.uses_index() and any("Index Cond:" in line for line in plan.lines)


def full_sort(plan: Plan) -> bool:
    """A sort of every row found (an incremental sort of rows already in order does not count)."""
    return any(
        re.search(r"USE TEMP B-TREE FOR ORDER BY|^\s*(->\s*)?Sort\b", line) and "RIGHT PART" not in line
        for line in plan.lines
    )


def indexes_used(plan: Plan) -> list[str]:
    """The names of the indexes a plan reads."""
    pattern = r"USING (?:COVERING )?INDEX (\w+)|Index (?:Only )?Scan (?:Backward )?using (\w+)|Index Scan on (\w+)"
    return [
        next(g for g in found.groups() if g)
        for line in plan.lines
        for found in [re.search(pattern, line)]
        if found
    ]


def sql_text(statement: ClauseElement, engine: Engine) -> str:
    """A statement as the database receives it, its values written in (to print a query a learner explains)."""
    sql = " ".join(str(statement.compile(engine, compile_kwargs={"literal_binds": True})).split())
    # psycopg's paramstyle doubles a literal '%' in SQL meant for the driver; what the database runs has one.
    return sql.replace("%%", "%") if engine.dialect.paramstyle in ("format", "pyformat") else sql


def seek_table(plans: Mapping[str, Plan], column: str) -> pd.DataFrame:
    """Plans side by side: whether each seeks by `column` in an index, and the plan on one line."""
    return pd.DataFrame(
        {
            "seeks in the index": [plan.searches(column) for plan in plans.values()],
            "plan": [plan_line(plan) for plan in plans.values()],
        },
        index=list(plans),
    )


# ---------------------------------------------------------------------- the database about itself
def index_names(connection: Connection, table: str) -> set[str]:
    """The names of a table's indexes in the database's own catalog, including those the database made itself
    (and expression indexes, which SQLAlchemy's reflection skips on SQLite, with a warning)."""
    if connection.dialect.name == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :table"
    else:
        query = "SELECT indexname FROM pg_indexes WHERE tablename = :table"
    return set(connection.execute(text(query), {"table": table}).scalars())


def index_definition(engine: Engine, name: str) -> str:
    """The CREATE INDEX statement the database keeps for an index ('' if there is no such index)."""
    query = (
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :name"
        if engine.dialect.name == "sqlite"
        else "SELECT indexdef FROM pg_indexes WHERE indexname = :name"
    )
    with engine.connect() as conn:
        return str(conn.execute(text(query), {"name": name}).scalar() or "")


def has_stat4(engine: Engine) -> bool:
    """Whether this SQLite was built with STAT4, the statistics that let its planner tell values apart."""
    with engine.connect() as conn:
        return "ENABLE_STAT4" in set(conn.exec_driver_sql("PRAGMA compile_options").scalars())


def planner_knowledge(engine: Engine, plans: Mapping[str, Plan]) -> str:
    """Whether the planner chose alike for the values whose plans are given, and what it knows to tell them
    apart (SQLite's STAT4 statistics, PostgreSQL's most common values), in one sentence."""
    same = len({plan.uses_index() for plan in plans.values()}) == 1
    choice = (
        "made the same choice for every value" if same else "chose differently for the common and the rare value"
    )
    if engine.dialect.name == "sqlite":
        return f"This SQLite {'has' if has_stat4(engine) else 'lacks'} STAT4; its planner {choice}."
    return f"PostgreSQL, which keeps each column's most common values, {choice}."


def index_effect(scan: Measurement, indexed: Measurement) -> str:
    """What the index did to the time, in words: 'N× faster', 'N× as long', or 'about the same' (within 10%)."""
    speedup = scan.median_s / indexed.median_s
    if speedup >= 1.1:
        return f"{speedup:.1f}× faster with the index"
    if speedup <= 1 / 1.1:
        return f"{1 / speedup:.1f}× as long with the index"
    return "about the same"


# ---------------------------------------------------------------------- the sweeps
def insert_cost(
    lab: Course, insert: Executable, indexes: Sequence[str], counts: Sequence[int], *, label: str, repeat: int = 5
) -> pd.DataFrame:
    """Time `insert` with 0, 1, ... of the CREATE INDEX statements `indexes` run first (one row per count, as
    `scaling` gives them). Every insert is rolled back, so each run starts from the same empty table."""
    created = 0

    def insert_and_roll_back() -> int:
        with lab.engine.connect() as conn:
            transaction = conn.begin()
            inserted = int(conn.execute(insert).rowcount)
            transaction.rollback()
            return inserted

    def with_indexes(count: int) -> Variants:
        nonlocal created
        while created < count:
            ddl(lab, indexes[created])
            created += 1
        return {label: insert_and_roll_back}

    return scaling(with_indexes, counts, engine=lab.engine, repeat=repeat)


def size_sweep(lab: Course, sizes: Sequence[int], *, matches: int = 5, repeat: int = 5) -> pd.DataFrame:
    """Lookup time against table size, by scan and by index, with only the table growing.

    For each size n: tables `orders_<n>` and `orders_<n>_ix` holding the first n orders and a column `k` in which
    every value occurs on `matches` rows, the second with an index on `k`. Each call looks up ten values of `k`,
    so every call returns the same 10 × `matches` rows at every size.
    """
    for n in sizes:
        for suffix in ("", "_ix"):
            ddl(lab, f"DROP TABLE IF EXISTS orders_{n}{suffix}")
            columns = f"id, id % {n // matches} AS k, total"
            ddl(lab, f"CREATE TABLE orders_{n}{suffix} AS SELECT {columns} FROM orders WHERE id <= {n}")
        ddl(lab, f"CREATE INDEX IF NOT EXISTS ix_orders_{n}_ix_k ON orders_{n}_ix (k)")
    analyze(lab.engine)

    def lookups_in(table: str) -> Callable[[], list[tuple[Any, ...]]]:
        query = text(f"SELECT id, total FROM {table} WHERE k = :k ORDER BY id")

        def run() -> list[tuple[Any, ...]]:
            with lab.engine.connect() as conn:
                return [tuple(r) for k in range(1, 11) for r in conn.execute(query, {"k": k})]

        return run

    return scaling(
        lambda n: {"scan": lookups_in(f"orders_{n}"), "index": lookups_in(f"orders_{n}_ix")},
        sizes,
        engine=lab.engine,
        repeat=repeat,
    )


def index_sizes(engine: Engine, table: str) -> pd.DataFrame:
    """The size on disk of a table and of each of its secondary indexes, in MB (SQLite reads its `dbstat` table,
    PostgreSQL `pg_relation_size`). Empty where this SQLite was built without `dbstat`."""
    names = sorted(secondary_indexes(engine, table))
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            try:
                sizes = dict(conn.execute(text("SELECT name, sum(pgsize) FROM dbstat GROUP BY name")).all())
            except DBAPIError:  # no such table: dbstat (a build without SQLITE_ENABLE_DBSTAT_VTAB)
                return pd.DataFrame(columns=["MB", "× the table"])
        else:
            query = text("SELECT pg_relation_size(CAST(:name AS regclass))")
            sizes = {name: conn.execute(query, {"name": name}).scalar_one() for name in [table, *names]}
    frame = pd.DataFrame({"MB": [sizes.get(name, 0) / 1e6 for name in [table, *names]]}, index=[table, *names])
    frame["× the table"] = frame["MB"] / frame.loc[table, "MB"]
    return frame


# ---------------------------------------------------------------------- the main race
def lookup_customers(course: Course) -> list[int]:
    """The customers the lesson's main race looks up: 50, fewer at the larger sizes (without an index each
    lookup reads every order, and the race should take seconds, not minutes)."""
    return list(range(1, max(5, min(50, 10_000_000 // course.info.rows["orders"])) + 1))


def reader(engine: Engine, query: Executable) -> Callable[[], list[Row[Any]]]:
    """A variant to time: run `query` on a connection of `engine` and return its rows."""

    def run() -> list[Row[Any]]:
        with engine.connect() as conn:
            return list(conn.execute(query).all())

    return run

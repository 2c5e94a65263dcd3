"""Lesson 04's instruments: DDL on the lesson's private copy, the plans' answers beyond `measure.plans.Plan`, the
databases' own catalogs, and the lesson's sweeps and paging.

* `ddl(lab, ...)` runs CREATE / DROP statements on the lesson's copy;
* `plan_line`, `key_line`, `seek_line`, `seeks`, `full_sort`, `indexes_used` and `index_entries_read` read a
  `Plan` the way the lesson's sentences and exercise checks do; `seek_table` sets plans side by side;
  `explain_case_sensitive_like` explains a query under SQLite's `PRAGMA case_sensitive_like = ON`;
* `index_names`, `index_definition`, `collation`, `like_note` and `has_stat4` ask the database about itself;
* `index_effect` words what an index did to a query's time;
* `insert_cost` (insert time against the number of indexes) and `size_sweep` (lookup time against table size,
  scan against index) are the lesson's two sweeps;
* `reader`, `order_ids`, `cursor_before` serve the OFFSET and keyset pages; `offsets` and `statements_on` read
  recorded statements (how many rows an OFFSET skips, which statements read a table).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, Executable, Row, select, text
from sqlalchemy.sql import ClauseElement

from ..course import Course
from ..measure.harness import Measurement, Variants, scaling
from ..measure.plans import Plan, analyze, explain
from ..measure.recorder import Statement
from ..shop.models import Order
from ..shop.queries import NEWEST_FIRST

__all__ = [
    "collation",
    "cursor_before",
    "ddl",
    "explain_case_sensitive_like",
    "full_sort",
    "has_stat4",
    "index_definition",
    "index_effect",
    "index_entries_read",
    "index_names",
    "indexes_used",
    "insert_cost",
    "key_line",
    "like_note",
    "offsets",
    "order_ids",
    "plan_line",
    "reader",
    "seek_line",
    "seek_table",
    "seeks",
    "size_sweep",
    "statements_on",
]


# ---------------------------------------------------------------------- the lesson's copy
def ddl(lab: Course, *statements: str) -> None:
    """Run CREATE / DROP statements on a database (the lesson's private copy), in order, in one transaction."""
    with lab.engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))


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


def index_entries_read(plan: Plan, index: str) -> int | None:
    """How many entries a backward scan of `index` produced, as PostgreSQL's EXPLAIN ANALYZE counts them (None
    where the plan does not say: SQLite's never does)."""
    pattern = rf"Index (?:Only )?Scan Backward using {re.escape(index)} .*actual rows=(\d+)"
    found = re.findall(pattern, plan.text)
    return int(found[0]) if found else None


def seek_table(plans: Mapping[str, Plan], column: str) -> pd.DataFrame:
    """Plans side by side: whether each seeks by `column` in an index, and the plan on one line."""
    return pd.DataFrame(
        {
            "seeks in the index": [plan.searches(column) for plan in plans.values()],
            "plan": [plan_line(plan) for plan in plans.values()],
        },
        index=list(plans),
    )


def explain_case_sensitive_like(engine: Engine, statement: ClauseElement) -> Plan:
    """SQLite's plan of a statement with `PRAGMA case_sensitive_like = ON`: the pragma is per connection, so it
    is set on one, the statement explained there, and the pragma undone."""
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA case_sensitive_like = ON")
        try:
            return explain(conn, statement)
        finally:
            conn.exec_driver_sql("PRAGMA case_sensitive_like = OFF")


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


def collation(engine: Engine) -> str:
    """A PostgreSQL database's collation: 'C' in the course's cluster (initialised with --no-locale)."""
    with engine.connect() as conn:
        query = text("SELECT datcollate FROM pg_database WHERE datname = current_database()")
        return str(conn.execute(query).scalar_one())


def like_note(engine: Engine) -> str:
    """What decides whether an index on a name serves `LIKE 'An%'` on this database, in one sentence."""
    if engine.dialect.name == "sqlite":
        return "SQLite: LIKE ignores ASCII case unless case_sensitive_like is on."
    found = collation(engine)
    return f"This database's collation is {found!r}" + (
        " (the course's cluster is initialised with --no-locale): indexes sort by bytes, and a plain index "
        "serves LIKE 'An%'. With a language locale it would take CREATE INDEX ... (name text_pattern_ops)."
        if found in ("C", "POSIX")
        else ": a plain index does not serve LIKE 'An%' here; (name text_pattern_ops) would."
    )


def has_stat4(engine: Engine) -> bool:
    """Whether this SQLite was built with STAT4, the statistics that let its planner tell values apart."""
    with engine.connect() as conn:
        return "ENABLE_STAT4" in set(conn.exec_driver_sql("PRAGMA compile_options").scalars())


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


# ---------------------------------------------------------------------- paging, and recorded statements
def reader(engine: Engine, query: Executable) -> Callable[[], list[Row[Any]]]:
    """A variant to time: run `query` on a connection of `engine` and return its rows."""

    def run() -> list[Row[Any]]:
        with engine.connect() as conn:
            return list(conn.execute(query).all())

    return run


def order_ids(course: Course, *, offset: int, limit: int) -> list[int]:
    """The ids of `limit` orders of the order list (newest first), after skipping `offset` of them."""
    with course.session() as session:
        return list(session.scalars(select(Order.id).order_by(*NEWEST_FIRST).offset(offset).limit(limit)))


def cursor_before(course: Course, page: int, per_page: int) -> int | None:
    """The id of the last order on the page before `page`: the cursor a client sends back (None on page 1)."""
    if page == 1:
        return None
    return order_ids(course, offset=(page - 1) * per_page - 1, limit=1)[0]


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


def statements_on(statements: Iterable[Statement], table: str) -> list[Statement]:
    """The statements that read `table` (FROM it)."""
    return [s for s in statements if re.search(rf"\bFROM {re.escape(table)}\b", s.sql)]

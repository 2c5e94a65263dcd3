"""Lesson 05's instruments (indexes for the app's endpoints): what decides whether an index serves `LIKE`, the
timestamps as each backend stores them, keyset paging's cursors and ties, and what recorded statements say.

* `collation`, `sorts_by_bytes` and `like_note` read the database's collation (PostgreSQL serves `LIKE 'An%'`
  from a plain index only when it sorts text byte by byte); `prefix_plans` explains a prefix search the ways
  each backend can serve it; `explain_case_sensitive_like` and `like_respects_case` use SQLite's
  `PRAGMA case_sensitive_like`;
* `stored_timestamp` shows how a row's `created_at` is stored, and `literal_matches` what a hand-typed literal
  finds;
* `order_ids`, `cursor_before`, `row_before` and `ensure_ties` serve the paging section and its checks (the
  list's order has ties in `created_at` only where someone made them: `tiny` has none);
* `offsets`, `statements_on` and `index_entries_read` read recorded statements and plans.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Row, event, select, text
from sqlalchemy.sql import ClauseElement

from ..course import Course
from ..measure.plans import Plan, analyze, explain
from ..measure.recorder import Statement
from ..shop.models import Order
from ..shop.queries import NEWEST_FIRST
from .indexing import ddl

__all__ = [
    "TIES",
    "collation",
    "cursor_before",
    "ensure_ties",
    "explain_case_sensitive_like",
    "index_entries_read",
    "like_note",
    "like_respects_case",
    "literal_matches",
    "offsets",
    "order_ids",
    "prefix_plans",
    "row_before",
    "sorts_by_bytes",
    "statements_on",
    "stored_timestamp",
]


# ---------------------------------------------------------------------- collations and LIKE
def _locale(engine: Engine) -> tuple[str, str]:
    """A PostgreSQL database's collation provider ('c' libc, 'i' ICU, 'b' built in) and locale, read from
    pg_database as a whole row (its locale column is `datlocale` from PostgreSQL 17, `daticulocale` before)."""
    with engine.connect() as conn:
        query = text("SELECT row_to_json(d) FROM pg_database d WHERE datname = current_database()")
        row: dict[str, Any] = conn.execute(query).scalar_one()
    provider = str(row.get("datlocprovider") or "c")
    locale = row.get("datcollate") if provider == "c" else row.get("datlocale") or row.get("daticulocale")
    return provider, str(locale)


def collation(engine: Engine) -> str:
    """The database's default collation, as its catalog names it: 'C' in the course's cluster (initialised with
    --no-locale), 'en_US.UTF-8' on most installers' servers, 'en-US (ICU)' with an ICU locale."""
    if engine.dialect.name == "sqlite":
        return "BINARY"
    provider, locale = _locale(engine)
    return locale + {"c": "", "i": " (ICU)", "b": " (built-in)"}.get(provider, f" ({provider})")


def sorts_by_bytes(engine: Engine) -> bool:
    """Whether text sorts byte by byte (code point by code point), so that a plain index on a column holds the
    range `LIKE 'An%'` asks for. SQLite's BINARY does; PostgreSQL's does under the C or POSIX locale and the
    built-in provider, not under a language's locale (libc's en_US.UTF-8, even C.UTF-8, or any ICU locale)."""
    if engine.dialect.name == "sqlite":
        return True
    provider, locale = _locale(engine)
    return provider == "b" or (provider == "c" and locale in ("C", "POSIX"))


def like_note(engine: Engine) -> str:
    """What decides whether an index on a name serves `LIKE 'An%'` on this database, in one sentence."""
    if engine.dialect.name == "sqlite":
        return (
            "SQLite: LIKE ignores ASCII case and a plain index is sorted case-sensitively, so it serves a prefix "
            "only with COLLATE NOCASE, or with case_sensitive_like on."
        )
    found = collation(engine)
    if sorts_by_bytes(engine):
        return (
            f"This database's collation is {found!r}: text sorts byte by byte, so a plain index serves "
            "LIKE 'An%' (a server installed with a language's locale needs text_pattern_ops)."
        )
    return (
        f"This database's collation is {found!r}, a language's sort order: a plain index does not hold "
        "LIKE 'An%' as one range, an index with text_pattern_ops does."
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


def prefix_plans(lab: Course, prefix: ClauseElement) -> dict[str, Plan]:
    """The plans of a prefix search (`name LIKE 'An%'`) with what makes an index serve it on this backend, each
    index made for its plan alone and dropped after: SQLite's NOCASE index and `case_sensitive_like`;
    PostgreSQL's text_pattern_ops (any collation), and ILIKE, which no B-tree serves."""
    plans: dict[str, Plan] = {}
    if lab.backend == "sqlite":
        ddl(lab, "CREATE INDEX IF NOT EXISTS ix_customers_name_nocase ON customers (name COLLATE NOCASE)")
        analyze(lab.engine)
        plans["LIKE 'An%', index on name COLLATE NOCASE"] = lab.explain(prefix)
        ddl(lab, "DROP INDEX ix_customers_name_nocase")  # only the plain index is left to choose from
        plans["LIKE 'An%', index on name, case_sensitive_like = ON"] = explain_case_sensitive_like(
            lab.engine, prefix
        )
        return plans
    ddl(
        lab,
        "DROP INDEX IF EXISTS ix_customers_name",
        "CREATE INDEX ix_customers_name_pattern ON customers (name text_pattern_ops)",
    )
    analyze(lab.engine)
    plans["LIKE 'An%', index on name text_pattern_ops"] = lab.explain(prefix)
    ilike = text("SELECT id, name FROM customers WHERE name ILIKE 'an%'")
    plans["ILIKE 'an%', index on name text_pattern_ops"] = lab.explain(ilike)
    ddl(lab, "DROP INDEX ix_customers_name_pattern", "CREATE INDEX ix_customers_name ON customers (name)")
    analyze(lab.engine)
    return plans


def like_respects_case(engine: Engine) -> bool:
    """Make LIKE respect case on every connection of a SQLite engine, as PostgreSQL's does (`PRAGMA
    case_sensitive_like`, set as each connection opens; pooled ones are dropped first). True once it does: a
    check that needs LIKE to tell 'An' from 'an' on both backends calls it. PostgreSQL's LIKE already does."""
    if engine.dialect.name != "sqlite":
        return True

    def _pragma(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA case_sensitive_like = ON")

    event.listen(engine, "connect", _pragma)
    engine.dispose()
    with engine.connect() as conn:
        return not conn.exec_driver_sql("SELECT 'An' LIKE 'an'").scalar()


# ---------------------------------------------------------------------- timestamps as stored
def stored_timestamp(lab: Course, order_id: int) -> dict[str, str]:
    """How a row's created_at is stored: SQLite's type of the value (text) and the text itself; PostgreSQL's
    column type and the value printed as text."""
    if lab.backend == "sqlite":
        query = "SELECT typeof(created_at), created_at FROM orders WHERE id = :id"
    else:
        query = "SELECT pg_typeof(created_at)::text, created_at::text FROM orders WHERE id = :id"
    with lab.engine.connect() as conn:
        kind, value = conn.execute(text(query), {"id": order_id}).one()
    return {"stored as": str(kind), "value": str(value)}


def literal_matches(lab: Course, order_id: int) -> int:
    """How many orders `created_at = '<that order's second, typed without a fraction>'` finds: SQLite compares the
    stored text with the literal's text, PostgreSQL turns the literal into a timestamp first."""
    with lab.session() as session:
        stamp = session.scalar(select(Order.created_at).where(Order.id == order_id))
    assert stamp is not None
    typed = stamp.strftime("%Y-%m-%d %H:%M:%S")
    with lab.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM orders WHERE created_at = '{typed}'")).scalar_one())


# ---------------------------------------------------------------------- the order list's pages and ties
# Where the paging checks need two orders placed in the same second, next to each other in the list: offsets 6
# and 7 (a page of 7 ends between them), 19 and 20 (a page of 20 does).
TIES = (6, 19)


def order_ids(course: Course, *, offset: int, limit: int) -> list[int]:
    """The ids of `limit` orders of the order list (newest first), after skipping `offset` of them."""
    with course.session() as session:
        return list(session.scalars(select(Order.id).order_by(*NEWEST_FIRST).offset(offset).limit(limit)))


def cursor_before(course: Course, page: int, per_page: int) -> int | None:
    """The id of the last order on the page before `page`: the cursor a client sends back (None on page 1)."""
    if page == 1:
        return None
    return order_ids(course, offset=(page - 1) * per_page - 1, limit=1)[0]


def row_before(course: Course, page: int, per_page: int) -> Row[int, datetime] | None:
    """The last order (its id and created_at) of the page before `page`: what a keyset query continues from
    (None on page 1)."""
    if page == 1:
        return None
    with course.session() as session:
        listing = select(Order.id, Order.created_at).order_by(*NEWEST_FIRST)
        return session.execute(listing.offset((page - 1) * per_page - 1).limit(1)).one()


def ensure_ties(lab: Course, offsets_in_list: Iterable[int] = TIES) -> list[tuple[int, int]]:
    """Make the orders at each offset of the list and the one after it share their created_at (the second is
    given the first's, so the list's order stays as it was: equal dates, then the higher id first). A shop with
    many orders has such ties; `tiny` has none, and a check of the list's tie-breaker needs them. Idempotent,
    for a private copy only. Returns the (first, second) id pairs."""
    pairs = []
    for offset in offsets_in_list:
        first, second = order_ids(lab, offset=offset, limit=2)
        pairs.append((first, second))
    with lab.engine.begin() as conn:
        for first, second in pairs:
            conn.execute(
                text("UPDATE orders SET created_at = (SELECT created_at FROM orders WHERE id = :a) WHERE id = :b"),
                {"a": first, "b": second},
            )
    return pairs


# ---------------------------------------------------------------------- recorded statements and plans
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


def index_entries_read(plan: Plan, index: str) -> int | None:
    """How many entries a backward scan of `index` produced, as PostgreSQL's EXPLAIN ANALYZE counts them (None
    where the plan does not say: SQLite's never does)."""
    pattern = rf"Index (?:Only )?Scan Backward using {re.escape(index)} .*actual rows=(\d+)"
    found = re.findall(pattern, plan.text)
    return int(found[0]) if found else None

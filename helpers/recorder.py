"""See every statement SQLAlchemy sends: a recorder on cursor events, statement shapes, EXPLAIN."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.sql import ClauseElement

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Statement:
    """One statement as the driver received it."""

    sql: str
    params: Any
    duration_s: float
    executemany: bool

    @property
    def shape(self) -> str:
        """The SQL with literals and parameter lists collapsed: repeated shapes are how N+1 shows."""
        return statement_shape(self.sql)


def statement_shape(sql: str) -> str:
    """Collapse whitespace, numbers, strings and IN-lists so statements differing only in values match."""
    shape = re.sub(r"\s+", " ", sql).strip()
    shape = re.sub(r"'(?:[^']|'')*'", "?", shape)
    shape = re.sub(r"::\w+(\[\])?", "", shape)  # PostgreSQL casts: %(pk_1)s::INTEGER is one parameter
    shape = re.sub(r"\b\d+(\.\d+)?\b", "?", shape)
    shape = re.sub(r"%\(\w+\)s|:\w+|\$\d+|\?", "?", shape)
    shape = re.sub(r"\(\s*\?(?:\s*,\s*\?)*\s*\)", "(?…)", shape)
    return shape


@dataclass
class QueryRecorder:
    """Collects statements executed on an engine while active (see `record`)."""

    statements: list[Statement] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.statements)

    @property
    def total_s(self) -> float:
        return sum(s.duration_s for s in self.statements)

    def shapes(self) -> Counter[str]:
        """How many times each statement shape ran."""
        return Counter(s.shape for s in self.statements)

    def repeated(self, at_least: int = 2) -> dict[str, int]:
        """Shapes that ran `at_least` times: the fingerprint of an N+1."""
        return {shape: n for shape, n in self.shapes().most_common() if n >= at_least}

    def frame(self) -> pd.DataFrame:
        """The statements as a table (sql, params, ms)."""
        import pandas as pd

        return pd.DataFrame(
            {
                "sql": [re.sub(r"\s+", " ", s.sql).strip() for s in self.statements],
                "params": [s.params for s in self.statements],
                "ms": [s.duration_s * 1000 for s in self.statements],
            }
        )

    def clear(self) -> None:
        self.statements.clear()

    def __repr__(self) -> str:
        return f"QueryRecorder({self.count} statements, {self.total_s * 1000:.2f} ms)"


@contextmanager
def record(engine: Engine) -> Iterator[QueryRecorder]:
    """Record every statement run on `engine` inside the block.

    >>> with record(engine) as rec:
    ...     session.scalars(select(Customer).limit(5)).all()
    >>> rec.count
    1
    """
    recorder = QueryRecorder()
    started: list[float] = []

    def before(conn: Connection, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        started.append(time.perf_counter())

    def after(conn: Connection, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        duration = time.perf_counter() - started.pop() if started else 0.0
        recorder.statements.append(Statement(statement, params, duration, many))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield recorder
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


def rows_fetched(engine: Engine, recorder: QueryRecorder) -> int:
    """How many rows the recorded SELECTs sent back: each is run again and its rows counted."""
    total = 0
    with engine.connect() as conn:
        for statement in recorder.statements:
            if statement.sql.lstrip().upper().startswith(("SELECT", "WITH")) and not statement.executemany:
                total += len(conn.exec_driver_sql(statement.sql, statement.params).all())
    return total


# ---------------------------------------------------------------- EXPLAIN
@dataclass(frozen=True)
class Plan:
    """A query plan as text lines, with the questions lessons ask of it."""

    backend: str
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def scans(self, table: str | None = None) -> bool:
        """A full read of a table (SQLite 'SCAN t', PostgreSQL 'Seq Scan on t')."""
        pattern = r"\bSCAN (TABLE )?{t}\b|Seq Scan on {t}\b"
        t = re.escape(table) if table else r"\w+"
        hits = [ln for ln in self.lines if re.search(pattern.format(t=t), ln)]
        # SQLite's 'SCAN t USING COVERING INDEX' reads an index, not the table.
        return any("USING COVERING INDEX" not in ln and "USING INDEX" not in ln for ln in hits)

    def uses_index(self, index: str | None = None) -> bool:
        """An index lookup or index-only read (optionally of a named index)."""
        name = re.escape(index) if index else r"\w+"
        pattern = (
            rf"USING (COVERING )?INDEX {name}\b"  # SQLite
            rf"|Index (Only )?Scan (Backward )?using {name}\b|Bitmap Index Scan on {name}\b"  # PostgreSQL
        )
        return any(re.search(pattern, ln) for ln in self.lines)

    def searches(self, column: str) -> bool:
        """An index is used to look rows up by `column` (not merely read through in order)."""
        col = re.escape(column)
        return any(
            re.search(rf"^\s*SEARCH .*\(.*\b{col}\s*[=<>]", ln)  # SQLite: SEARCH t USING INDEX ix (col=?)
            or re.search(rf"Index Cond: .*\b{col}\b", ln)  # PostgreSQL
            for ln in self.lines
        )

    def covering(self) -> bool:
        """Answered from an index alone, never touching the table."""
        return any(re.search(r"USING COVERING INDEX|Index Only Scan", ln) for ln in self.lines)

    def temp_sort(self) -> bool:
        """A separate sort step (SQLite 'USE TEMP B-TREE FOR ORDER BY', PostgreSQL 'Sort')."""
        return any(
            re.search(r"TEMP B-TREE FOR ORDER BY|^\s*(->\s*)?(Incremental )?Sort\b", ln) for ln in self.lines
        )

    def _repr_html_(self) -> str:
        from html import escape

        return f"<pre>{escape(self.text)}</pre>"

    def __str__(self) -> str:
        return self.text


def explain(bind: Engine | Connection, statement: ClauseElement | str, *, analyze: bool = False) -> Plan:
    """EXPLAIN a statement: SQLite's EXPLAIN QUERY PLAN, PostgreSQL's EXPLAIN (ANALYZE if asked)."""
    backend = bind.dialect.name
    compiled: Any = (
        statement
        if isinstance(statement, str)
        else statement.compile(dialect=bind.dialect, compile_kwargs={"render_postcompile": True})
    )
    sql, params = (statement, {}) if isinstance(statement, str) else (str(compiled), compiled.params)
    if backend == "sqlite":
        prefix = "EXPLAIN QUERY PLAN "
    elif backend == "postgresql":
        prefix = "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " if analyze else "EXPLAIN (COSTS OFF) "
    else:
        prefix = "EXPLAIN "

    def run(conn: Connection) -> list[Any]:
        return list(conn.exec_driver_sql(prefix + sql, _driver_params(compiled, params)))

    if isinstance(bind, Connection):
        rows = run(bind)
    else:
        with bind.connect() as conn:
            rows = run(conn)
    return plan_from_rows(backend, rows)


def plan_from_rows(backend: str, rows: Sequence[Any]) -> Plan:
    """The Plan of the rows an EXPLAIN returned: SQLite's (id, parent, notused, detail), indented by depth as the
    sqlite3 shell does; elsewhere one line of text per row."""
    if backend == "sqlite":
        depth: dict[int, int] = {0: 0}
        lines = []
        for node_id, parent, _, detail in rows:
            depth[node_id] = depth.get(parent, 0) + 1
            lines.append("  " * (depth[node_id] - 1) + str(detail))
        return Plan(backend, tuple(lines))
    return Plan(backend, tuple(str(r[0]) for r in rows))


def _driver_params(compiled: Any, params: dict[str, Any]) -> Any:
    """Parameters in the driver's own style (positional for SQLite's qmark, a dict for psycopg)."""
    if isinstance(compiled, str) or not params:
        return ()
    positions = getattr(compiled, "positiontup", None)
    if positions:
        return tuple(params[name] for name in positions)
    return params


def analyze(bind: Engine) -> None:
    """Refresh the planner's statistics (SQLite fills sqlite_stat1)."""
    with bind.begin() as conn:
        conn.execute(text("ANALYZE"))


def value_bytes(value: Any) -> int:
    """The bytes one value takes, as lesson 02 counts them: text as its UTF-8 length, NULL as 0, else 8.

    Numbers, decimals, dates and times count as a fixed 8 bytes (their usual binary size): the count is meant
    to show what wide text costs, not to reproduce a driver's wire format.
    """
    if value is None:
        return 0
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    if isinstance(value, bytes | bytearray | memoryview):
        return len(value)
    return 8


def bytes_fetched(engine: Engine, recorder: QueryRecorder) -> int:
    """The bytes the recorded SELECTs sent back (see `value_bytes`): each is run again and its values summed."""
    total = 0
    with engine.connect() as conn:
        for statement in recorder.statements:
            if statement.sql.lstrip().upper().startswith(("SELECT", "WITH")) and not statement.executemany:
                for row in conn.exec_driver_sql(statement.sql, statement.params):
                    total += sum(value_bytes(value) for value in row)
    return total

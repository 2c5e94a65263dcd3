"""Query plans: EXPLAIN a statement on SQLite or PostgreSQL and ask the plan the questions lessons ask.

* `explain(bind, statement)` runs SQLite's `EXPLAIN QUERY PLAN` or PostgreSQL's `EXPLAIN` (ANALYZE if asked);
  `explain_sql(bind, sql, params)` does the same for SQL text already in the driver's form;
* `Plan` holds the plan's lines: `scans(table)`, `uses_index(name)`, `searches(column)`, `covering()`,
  `temp_sort()`;
* `_plan_from_rows` turns the rows an EXPLAIN returned into a `Plan`; `analyze` refreshes the statistics.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.sql import ClauseElement

__all__ = ["Plan", "analyze", "explain", "explain_sql"]


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

        return f"<pre>{escape(self.text)}</pre>"

    def __str__(self) -> str:
        return self.text


def explain(bind: Engine | Connection, statement: ClauseElement | str, *, analyze: bool = False) -> Plan:
    """EXPLAIN a statement: SQLite's EXPLAIN QUERY PLAN, PostgreSQL's EXPLAIN (ANALYZE if asked)."""
    compiled: Any = (
        statement
        if isinstance(statement, str)
        else statement.compile(dialect=bind.dialect, compile_kwargs={"render_postcompile": True})
    )
    sql, params = (statement, {}) if isinstance(statement, str) else (str(compiled), compiled.params)
    return explain_sql(bind, sql, _driver_params(compiled, params), analyze="TIMING OFF" if analyze else None)


def explain_sql(bind: Engine | Connection, sql: str, params: Any = (), *, analyze: str | None = None) -> Plan:
    """EXPLAIN SQL text run with the driver's `params`: SQLite's EXPLAIN QUERY PLAN, PostgreSQL's EXPLAIN without
    costs, or its EXPLAIN ANALYZE (which runs the statement) with the options `analyze` names ("TIMING OFF")."""
    backend = bind.dialect.name
    if backend == "sqlite":
        prefix = "EXPLAIN QUERY PLAN "
    elif backend == "postgresql":
        prefix = f"EXPLAIN (ANALYZE, COSTS OFF, {analyze}) " if analyze else "EXPLAIN (COSTS OFF) "
    else:
        prefix = "EXPLAIN "
    if isinstance(bind, Connection):
        rows = list(bind.exec_driver_sql(prefix + sql, params))
    else:
        with bind.connect() as conn:  # closed without a commit: whatever ANALYZE ran is rolled back
            rows = list(conn.exec_driver_sql(prefix + sql, params))
    return _plan_from_rows(backend, rows)


def _plan_from_rows(backend: str, rows: Sequence[Any]) -> Plan:
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

"""A statement budget for tests: fail when a block of code runs more SQL statements than it may.

This module is self-contained (SQLAlchemy only; pytest for the fixture): copy it into your project. That is why
it keeps its own cursor listener and statement shapes instead of the course's (`helpers.db.listen_statements`,
`helpers.measure.recorder.statement_shape`): a copy must not import the course.

    from query_budget import assert_max_queries

    def test_order_list(client):
        with assert_max_queries(3):
            response = client.get("/orders")
        assert response.status_code == 200

With pytest, the same as a fixture: import it into your conftest.py (`from query_budget import query_budget`)
and ask for it by name::

    def test_order_list(client, query_budget):
        with query_budget(3):
            client.get("/orders")

Over budget, the test fails with the statements that ran, grouped by shape (the SQL with its values blanked
out), each with the line of your code that issued it: a shape that ran once per row is an N+1, and the
message says where it came from. Statements are counted on every engine unless you pass `engine=`.
"""

from __future__ import annotations

import re
import sys
import sysconfig
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from sqlalchemy import Connection, Engine, event

__all__ = ["Budget", "QueryBudgetExceeded", "assert_max_queries", "compact_sql", "statement_shape"]

# Frames in these folders are library code (the standard library, installed packages): the line reported for
# a statement is the innermost frame outside them, and outside this file.
_PATHS = sysconfig.get_paths()
_LIBRARIES = tuple(
    dict.fromkeys(
        str(path) + "/"
        for key in ("stdlib", "platstdlib", "purelib", "platlib")
        for path in (Path(_PATHS[key]), Path(_PATHS[key]).resolve())
    )
)
_THIS_FILE = __file__
_SHOWN = 10  # statements listed in a failure message


def statement_shape(sql: str) -> str:
    """The SQL on one line with literals, parameters and IN-lists blanked out, so repeats group together."""
    shape = re.sub(r"\s+", " ", sql).strip()
    shape = re.sub(r"'(?:[^']|'')*'", "?", shape)
    shape = re.sub(r"::\w+(\[\])?", "", shape)  # PostgreSQL casts
    shape = re.sub(r"\b\d+(\.\d+)?\b", "?", shape)
    shape = re.sub(r"%\(\w+\)s|:\w+|\$\d+|\?", "?", shape)
    return re.sub(r"\(\s*\?(?:\s*,\s*\?)*\s*\)", "(?…)", shape)


def _issuing_line() -> str:
    """'file.py:42' of the innermost frame that is neither library code nor this module."""
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename != _THIS_FILE and not filename.startswith(_LIBRARIES) and not filename.startswith("<frozen"):
            return f"{Path(filename).name}:{frame.f_lineno}"
        frame = frame.f_back
    return "?"


@dataclass
class Budget:
    """The statements seen inside an `assert_max_queries` block, with the line that issued each."""

    limit: int
    statements: list[tuple[str, str]] = field(default_factory=list)  # (sql, issued at)

    @property
    def count(self) -> int:
        return len(self.statements)

    def report(self) -> str:
        """The failure message: the count against the budget, repeated shapes first, then the statements."""
        lines = [f"{self.count} statements ran, the budget is {self.limit}."]
        shapes: dict[str, list[str]] = {}
        for sql, where in self.statements:
            shapes.setdefault(statement_shape(sql), []).append(where)
        repeated = sorted(((len(w), s, w) for s, w in shapes.items() if len(w) > 1), reverse=True)
        if repeated:
            lines.append("Repeated statement shapes (an N+1 runs one per row):")
            for times, shape, wheres in repeated:
                lines.append(f"  {times} × {compact_sql(shape)}  [issued at {', '.join(dict.fromkeys(wheres))}]")
        lines.append("Statements:")
        for i, (sql, where) in enumerate(self.statements[:_SHOWN], 1):
            lines.append(f"  {i}. {compact_sql(statement_shape(sql))}  [{where}]")
        if self.count > _SHOWN:
            lines.append(f"  … and {self.count - _SHOWN} more")
        return "\n".join(lines)


class QueryBudgetExceeded(AssertionError):
    """More statements ran than the budget allows; `budget` holds them."""

    def __init__(self, budget: Budget) -> None:
        super().__init__(budget.report())
        self.budget = budget


def compact_sql(sql: str, width: int = 110) -> str:
    """SQL on one line within `width` characters; a long column list gives way first, so FROM and WHERE stay."""
    text = re.sub(r"\s+", " ", sql).strip()
    if len(text) > width:
        match = re.match(r"(SELECT (?:DISTINCT )?)(.+?)( FROM .*)$", text)
        if match and ", " in match[2]:
            text = f"{match[1]}{match[2].split(', ')[0]}, …{match[3]}"
    return text if len(text) <= width else text[: width - 1] + "…"


@contextmanager
def assert_max_queries(limit: int, *, engine: Engine | None = None) -> Iterator[Budget]:
    """Fail with QueryBudgetExceeded if the block runs more than `limit` statements (on `engine`, or any)."""
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise ValueError(f"the budget is a number of statements (0 or more), not {limit!r}")
    budget = Budget(limit)
    target: Any = engine if engine is not None else Engine  # the class: every engine

    def count(conn: Connection, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        budget.statements.append((statement, _issuing_line()))

    event.listen(target, "after_cursor_execute", count)
    try:
        yield budget
    finally:
        event.remove(target, "after_cursor_execute", count)
    if budget.count > limit:
        raise QueryBudgetExceeded(budget)


try:
    import pytest
except ImportError:  # pragma: no cover - the context manager works without pytest
    pass
else:

    @pytest.fixture
    def query_budget() -> Callable[..., Any]:
        """`with query_budget(n): ...` fails the test if the block runs more than n statements."""
        return assert_max_queries

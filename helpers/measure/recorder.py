"""See every statement SQLAlchemy sends: a recorder on the course's statement listener, shapes, rows and bytes;
and the other events lessons count (commits, ORM objects built)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, event

from ..db import Executed, statements_heard

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "EventCount",
    "QueryRecorder",
    "Statement",
    "bytes_fetched",
    "count_commits",
    "objects_built",
    "record",
    "rows_fetched",
    "statement_shape",
    "value_bytes",
]


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
        import pandas as pd  # deferred: pandas is heavy; recording and storing run without it

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

    def heard(executed: Executed, caller: Any) -> None:
        recorder.statements.append(
            Statement(executed.sql, executed.params, executed.duration_s, executed.executemany)
        )

    with statements_heard(engine, heard):
        yield recorder


def rows_fetched(engine: Engine, recorder: QueryRecorder) -> int:
    """How many rows the recorded SELECTs sent back: each is run again and its rows counted."""
    total = 0
    with engine.connect() as conn:
        for statement in recorder.statements:
            if statement.sql.lstrip().upper().startswith(("SELECT", "WITH")) and not statement.executemany:
                total += len(conn.exec_driver_sql(statement.sql, statement.params).all())
    return total


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


# ---------------------------------------------------------------------- counting
@dataclass
class EventCount:
    """How many times something happened inside a `with` block."""

    count: int = 0


@contextmanager
def count_commits(engine: Engine) -> Iterator[EventCount]:
    """Count the commits SQLAlchemy sends on `engine` inside the block (sessions' and connections' alike)."""
    counter = EventCount()

    def commit(conn: Any) -> None:
        counter.count += 1

    event.listen(engine, "commit", commit)
    try:
        yield counter
    finally:
        event.remove(engine, "commit", commit)


@contextmanager
def objects_built(*models: type[Any]) -> Iterator[EventCount]:
    """Count ORM objects of `models` constructed (`Model(...)`) or loaded from rows inside the block."""
    counter = EventCount()

    def built(*args: Any) -> None:
        counter.count += 1

    hooks = [(model, name) for model in models for name in ("init", "load")]
    for model, name in hooks:
        event.listen(model, name, built)
    try:
        yield counter
    finally:
        for model, name in hooks:
            event.remove(model, name, built)

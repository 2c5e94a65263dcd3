"""Measuring code that writes: a reset before every call, the rows written read back, commits counted.

Timing a write twice from the same starting point needs the database put back in between, and that work
must not land in the timing. `compare_writes` is `Course.compare` for writes:

    inserted = compare_writes(
        lab,
        {"add + commit per row": per_row, "ORM bulk insert": bulk},
        reset=forget_new_orders,  # untimed, before every call
        read=new_orders,  # untimed, after the first call of each variant: what it wrote
        title="insert 500 orders",
    )
    inserted.show()  # median, spread, statements, commits, rows written

Each variant's writes are read back with `read` and must equal the first variant's: the same rows, whatever
the route they took. Statements and commits are counted on the first call of each variant. A variant that
goes around SQLAlchemy (the raw driver, COPY) sends nothing SQLAlchemy can see: its counts show as "–".

Also here: `merged` (comparisons measured apart, shown as one) and the lesson's plumbing around its races:
`indexed_copy` (the private copy it writes on), `InsertedRows` and `SavedRows` (what a variant wrote, read back,
and the copy put back between calls), `durability_sweep` (one race per commit-durability setting),
`round_trip_sweep` with `SimulatedLatency` (a clearly labelled stand-in for network round trips on SQLite), and
the sentences summing up the round-trip and chunk-size charts.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import Engine, Row, Table, delete, event, insert, select, text, update
from sqlalchemy.orm import Session

from ..db import make_engine
from ..errors import CourseError
from ..measure import results
from ..measure.harness import Comparison, check_same, normalize, run_variants, scaling
from ..measure.predictions import Predicted, as_prediction
from ..servers.latency import Latency

if TYPE_CHECKING:
    from ..course import Course

__all__ = [
    "InsertedRows",
    "SavedRows",
    "SimulatedLatency",
    "WriteComparison",
    "chunk_sizes_said",
    "compare_writes",
    "driver_floor",
    "durability_sweep",
    "in_session",
    "indexed_copy",
    "merged",
    "round_trip_sweep",
    "round_trips_said",
]


# ---------------------------------------------------------------------- latency on SQLite
class SimulatedLatency(Latency):
    """A simulation, not a network: sleep `delay_ms` before every statement and every commit on `engine`.

    SQLite runs inside the process, so it has no round trips to delay. This stands in for what a database
    across a network charges per statement and per commit; PostgreSQL's `LatencyProxy` delays real traffic.
    Like the proxy, `delay_ms` can be changed while it runs; `close()` removes it.
    """

    def __init__(self, engine: Engine, delay_ms: float = 0.0) -> None:
        self.engine = engine
        self.delay_ms = delay_ms
        self._started = False

    def _wait(self, *args: Any) -> None:
        if self.delay_ms > 0:
            time.sleep(self.delay_ms / 1000)

    def start(self) -> SimulatedLatency:
        if not self._started:
            event.listen(self.engine, "before_cursor_execute", self._wait)
            event.listen(self.engine, "commit", self._wait)
            self._started = True
        return self

    def close(self) -> None:
        if self._started:
            event.remove(self.engine, "before_cursor_execute", self._wait)
            event.remove(self.engine, "commit", self._wait)
            self._started = False


# ---------------------------------------------------------------------- comparing writes
@dataclass
class WriteComparison(Comparison):
    """A Comparison of writes: also the commits each variant sent (None: not seen by SQLAlchemy)."""

    @property
    def commits(self) -> dict[str, int | None]:
        return {m.variant: m.commits for m in self.measurements}

    @property
    def frame(self) -> pd.DataFrame:
        """The comparison's table with a commits column after statements; `rows` are the rows written."""
        frame = super().frame
        commits = pd.array([self.commits.get(str(v)) for v in frame.index], dtype="Int64")  # None shows as –
        frame.insert(list(frame.columns).index("statements") + 1, "commits", commits)
        return frame


def merged(comparisons: Sequence[WriteComparison], title: str) -> WriteComparison:
    """Several comparisons measured apart (under different settings) as one table and chart, not stored again."""
    if not comparisons:
        raise CourseError("merged() needs at least one comparison.")
    first = comparisons[0]
    return WriteComparison(
        lesson=first.lesson,
        backend=first.backend,
        size=first.size,
        measurements=[m for c in comparisons for m in c.measurements],
        title=title,
    )


def compare_writes(
    course: Course,
    variants: Mapping[str, Callable[[], Any]],
    *,
    read: Callable[[], Any],
    reset: Callable[[], Any] | None = None,
    title: str,
    engine: Engine | Sequence[Engine] | None = None,
    repeat: int = 5,
    warmup: int = 1,
    budget_s: float | None = 30.0,
    min_repeat: int = 3,
    check: bool | Callable[[Any], Any] = True,
    store: bool = True,
    naive: str | None = None,
    best: str | None = None,
    floor: str | None = None,
    prediction: Predicted = None,
    claim: str | None = None,
) -> WriteComparison:
    """Time variants that write, side by side: `reset()` before every call, untimed; the first is the baseline.

    Each variant is called `warmup + repeat` times (fewer rounds once `budget_s` is spent, never fewer than
    `min_repeat`), rounds interleaved, by the harness's one timing loop (`run_variants` with its write hooks).
    Its first call, an untimed warm-up, is the one whose statements and commits are counted and whose writes
    `read()` returns; `check` compares those with the first variant's. Statements and commits are counted on
    `engine` (default: the course's), or on each of several engines when variants write through different ones
    (the same file with other settings). `naive`, `best`, `floor`, `prediction` and `claim` are `compare`'s: the
    roles the course-wide summary reads, the learner's prediction, the blog's claim the race is evidence for.
    """
    if not variants:
        raise CourseError("compare_writes() needs at least one variant: a dict of {label: function}.")
    roles = {name: role for role, name in (("naive", naive), ("best", best), ("floor", floor)) if name}
    if unknown := [name for name in roles if name not in variants]:
        raise CourseError(f"No variant called {unknown[0]!r} in this race: use one of {', '.join(variants)}.")
    if claim is not None and best is None:
        raise CourseError(f"A race that tests a claim ({claim!r}) names its best variant: best=...")
    if repeat < 1 or warmup < 1:
        raise CourseError("compare_writes needs repeat >= 1 and warmup >= 1: the warm-up is the counted call.")
    engines = [course.engine] if engine is None else [engine] if isinstance(engine, Engine) else list(engine)
    measurements = run_variants(
        variants,
        engine=engines,
        repeat=repeat,
        warmup=warmup,
        budget_s=budget_s,
        min_repeat=min_repeat,
        reset=reset,
        read=read,
        commits=True,
    )
    if check:
        check_same(measurements, check if callable(check) else normalize)
    comparison = WriteComparison(
        lesson=course.lesson,
        backend=engines[0].dialect.name,
        size=course.size,
        measurements=measurements,
        title=title,
        roles=roles,
        prediction=as_prediction(prediction),
        claim=claim,
    )
    if store:
        results.store(comparison)
    return comparison


def in_session(engine: Engine, write: Callable[..., Any], *args: Any) -> Callable[[], Any]:
    """`write(session, *args)` as a variant to time: each call on a new Session of `engine`, closed after."""

    def call() -> Any:
        with Session(engine) as session:
            return write(session, *args)

    return call


def driver_floor(engine: Engine, model: Any, rows: Sequence[Mapping[str, Any]]) -> dict[str, Callable[[], None]]:
    """The floor for inserting `rows` into `model`'s table: the raw driver's `executemany`, and on PostgreSQL
    `COPY … FROM STDIN` (psycopg's `cursor.copy`), the server's bulk-load protocol.

    No SQLAlchemy in the timed call: the SQL written by hand, the values converted as SQLAlchemy's types store
    them (sqlite3 knows text and numbers: dates and money become text), on a DBAPI connection lent by the pool.
    """
    table, columns, backend = _table(model).name, list(rows[0]), engine.dialect.name
    mark = "?" if backend == "sqlite" else "%s"
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"

    def as_stored(value: Any) -> Any:
        if backend != "sqlite":
            return value  # psycopg adapts datetime and Decimal itself
        if isinstance(value, datetime):
            return value.strftime("%Y-%m-%d %H:%M:%S.%f")
        return str(value) if isinstance(value, Decimal) else value

    def executemany() -> None:
        connection = engine.raw_connection()  # the driver's own connection, lent by SQLAlchemy's pool
        try:
            connection.cursor().executemany(sql, [tuple(as_stored(v) for v in row.values()) for row in rows])
            connection.commit()
        finally:
            connection.close()  # back to the pool

    def copy() -> None:
        connection = engine.raw_connection()
        try:
            cursor: Any = connection.cursor()  # psycopg's: a context manager, with copy()
            with cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as out:
                for row in rows:
                    out.write_row(tuple(row.values()))
            connection.commit()
        finally:
            connection.close()

    floors = {"raw driver executemany": executemany}
    if backend == "postgresql":
        floors["COPY (PostgreSQL)"] = copy
    return floors


# ---------------------------------------------------------------------- the lesson's copy, and putting it back
def indexed_copy(course: Course, name: str) -> Course:
    """A private copy of the dataset to write on, with two of lesson 04's indexes.

    Putting the copy back between runs (deleting the orders a run inserted) must not scan order_lines once per
    order, and the lesson's date windows are index ranges.
    """
    lab = course.private_copy(name)
    with lab.engine.begin() as conn:
        conn.execute(text("CREATE INDEX ix_order_lines_order_id ON order_lines (order_id)"))
        conn.execute(text("CREATE INDEX ix_orders_created_at ON orders (created_at)"))
    return lab


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


class InsertedRows:
    """The rows variants insert into a model's table: every id above `above_id`.

    `read()` returns them (the `columns` given, in id order) for `compare_writes` to compare; `forget()` deletes
    them, to put the copy back before the next call.
    """

    def __init__(self, engine: Engine, model: Any, *, above_id: int, columns: Sequence[str]) -> None:
        self.engine, self.table, self.above_id, self.columns = engine, _table(model), above_id, list(columns)

    def read(self) -> list[Row[Any]]:
        written = select(*(self.table.c[name] for name in self.columns)).where(self.table.c.id > self.above_id)
        with self.engine.connect() as conn:
            return list(conn.execute(written.order_by(self.table.c.id)).all())

    def forget(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(self.table).where(self.table.c.id > self.above_id))


class SavedRows:
    """The rows of a model's table that `where` picks, saved whole before variants update or delete them.

    `read()` returns their ids and `columns` as they are now (in id order); `gone()` the ids no longer there;
    `restore()` puts every saved row back as it was (deleted rows inserted again, updated columns written back
    by primary key), to start each call from the same rows.
    """

    def __init__(self, engine: Engine, model: Any, *where: Any, columns: Sequence[str] = ()) -> None:
        self.engine, self.model, self.table, self.columns = engine, model, _table(model), list(columns)
        with engine.connect() as conn:
            rows = conn.execute(select(self.table).where(*where).order_by(self.table.c.id))
            self.saved = [row._asdict() for row in rows]
        self.ids = [row["id"] for row in self.saved]

    def _present(self, conn: Any) -> set[int]:
        return set(conn.scalars(select(self.table.c.id).where(self.table.c.id.in_(self.ids))))

    def read(self) -> list[Row[Any]]:
        query = select(self.table.c.id, *(self.table.c[name] for name in self.columns))
        with self.engine.connect() as conn:
            return list(conn.execute(query.where(self.table.c.id.in_(self.ids)).order_by(self.table.c.id)).all())

    def gone(self) -> list[int]:
        with self.engine.connect() as conn:
            present = self._present(conn)
        return [row_id for row_id in self.ids if row_id not in present]

    def restore(self) -> None:
        with Session(self.engine) as session:
            present = self._present(session)
            missing = [row for row in self.saved if row["id"] not in present]
            if missing:
                session.execute(insert(self.table), missing)
            kept = [{"id": row["id"], **{name: row[name] for name in self.columns}} for row in self.saved]
            if self.columns and present:
                session.execute(update(self.model), [row for row in kept if row["id"] in present])
            session.commit()


# ---------------------------------------------------------------------- commits and the disk
def durability_sweep(
    lab: Course,
    variant_on: Callable[[Engine], Callable[[], Any]],
    *,
    reset: Callable[[], Any],
    read: Callable[[], Any],
    title: str,
) -> list[WriteComparison]:
    """The same writes under each commit-durability setting, each on an engine of its own.

    SQLite: `PRAGMA journal_mode` WAL, then DELETE (it is stored in the file: set while no other connection is
    open, and WAL again at the end), each with `PRAGMA synchronous` FULL, NORMAL and OFF (per connection: set in a
    `connect` event). PostgreSQL: `synchronous_commit` on and off (a connection option). One comparison per
    journal mode (or one on PostgreSQL); `variant_on(engine)` returns the code to time on that engine.
    """
    if lab.backend == "sqlite":
        sweep = []
        for mode in ("wal", "delete"):
            _set_journal_mode(lab, mode)
            engines = {
                f"{mode.upper()} + {level}": _sqlite_engine(lab, level) for level in ("FULL", "NORMAL", "OFF")
            }
            sweep.append(_race_engines(lab, engines, variant_on, reset, read, f"{title}, journal_mode={mode}"))
        _set_journal_mode(lab, "wal")  # back to the course's setting
        return sweep
    engines = {
        "synchronous_commit = on": make_engine(lab.url),
        "synchronous_commit = off": make_engine(lab.url, connect_args={"options": "-c synchronous_commit=off"}),
    }
    return [_race_engines(lab, engines, variant_on, reset, read, f"{title}, synchronous_commit on and off")]


def _set_journal_mode(lab: Course, mode: str) -> None:
    """journal_mode is stored in the database file: change it while no other connection is open."""
    lab.engine.dispose()
    with closing(sqlite3.connect(str(lab.url.database))) as conn:
        now = conn.execute(f"PRAGMA journal_mode = {mode}").fetchone()[0]
    if now != mode:
        raise CourseError(f"SQLite kept journal_mode={now} instead of {mode}: is another connection open?")


def _sqlite_engine(lab: Course, synchronous: str) -> Engine:
    engine = make_engine(lab.url)

    @event.listens_for(engine, "connect")
    def set_synchronous(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.execute(f"PRAGMA synchronous = {synchronous}")  # per connection, not stored

    return engine


def _race_engines(
    lab: Course,
    engines: Mapping[str, Engine],
    variant_on: Callable[[Engine], Callable[[], Any]],
    reset: Callable[[], Any],
    read: Callable[[], Any],
    title: str,
) -> WriteComparison:
    try:
        return compare_writes(
            lab,
            {name: variant_on(engine) for name, engine in engines.items()},
            reset=reset,
            read=read,
            engine=list(engines.values()),
            title=title,
        )
    finally:
        for engine in engines.values():
            engine.dispose()


# ---------------------------------------------------------------------- round trips
def round_trip_sweep(
    lab: Course,
    variants_on: Callable[[Engine], Mapping[str, Callable[[], Any]]],
    delays_ms: Sequence[int],
    *,
    repeat: int = 3,
) -> tuple[pd.DataFrame, str]:
    """Time `variants_on(engine)` at each delay per round trip; returns `scaling`'s table and the x-axis label.

    PostgreSQL: the lesson's connections pass through a proxy on loopback that delays real traffic. SQLite has
    no round trips: `SimulatedLatency` sleeps before every statement and commit instead (labelled as such).
    """
    latency: Latency
    if lab.backend == "postgresql":
        target, latency = lab.with_latency(0)
        kind = "added delay per round trip (ms)"
    else:
        target, latency = lab, SimulatedLatency(lab.engine).start()
        kind = "simulated delay per statement and commit (ms)"

    def delayed(delay_ms: float, variant: Callable[[], Any]) -> Callable[[], Any]:
        def call() -> Any:
            latency.delay_ms = delay_ms
            return variant()

        return call

    def at(delay_ms: int) -> dict[str, Callable[[], Any]]:
        return {name: delayed(delay_ms, fn) for name, fn in variants_on(target.engine).items()}

    try:
        return scaling(at, list(delays_ms), engine=target.engine, repeat=repeat), kind
    finally:
        latency.close()
        if target is not lab:
            target.engine.dispose()


def round_trips_said(network: pd.DataFrame, delay_ms: int) -> str:
    """Per variant: its time without delay and at `delay_ms`, and the round trips the difference stands for."""
    by_delay = network.pivot(index="n", columns="variant", values="median_ms")
    sent = network[network["n"] == 0].set_index("variant")["statements"]
    lines = []
    for variant in by_delay.columns:
        without, delayed = by_delay.loc[0, variant], by_delay.loc[delay_ms, variant]
        added = delayed - without
        lines.append(
            f"{variant}: {without:.1f} ms with no delay, {delayed:.0f} ms at {delay_ms:g} ms: "
            f"{added:.0f} ms more, the cost of about {added / delay_ms:.0f} round trips "
            f"({sent[variant]:.0f} statements)."
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------- chunk sizes
def chunk_sizes_said(chunks: pd.DataFrame, rows: int) -> str:
    """The chunk-size race in two sentences: both ends of each line, and what committing each chunk added."""
    by_size = chunks.pivot(index="n", columns="variant", values="median_ms")
    statements = chunks.pivot(index="n", columns="variant", values="statements")["one commit at the end"]
    sizes = list(by_size.index)
    smallest, largest = sizes[0], sizes[-1]
    each, once = by_size["a commit per chunk"], by_size["one commit at the end"]
    extra = each - once
    more = {size: -(-rows // size) - 1 for size in sizes if -(-rows // size) > 1}  # commits beyond the last one
    added: Iterable[str] = (
        f"{extra[size]:,.1f} ms for {n} more commit{'s' if n > 1 else ''} (chunks of {size})"
        for size, n in more.items()
    )
    return (
        f"A commit per chunk: {each[smallest]:,.0f} ms in chunks of {smallest}, {each[largest]:.1f} ms in chunks "
        f"of {largest}. One commit at the end: {once[smallest]:.1f} ms ({statements[smallest]:.0f} statements) "
        f"against {once[largest]:.1f} ms ({statements[largest]:.0f}).\n"
        f"What committing each chunk added: {', '.join(added)}."
    )

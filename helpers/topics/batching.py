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

Also here: `merged` (comparisons measured apart, shown as one), `count_commits`, `objects_built` (ORM objects
constructed or loaded: what bulk statements skip) and `SimulatedLatency`, a clearly labelled stand-in for
network round trips on SQLite.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import Engine, event

from ..errors import CourseError
from ..measure import results
from ..measure.harness import Comparison, check_same, normalize, run_variants

if TYPE_CHECKING:
    from types import TracebackType

    from ..course import Course


# ---------------------------------------------------------------------- latency on SQLite
class SimulatedLatency:
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

    def __enter__(self) -> SimulatedLatency:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


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
) -> WriteComparison:
    """Time variants that write, side by side: `reset()` before every call, untimed; the first is the baseline.

    Each variant is called `warmup + repeat` times (fewer rounds once `budget_s` is spent, never fewer than
    `min_repeat`), rounds interleaved, by the harness's one timing loop (`run_variants` with its write hooks).
    Its first call, an untimed warm-up, is the one whose statements and commits are counted and whose writes
    `read()` returns; `check` compares those with the first variant's. Statements and commits are counted on
    `engine` (default: the course's), or on each of several engines when variants write through different ones
    (the same file with other settings).
    """
    if not variants:
        raise CourseError("compare_writes() needs at least one variant: a dict of {label: function}.")
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
    )
    if store:
        results.store(comparison)
    return comparison

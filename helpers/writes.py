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

import gc
import time
from collections.abc import Callable, Iterator, Mapping, Sequence, Sized
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, event

from .errors import CourseError
from .harness import Comparison, Measurement, check_same, normalize
from .recorder import record

if TYPE_CHECKING:
    from types import TracebackType

    import pandas as pd

    from .course import Course


# ---------------------------------------------------------------------- counting
@dataclass
class Counter:
    """How many times something happened inside a `with` block."""

    count: int = 0


@contextmanager
def count_commits(engine: Engine) -> Iterator[Counter]:
    """Count the commits SQLAlchemy sends on `engine` inside the block (sessions' and connections' alike)."""
    counter = Counter()

    def commit(conn: Any) -> None:
        counter.count += 1

    event.listen(engine, "commit", commit)
    try:
        yield counter
    finally:
        event.remove(engine, "commit", commit)


@contextmanager
def objects_built(*models: type[Any]) -> Iterator[Counter]:
    """Count ORM objects of `models` constructed (`Model(...)`) or loaded from rows inside the block."""
    counter = Counter()

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

    commits: dict[str, int | None] = field(default_factory=dict)

    @property
    def frame(self) -> pd.DataFrame:
        """The comparison's table with a commits column after statements; `rows` are the rows written."""
        import pandas as pd

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
        commits={name: n for c in comparisons for name, n in c.commits.items()},
    )


def _rows(result: Any) -> int | None:
    return len(result) if isinstance(result, Sized) and not isinstance(result, str | bytes) else None


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
    `min_repeat`), rounds interleaved as in `run_variants`. Its first call, an untimed warm-up, is the one
    whose statements and commits are counted and whose writes `read()` returns; `check` compares those
    with the first variant's. Statements and commits are counted on `engine` (default: the course's), or on
    each of several engines when variants write through different ones (the same file with other settings).
    """
    if not variants:
        raise CourseError("compare_writes() needs at least one variant: a dict of {label: function}.")
    if repeat < 1 or warmup < 1:
        raise CourseError("compare_writes needs repeat >= 1 and warmup >= 1: the warm-up is the counted call.")
    engines = [course.engine] if engine is None else [engine] if isinstance(engine, Engine) else list(engine)
    measurements: list[Measurement] = []
    commits: dict[str, int | None] = {}

    def fresh() -> None:
        if reset is not None:
            reset()
        gc.collect()  # untimed, as in run_variants: garbage of the last call is not charged to this one

    # As in run_variants: what is alive now is frozen out of the collector's sight, so each untimed
    # collection below walks only what the calls left behind.
    gc.collect()
    gc.freeze()
    try:
        for name, fn in variants.items():
            fresh()
            with ExitStack() as stack:
                recorders = [stack.enter_context(record(e)) for e in engines]
                counters = [stack.enter_context(count_commits(e)) for e in engines]
                fn()
            result = read()
            sent = sum(r.count for r in recorders)
            committed = sum(c.count for c in counters)
            seen = sent or committed  # a variant that writes through SQLAlchemy sends something
            measurements.append(Measurement(name, [], sent if seen else None, _rows(result), result))
            commits[name] = committed if seen else None
            for _ in range(warmup - 1):
                fresh()
                fn()
        started = time.perf_counter()
        for round_ in range(repeat):
            for m, fn in zip(measurements, variants.values(), strict=True):
                fresh()
                t0 = time.perf_counter()
                fn()
                m.times_s.append(time.perf_counter() - t0)
            if budget_s is not None and round_ + 1 >= min_repeat and time.perf_counter() - started > budget_s:
                break
    finally:
        gc.unfreeze()
    if reset is not None:
        reset()  # leave the database as the variants found it
    if check:
        check_same(measurements, check if callable(check) else normalize)
    comparison = WriteComparison(
        lesson=course.lesson,
        backend=engines[0].dialect.name,
        size=course.size,
        measurements=measurements,
        title=title,
        commits=commits,
    )
    if store:
        from . import results

        results.store(comparison)
    return comparison

"""The measuring harness: warm-up, repeats, medians and spread, variants side by side in one run.

The public surface, used by the lessons, the exercise checks and `make bench` alike:

* `run_variants` times a dict of {label: function} side by side and returns one `Measurement` each;
* `check_same` (with `normalize` and `first_difference`) says whether variants returned the same result;
* `Measurement.row()` is the one mapping from a measurement to a record, and `in_ms` the one conversion
  of its seconds into milliseconds for tables;
* `measure`, `compare` and `scaling` are the three ways lessons call all of the above.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence, Sized
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, Row, text
from sqlalchemy.exc import SQLAlchemyError

from ..config import settings
from ..errors import CourseError
from . import results
from .predictions import Outcome, Predicted, Prediction, as_prediction, outcome
from .recorder import count_commits, record
from .units import format_ms, in_ms

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Comparison",
    "Engines",
    "Measurement",
    "ResultMismatch",
    "Variants",
    "batch_size",
    "check_same",
    "compare",
    "first_difference",
    "measure",
    "merge_runs",
    "normalize",
    "run_variants",
    "samples_per_round",
    "scaling",
]

# Where statements are counted: one engine, or several when variants run on different databases
# (lesson 04 compares the shared dataset with an indexed copy of it).
Engines = Engine | Sequence[Engine]
Variants = Mapping[str, Callable[[], Any]]


def _engines(engine: Engines | None) -> list[Engine]:
    if engine is None:
        return []
    return [engine] if isinstance(engine, Engine) else list(engine)


class ResultMismatch(CourseError):
    """An optimized variant returned something other than the baseline did."""


@dataclass
class Measurement:
    """Timings of one variant plus the deterministic metrics of one call."""

    variant: str
    times_s: list[float]
    statements: int | None
    rows: int | None
    result: Any = field(default=None, repr=False)
    commits: int | None = None  # counted only when asked (writes); None: not counted, or not seen by SQLAlchemy
    batch: int = 1  # calls per sample: a sub-millisecond call is timed in batches, each time is still per call

    @property
    def runs(self) -> int:
        return len(self.times_s)

    @property
    def median_s(self) -> float:
        return statistics.median(self.times_s)

    def _quartiles(self) -> tuple[float, float]:
        if len(self.times_s) < 2:
            return self.times_s[0], self.times_s[0]
        q1, _, q3 = statistics.quantiles(self.times_s, n=4, method="inclusive")
        return q1, q3

    @property
    def q1_s(self) -> float:
        return self._quartiles()[0]

    @property
    def q3_s(self) -> float:
        return self._quartiles()[1]

    @property
    def spread_s(self) -> float:
        """Interquartile range: the middle half of the runs."""
        q1, q3 = self._quartiles()
        return q3 - q1

    def row(self) -> dict[str, Any]:
        """The measurement as one record, times in seconds: what the store, tables, charts and bench use."""
        return {
            "variant": self.variant,
            "median_s": self.median_s,
            "spread_s": self.spread_s,
            "q1_s": self.q1_s,
            "q3_s": self.q3_s,
            "min_s": min(self.times_s),
            "max_s": max(self.times_s),
            "runs": self.runs,
            "statements": self.statements,
            "rows": self.rows,
        }


def _rows_of(result: Any) -> int | None:
    if isinstance(result, Sized) and not isinstance(result, str | bytes):
        return len(result)
    return None


def normalize(result: Any) -> Any:
    """Make SQLAlchemy rows, tuples and lists comparable by value."""
    if isinstance(result, Row):  # a SQLAlchemy Row compares as the tuple of its values
        return tuple(normalize(v) for v in result)
    if isinstance(result, list):
        return [normalize(item) for item in result]
    if isinstance(result, tuple):
        return tuple(normalize(item) for item in result)
    if isinstance(result, dict):
        return {k: normalize(v) for k, v in result.items()}
    return result


def first_difference(expected: Any, got: Any, what: str = "result") -> str | None:
    """None when the two are equal by value, else one phrase saying where they first differ."""
    e, g = normalize(expected), normalize(got)
    if e == g:
        return None
    return _difference(e, g, f"your {what}", top=True)


def _difference(e: Any, g: Any, where: str, *, top: bool = False) -> str:
    """Walk lists and dicts down to the first place where `g` differs from `e`."""
    if isinstance(e, list) and isinstance(g, list):
        if len(e) != len(g):
            return f"{where} has {len(g)} items, the expected one has {len(e)}"
        for i, (a, b) in enumerate(zip(e, g, strict=True)):
            if a != b:
                if isinstance(a, list | dict) and isinstance(b, type(a)):
                    return _difference(a, b, f"{where}[{i}]" if not top else f"item {i} of {where}")
                return f"item {i} of {where} is {b!r:.80}, expected {a!r:.80}"
    if isinstance(e, dict) and isinstance(g, dict):
        if missing := [k for k in e if k not in g]:
            return f"{where} lacks {', '.join(map(repr, missing[:3]))}"
        if extra := [k for k in g if k not in e]:
            return f"{where} has {', '.join(map(repr, extra[:3]))}, which the expected one does not"
        for key in e:
            if e[key] != g[key]:
                inner = f"{where}[{key!r}]"
                if isinstance(e[key], list | dict) and isinstance(g[key], type(e[key])):
                    return _difference(e[key], g[key], inner)
                return f"{inner} is {g[key]!r:.80}, expected {e[key]!r:.80}"
    return f"{where} is {g!r:.80}, expected {e!r:.80}"


def check_same(measurements: Sequence[Measurement], key: Callable[[Any], Any] = normalize) -> None:
    """Raise ResultMismatch unless every measurement's result equals the first one's (compared through `key`)."""
    expected = key(measurements[0].result)
    for m in measurements[1:]:
        difference = first_difference(expected, key(m.result))
        if difference is not None:
            raise ResultMismatch(
                f"{m.variant!r} returned a different result from {measurements[0].variant!r} ({difference}): "
                "fix the variant, or pass check=... to compare what matters."
            )


def measure(
    fn: Callable[[], Any],
    *,
    engine: Engines | None = None,
    repeat: int = 7,
    warmup: int = 1,
    label: str = "run",
) -> Measurement:
    """Time `fn` `repeat` times after `warmup` untimed calls; count its statements on `engine`(s).

    `warmup=0` times the very first call (a cold one), as the first of the `repeat` runs.
    """
    return run_variants({label: fn}, engine=engine, repeat=repeat, warmup=warmup, budget_s=None)[0]


def merge_runs(variant: str, measurements: Sequence[Measurement]) -> Measurement:
    """One measurement holding the runs of several, with the first one's counts.

    For calls that must each be measured apart, a cold first call on a fresh engine say (`measure(...,
    repeat=1, warmup=0)` once per engine): their median and spread then read like any other measurement's.
    """
    first = measurements[0]
    return Measurement(variant, [t for m in measurements for t in m.times_s], first.statements, first.rows)


@contextmanager
def _counting(engines: Sequence[Engine], commits: bool) -> Iterator[Callable[[], tuple[int, int]]]:
    """Count statements (and commits, if asked) sent on `engines` inside the block; yields a reader of both."""
    with ExitStack() as stack:
        recorders = [stack.enter_context(record(e)) for e in engines]
        counters = [stack.enter_context(count_commits(e)) for e in engines] if commits else []
        yield lambda: (sum(r.count for r in recorders), sum(c.count for c in counters))


def _counted_call(
    m: Measurement, fn: Callable[[], Any], engines: list[Engine], read: Callable[[], Any] | None, commits: bool
) -> None:
    """Call `fn` once; keep in `m` its result (or what `read()` finds it wrote), its statements and commits."""
    if not engines:
        m.result = fn()
    else:
        with _counting(engines, commits) as counts:
            m.result = fn()
        sent, committed = counts()
        seen = sent or committed or not commits  # a write through SQLAlchemy sends something; the raw driver not
        m.statements = sent if seen else None
        m.commits = (committed if seen else None) if commits else None
    if read is not None:
        m.result = read()


def batch_size(call_s: float, min_sample_s: float | None, *, most: int = 10_000) -> int:
    """How many calls one sample makes so that it lasts at least `min_sample_s`, given one call's duration.

    A call timed alone for a few microseconds is mostly the clock and the loop around it, and one descheduling
    of the process on a busy machine moves it by multiples; timed in batches of a millisecond or more, each
    sample averages that away. 1 when no minimum is asked for or a call already lasts that long.
    """
    if not min_sample_s or call_s >= min_sample_s:
        return 1
    return min(most, math.ceil(min_sample_s / max(call_s, 1e-9)))


def _calibrate(fn: Callable[[], Any], min_sample_s: float) -> tuple[int, float]:
    """Call `fn` (untimed for the results) until the calls add up to `min_sample_s`, and at least three times
    when that takes less than 30 ms: the batch size, and how long a sample of that batch should last.

    These calls warm the variant up as well. The batch comes from the mean call, so one slow call on a busy
    machine makes the batch smaller, never a sample shorter than one call; the sample's length from the fastest
    call, so that one slow call does not count the variant among the slow ones (`samples_per_round`).
    """
    times: list[float] = []
    while (sum(times) < min_sample_s or (len(times) < 3 and sum(times) < 0.03)) and len(times) < 10_000:
        t0 = _clock()
        fn()
        times.append(_clock() - t0)
    batch = batch_size(sum(times) / len(times), min_sample_s)
    return batch, batch * min(times)


def samples_per_round(sample_s: Sequence[float], *, most: int = 10, longest_s: float = 0.01) -> list[int]:
    """How many samples each variant takes in a round: as many as fit in the slowest variant's one (at most
    `most`), so that a fast variant's median rests on many samples at little cost while a slow one runs. A
    variant whose sample lasts more than `longest_s` takes one: more of those would lengthen the race."""
    slowest = max(sample_s, default=0.0)
    return [min(most, max(1, int(slowest / s))) if 0 < s <= longest_s else 1 for s in sample_s]


_SLOW_CALL_S = 0.1  # a variant whose warm-up call lasted this long is not calibrated (its sample is one call)
_clock = time.perf_counter  # the one clock of the timing loop (tests put a counting one in its place)


def run_variants(
    variants: Variants,
    *,
    engine: Engines | None = None,
    repeat: int = 7,
    warmup: int = 1,
    budget_s: float | None = None,
    min_repeat: int = 3,
    reset: Callable[[], Any] | None = None,
    read: Callable[[], Any] | None = None,
    commits: bool = False,
    interleave: bool = True,
    min_sample_s: float | None = None,
) -> list[Measurement]:
    """Time each variant `repeat` times, interleaved round by round, after `warmup` untimed calls each.

    Without `min_sample_s`, each variant is called exactly `warmup + repeat` times (fewer rounds when
    `budget_s` runs out after `min_repeat`). Statements and rows come from the first call: an untimed warm-up
    call when there is one, so the recorder's own small overhead never lands in a timing; with `warmup=0` the
    first call is timed (a cold call) and is recorded as well.

    `min_sample_s` (the bench uses a millisecond) times a faster variant in batches: unless its warm-up call
    took `_SLOW_CALL_S` or more, untimed calls measure how long one takes, then each of its samples makes `batch`
    calls in a row and records their mean (`Measurement.batch`; `times_s` stays seconds per call). A variant
    whose sample is shorter than the slowest variant's takes several samples a round (`samples_per_round`, up
    to 10): `repeat` is then the number of rounds. Batches need warm-up calls and no `reset`: a cold call, or
    one that must start from reset rows, is timed alone.

    The hooks are what timing writes needs (`topics.batching.compare_writes`): `reset()` runs untimed before
    every call, so each starts from the same rows; `read()` runs untimed after the counted call, and what it
    returns stands for the variant's result (the rows it wrote); `commits=True` counts commits too.
    Interleaved rounds start one variant later each round, so that no variant always follows the same one.
    `interleave=False` times each variant in a block of its own, from the last to the first (see `compare`).
    """
    if repeat < 1 or warmup < 0:
        raise CourseError("repeat must be at least 1 and warmup at least 0, e.g. repeat=7, warmup=1.")
    engines = _engines(engine)
    fns = list(variants.values())
    measurements = [Measurement(name, [], None, None) for name in variants]
    blocks = [list(range(len(fns)))] if interleave else [[i] for i in reversed(range(len(fns)))]
    batching = bool(min_sample_s) and warmup > 0 and reset is None
    sample_s = [0.0] * len(fns)

    def fresh() -> None:
        if reset is not None:
            reset()
        # Untimed: garbage left by the previous call (ORM objects hold reference cycles) would otherwise be
        # collected, and charged, in the middle of this one.
        gc.collect()

    for block in blocks:
        for i in block:
            for call in range(warmup):
                fresh()
                t0 = _clock()
                if call == 0:
                    _counted_call(measurements[i], fns[i], engines, read, commits)
                else:
                    fns[i]()
                sample_s[i] = _clock() - t0
            if batching and min_sample_s and sample_s[i] < _SLOW_CALL_S:
                # A call of a tenth of a second or more is its own sample: no calibration calls for it.
                measurements[i].batch, sample_s[i] = _calibrate(fns[i], min_sample_s)
        per_round = samples_per_round([sample_s[i] for i in block]) if batching else [1] * len(block)
        samples = dict(zip(block, per_round, strict=True))
        started = _clock()
        # Everything alive now (modules, the notebook's data) is frozen out of the collector's sight, so the
        # collection before each call below only walks what the calls themselves left: milliseconds, not 0.1 s.
        gc.collect()
        gc.freeze()
        try:
            # Rounds interleave the variants, so a slow moment on a shared machine hits all of them alike.
            for round_ in range(repeat):
                shift = round_ % len(block)
                for i in block[shift:] + block[:shift]:
                    m = measurements[i]
                    for _ in range(samples[i]):
                        fresh()
                        if round_ == 0 and not warmup:
                            t0 = _clock()
                            _counted_call(m, fns[i], engines, None, commits)
                        else:
                            fn, calls = fns[i], m.batch
                            t0 = _clock()
                            for _ in range(calls):
                                fn()
                        m.times_s.append((_clock() - t0) / m.batch)
                        if round_ == 0 and not warmup and read is not None:
                            m.result = read()
                if budget_s is not None and round_ + 1 >= min_repeat and _clock() - started > budget_s:
                    break
        finally:
            gc.unfreeze()
    if reset is not None:
        reset()  # leave the database as the variants found it
    for m in measurements:
        m.rows = _rows_of(m.result)
    return measurements


@dataclass
class Comparison:
    """Variants measured side by side; the first is the baseline.

    `roles` declares what a variant stands for in the course-wide summary: the `naive` way, the `best` one (the
    learner's, or the course's), a `floor`. `prediction` is what the learner expected before it ran.
    """

    lesson: str
    backend: str
    size: str
    measurements: list[Measurement]
    title: str = ""
    roles: dict[str, str] = field(default_factory=dict)
    prediction: Prediction | None = None
    claim: str | None = None  # the blog's claim this race is the evidence for (see helpers/claims.py)

    @property
    def baseline(self) -> Measurement:
        return self.measurements[0]

    def role(self, role: str) -> Measurement | None:
        """The variant declared in `role` ('naive', 'best', 'floor'), if one was."""
        named = [variant for variant, declared in self.roles.items() if declared == role]
        return self[named[0]] if named else None

    @property
    def outcome(self) -> Outcome | None:
        """The learner's prediction beside the measurement (None: nothing predicted, or no best declared)."""
        best = self.role("best")
        if self.prediction is None or best is None:
            return None
        naive = self.role("naive") or self.baseline
        of = self[self.prediction.of] if self.prediction.of else best
        return outcome(self.prediction, naive, best, of)

    def __getitem__(self, variant: str) -> Measurement:
        for m in self.measurements:
            if m.variant == variant:
                return m
        raise KeyError(variant)

    def ratio(self, variant: str, baseline: str | None = None) -> float:
        """How many times faster `variant` is than the baseline (median over median)."""
        base = self[baseline] if baseline else self.baseline
        return base.median_s / self[variant].median_s

    @property
    def frame(self) -> pd.DataFrame:
        """One row per variant: median and IQR in ms, runs, statements, rows, speed-up over the baseline."""
        import pandas as pd  # deferred: pandas is heavy; the timing loop and make bench run without it

        rows = pd.DataFrame.from_records([m.row() for m in self.measurements]).set_index("variant")
        rows["speedup"] = self.baseline.median_s / rows["median_s"]
        return in_ms(rows)[["median_ms", "iqr_ms", "runs", "statements", "rows", "speedup"]]

    def summary(self) -> str:
        """One sentence computed from the measurements."""
        fastest = min(self.measurements, key=lambda m: m.median_s)
        base = self.baseline
        if fastest is base:
            return f"{base.variant!r} was the fastest here (median of {base.runs} runs)."
        return (
            f"{fastest.variant!r} took {format_ms(fastest.median_s)} against {format_ms(base.median_s)} "
            f"for {base.variant!r}: {base.median_s / fastest.median_s:.1f}× faster "
            f"(medians of {fastest.runs} runs each, {self.backend}, size {self.size})."
        )

    def plot(self, *, log: bool | None = None, ax: Any = None) -> Any:
        from .plots import bar_chart  # deferred: matplotlib, only when a chart is drawn

        return bar_chart(self, log=log, ax=ax)

    def show(self, *, summary: bool = True) -> None:
        """Display the table, the chart and the summary sentence, in a notebook.

        `summary=False` is for measurements that are not a race (different endpoints, say): no sentence
        and no speed-up column.
        """
        # deferred: the table and chart libraries (pandas styling, matplotlib), only when shown
        from IPython.display import display

        from .display import styled
        from .plots import show_figure

        frame = self.frame if summary else self.frame.drop(columns="speedup")
        display(styled(frame))
        show_figure(self.plot())
        if summary:
            print(self.summary())
        if self.outcome is not None:
            print(self.outcome.sentence())


def compare(
    variants: Variants,
    *,
    lesson: str,
    engine: Engines | None = None,
    backend: str | None = None,
    size: str | None = None,
    repeat: int = 7,
    warmup: int = 1,
    budget_s: float | None = 20.0,
    check: bool | Callable[[Any], Any] = True,
    store: bool = True,
    title: str = "",
    interleave: bool = True,
    naive: str | None = None,
    best: str | None = None,
    floor: str | None = None,
    prediction: Predicted = None,
    claim: str | None = None,
    min_sample_s: float | None = None,
) -> Comparison:
    """Measure variants side by side; the first is the baseline the others must agree with.

    `check=True` compares results by value; pass a function to compare a normalised form instead
    (for example `lambda rows: sorted(rows)`), or False when results legitimately differ.
    `engine` may be a list when variants run on different databases: statements are counted on all,
    backend and size are read from the first. `title` names the comparison: the results store keeps each
    comparison's history apart from the others' (two comparisons may both have a variant called 'no index').

    `min_sample_s` times sub-millisecond variants in batches (see `run_variants`).

    `interleave=False` times each variant in a block of its own, one after the other, from the last to the
    first. Interleaving rounds is fairer on a noisy machine, except when a variant leaves work behind that
    lands on the next one: after close(), a PostgreSQL connection's server process goes on exiting for a while,
    and a pooled request timed right after it would be charged for that. The first variant (the baseline, the
    naive way) is the one likely to leave work behind, so it runs last.

    `naive`, `best` and `floor` name the variants that play those roles (the course-wide summary reads them, not
    the variants' order); `prediction` is the learner's (a `Prediction`, or the boxes `widgets.predict` shows),
    stored with the run and shown beside what was measured. `claim` names the blog's advice this race tests
    (a key of `helpers.claims.CLAIMS`): its verdict is read from the run, by the roles.
    """
    if not variants:
        raise CourseError("compare() needs at least one variant: a dict of {label: function}.")
    roles = {name: role for role, name in (("naive", naive), ("best", best), ("floor", floor)) if name is not None}
    if claim is not None and best is None:
        raise CourseError(f"A race that tests a claim ({claim!r}) names its best variant: compare(..., best=...).")
    if unknown := [name for name in roles if name not in variants]:
        raise CourseError(
            f"No variant called {unknown[0]!r} in this comparison: use one of {', '.join(variants)}."
        )
    first = next(iter(_engines(engine)), None)
    measurements = run_variants(
        variants,
        engine=engine,
        repeat=repeat,
        warmup=warmup,
        budget_s=budget_s,
        interleave=interleave,
        min_sample_s=min_sample_s,
    )
    if check:
        check_same(measurements, check if callable(check) else normalize)
    comparison = Comparison(
        lesson=lesson,
        backend=backend or (first.dialect.name if first is not None else "none"),
        size=size or _dataset_size(first) or settings().size,
        measurements=measurements,
        title=title,
        roles=roles,
        prediction=as_prediction(prediction),
        claim=claim,
    )
    if store:
        results.store(comparison)
    return comparison


def _dataset_size(engine: Engine | None) -> str | None:
    """The size recorded in the dataset itself, so results are filed under the data actually measured."""
    if engine is None:
        return None

    try:
        with engine.connect() as conn:
            size = conn.execute(text("SELECT value FROM course_meta WHERE key = 'size'")).scalar()
    except SQLAlchemyError:
        return None
    return str(size) if size else None


def scaling(
    make_variants: Callable[[int], Variants],
    ns: Sequence[int],
    *,
    engine: Engines | None = None,
    repeat: int = 5,
    warmup: int = 1,
    budget_s: float | None = 5.0,
) -> pd.DataFrame:
    """Time variants at each n (for charts of time against N); one row per (n, variant), times in ms."""
    import pandas as pd  # deferred: pandas is heavy; the timing loop and make bench run without it

    records = [
        {"n": n, **m.row()}
        for n in ns
        for m in run_variants(make_variants(n), engine=engine, repeat=repeat, warmup=warmup, budget_s=budget_s)
    ]
    frame = in_ms(pd.DataFrame.from_records(records))
    return frame[["n", "variant", "median_ms", "q1_ms", "q3_ms", "iqr_ms", "runs", "statements", "rows"]]

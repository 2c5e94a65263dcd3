"""The measuring harness: warm-up, repeats, medians and spread, variants side by side in one run."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Mapping, Sequence, Sized
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import Engine, Row

from . import results
from .errors import CourseError
from .recorder import record

# Where statements are counted: one engine, or several when variants run on different databases
# (lesson 04 compares the shared dataset with an indexed copy of it).
Engines = Engine | Sequence[Engine]


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


def _ms(seconds: float) -> str:
    """Milliseconds with three significant digits, without scientific notation."""
    ms = seconds * 1000
    return f"{ms:,.0f} ms" if ms >= 100 else f"{ms:.3g} ms"


def _rows_of(result: Any) -> int | None:
    if isinstance(result, Sized) and not isinstance(result, str | bytes):
        return len(result)
    return None


def _normalize(result: Any) -> Any:
    """Make SQLAlchemy rows, tuples and lists comparable by value."""
    if isinstance(result, Row):  # a SQLAlchemy Row compares as the tuple of its values
        return tuple(_normalize(v) for v in result)
    if isinstance(result, list):
        return [_normalize(item) for item in result]
    if isinstance(result, tuple):
        return tuple(_normalize(item) for item in result)
    if isinstance(result, dict):
        return {k: _normalize(v) for k, v in result.items()}
    return result


def measure(
    fn: Callable[[], Any],
    *,
    engine: Engines | None = None,
    repeat: int = 7,
    warmup: int = 1,
    label: str = "run",
) -> Measurement:
    """Time `fn` (after `warmup` untimed calls) `repeat` times; count its statements on `engine`(s)."""
    return _run({label: fn}, engine=engine, repeat=repeat, warmup=warmup, budget_s=None)[0]


def _run(
    variants: Mapping[str, Callable[[], Any]],
    *,
    engine: Engines | None,
    repeat: int,
    warmup: int,
    budget_s: float | None,
    min_repeat: int = 3,
) -> list[Measurement]:
    if repeat < 1 or warmup < 0:
        raise CourseError("repeat must be at least 1 and warmup at least 0, e.g. repeat=7, warmup=1.")
    measurements: list[Measurement] = []
    # The first call of each variant is untimed: it warms caches and is where statements are counted,
    # so the recorder's own overhead never lands in a timing.
    engines = _engines(engine)
    for name, fn in variants.items():
        if engines:
            with ExitStack() as stack:
                recorders = [stack.enter_context(record(e)) for e in engines]
                result = fn()
            statements: int | None = sum(rec.count for rec in recorders)
        else:
            result, statements = fn(), None
        for _ in range(warmup - 1):
            fn()
        measurements.append(Measurement(name, [], statements, _rows_of(result), result))
    started = time.perf_counter()
    # Everything alive now (modules, the notebook's data) is frozen out of the collector's sight, so the
    # collection before each call below only walks what the calls themselves left: milliseconds, not 0.1 s.
    gc.collect()
    gc.freeze()
    try:
        # Rounds interleave the variants, so a slow moment on a shared machine hits all of them alike.
        for round_ in range(repeat):
            for m, fn in zip(measurements, variants.values(), strict=True):
                # Untimed: garbage left by the previous call (ORM objects hold reference cycles) would
                # otherwise be collected, and charged, in the middle of this one.
                gc.collect()
                t0 = time.perf_counter()
                fn()
                m.times_s.append(time.perf_counter() - t0)
            if budget_s is not None and round_ + 1 >= min_repeat and time.perf_counter() - started > budget_s:
                break
    finally:
        gc.unfreeze()
    return measurements


@dataclass
class Comparison:
    """Variants measured side by side; the first is the baseline."""

    lesson: str
    backend: str
    size: str
    measurements: list[Measurement]
    title: str = ""
    run_id: str | None = None

    @property
    def baseline(self) -> Measurement:
        return self.measurements[0]

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
        base = self.baseline.median_s
        return pd.DataFrame(
            {
                "variant": [m.variant for m in self.measurements],
                "median_ms": [m.median_s * 1000 for m in self.measurements],
                "iqr_ms": [m.spread_s * 1000 for m in self.measurements],
                "runs": [m.runs for m in self.measurements],
                "statements": [m.statements for m in self.measurements],
                "rows": [m.rows for m in self.measurements],
                "speedup": [base / m.median_s for m in self.measurements],
            }
        ).set_index("variant")

    def summary(self) -> str:
        """One sentence computed from the measurements."""
        fastest = min(self.measurements, key=lambda m: m.median_s)
        base = self.baseline
        if fastest is base:
            return f"{base.variant!r} was the fastest here (median of {base.runs} runs)."
        return (
            f"{fastest.variant!r} took {_ms(fastest.median_s)} against {_ms(base.median_s)} "
            f"for {base.variant!r}: {base.median_s / fastest.median_s:.1f}× faster "
            f"(medians of {fastest.runs} runs each, {self.backend}, size {self.size})."
        )

    def plot(self, *, log: bool | None = None, ax: Any = None) -> Any:
        from .plots import bar_chart

        return bar_chart(self, log=log, ax=ax)

    def show(self, *, summary: bool = True) -> None:
        """Display the table, the chart and the summary sentence, in a notebook.

        `summary=False` is for measurements that are not a race (different endpoints, say): no sentence
        and no speed-up column.
        """
        from IPython.display import display

        from .plots import show_figure

        frame = self.frame if summary else self.frame.drop(columns="speedup")
        display(frame.style.format({"median_ms": "{:.3f}", "iqr_ms": "{:.3f}", "speedup": "{:.1f}×"}, na_rep="–"))
        show_figure(self.plot())
        if summary:
            print(self.summary())


def compare(
    variants: Mapping[str, Callable[[], Any]],
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
) -> Comparison:
    """Measure variants side by side; the first is the baseline the others must agree with.

    `check=True` compares results by value; pass a function to compare a normalised form instead
    (for example `lambda rows: sorted(rows)`), or False when results legitimately differ.
    `engine` may be a list when variants run on different databases: statements are counted on all,
    backend and size are read from the first.
    """
    from .config import settings

    first = next(iter(_engines(engine)), None)
    if not variants:
        raise CourseError("compare() needs at least one variant: a dict of {label: function}.")
    measurements = _run(variants, engine=engine, repeat=repeat, warmup=warmup, budget_s=budget_s)
    if check:
        _check_same(measurements, check if callable(check) else _normalize)
    comparison = Comparison(
        lesson=lesson,
        backend=backend or (first.dialect.name if first is not None else "none"),
        size=size or _dataset_size(first) or settings().size,
        measurements=measurements,
        title=title,
    )
    if store:
        comparison.run_id = results.store(lesson, comparison.backend, comparison.size, measurements)
    return comparison


def _dataset_size(engine: Engine | None) -> str | None:
    """The size recorded in the dataset itself, so results are filed under the data actually measured."""
    if engine is None:
        return None
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with engine.connect() as conn:
            size = conn.execute(text("SELECT value FROM course_meta WHERE key = 'size'")).scalar()
    except SQLAlchemyError:
        return None
    return str(size) if size else None


def _check_same(measurements: Sequence[Measurement], key: Callable[[Any], Any]) -> None:
    expected = key(measurements[0].result)
    for m in measurements[1:]:
        got = key(m.result)
        if got != expected:
            raise ResultMismatch(
                f"{m.variant!r} returned a different result from {measurements[0].variant!r} "
                f"({_first_difference(expected, got)}): "
                "fix the variant, or pass check=... to compare what matters."
            )


def _first_difference(expected: Any, got: Any) -> str:
    if isinstance(expected, list) and isinstance(got, list):
        if len(expected) != len(got):
            return f"{len(got)} items instead of {len(expected)}"
        for i, (a, b) in enumerate(zip(expected, got, strict=True)):
            if a != b:
                return f"item {i}: {b!r:.80} instead of {a!r:.80}"
    return f"{got!r:.80} instead of {expected!r:.80}"


def scaling(
    make_variants: Callable[[int], Mapping[str, Callable[[], Any]]],
    ns: Sequence[int],
    *,
    engine: Engines | None = None,
    repeat: int = 5,
    warmup: int = 1,
    budget_s: float | None = 5.0,
) -> pd.DataFrame:
    """Time variants at each n (for charts of time against N); one row per (n, variant)."""
    records = []
    for n in ns:
        for m in _run(make_variants(n), engine=engine, repeat=repeat, warmup=warmup, budget_s=budget_s):
            records.append(
                {
                    "n": n,
                    "variant": m.variant,
                    "median_ms": m.median_s * 1000,
                    "q1_ms": m.q1_s * 1000,
                    "q3_ms": m.q3_s * 1000,
                    "runs": m.runs,
                    "statements": m.statements,
                    "rows": m.rows,
                }
            )
    return pd.DataFrame.from_records(records)

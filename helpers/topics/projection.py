"""Lesson 02's instruments for projection: how wide the rows are, the bytes each variant moves, and the sentences
the lesson computes from its measurements.

* `calls(course, variants, n)` turns variants written as `fn(session, n)` into the no-argument calls a race times,
  each in a fresh session; `sql_sent(course, variants, n)` says what SQL each one sends;
* `text_widths(engine, models, n)` is the average length of every text column over the first `n` rows of each
  model's table: where the wide columns are;
* `bytes_moved(engine, fn)` runs `fn` while recording its statements, then runs them again through the driver
  and adds up the bytes of every value returned (`measure.recorder.bytes_fetched`);
* `with_bytes_moved(comparison, variants, engine)` is a comparison's table with the bytes each variant moved;
* `frame_memory(frames)` is the memory pandas needs for each DataFrame;
* the `..._sentence` and `..._summary` functions say in one sentence what a measurement shows.

The variant names the sentences read (`_WHOLE`, `_PROJECTIONS`, the driver race's `SESSION`, `CONNECTION`,
`DRIVER`) are the labels the lesson gives its variants.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import Engine, String, func, select

from ..measure.harness import Comparison
from ..measure.recorder import bytes_fetched, record

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from ..course import Course

__all__ = [
    "CONNECTION",
    "DRIVER",
    "SESSION",
    "Variant",
    "bytes_and_time_sentence",
    "bytes_moved",
    "bytes_summary",
    "calls",
    "driver_sentence",
    "frame_memory",
    "growth_sentence",
    "growth_summary",
    "memory_sentence",
    "sql_sent",
    "text_widths",
    "trap_summary",
    "width_sentence",
    "with_bytes_moved",
]

_WHOLE = "whole entities"
_PROJECTIONS = ("load_only", "select(columns)", "Bundle")
SESSION = "select(columns), session"
CONNECTION = "select(columns), session's connection"
DRIVER = "raw driver (floor)"


# ---------------------------------------------------------------- the variants, as a race calls them
Variant = Callable[["Session", int], Any]


def _in_a_session(course: Course, fn: Variant, n: int) -> Any:
    with course.session() as session:
        return fn(session, n)


def calls(course: Course, variants: Mapping[str, Variant], n: int) -> dict[str, Callable[[], Any]]:
    """Each `fn(session, n)` as a call with no arguments that opens a fresh session, as a request would."""
    return {label: partial(_in_a_session, course, fn, n) for label, fn in variants.items()}


def sql_sent(course: Course, variants: Mapping[str, Variant], n: int, width: int = 120) -> dict[str, str]:
    """Print the statements each variant sends (shortened to `width` characters); return each one's SQL."""
    sent = {}
    for label, call in calls(course, variants, n).items():
        with record(course.engine) as rec:
            call()
        sent[label] = " ".join(" ".join(st.sql.split()) for st in rec.statements)
        shown = sent[label][:width] + ("…" if len(sent[label]) > width else "")
        print(f"{label:16} {rec.count} statement{'s' * (rec.count != 1)}: {shown}")
    return sent


# ---------------------------------------------------------------- how wide is a row
def text_widths(engine: Engine, models: Iterable[Any], n: int) -> pd.Series:
    """Average characters of each text column over the first `n` rows of each model's table."""
    return pd.concat([_average_widths(engine, model, n) for model in models])


def _average_widths(engine: Engine, model: Any, n: int) -> pd.Series:
    first_rows = select(model).order_by(model.id).limit(n).subquery()
    text_columns = [column for column in first_rows.c if isinstance(column.type, String)]
    with engine.connect() as conn:
        widths = conn.execute(select(*(func.avg(func.length(c)).label(c.key) for c in text_columns))).one()
    return pd.Series({f"{model.__tablename__}.{key}": float(value) for key, value in widths._asdict().items()})


def width_sentence(widths: pd.Series) -> str:
    """What a customer list needs of a customer's row, against what the whole row carries."""
    needed = widths[["customers.name", "customers.email"]].sum()
    whole = widths[widths.index.str.startswith("customers.")].sum()
    return (
        f"The customer list needs about {needed:.0f} characters per customer (plus the id); "
        f"a whole row carries {whole:.0f}, {whole / needed:.0f}× as much."
    )


# ---------------------------------------------------------------- bytes moved
def bytes_moved(engine: Engine, fn: Callable[[], Any]) -> int:
    """Run `fn`, then its statements again through the driver, adding up the bytes of every value returned."""
    with record(engine) as rec:
        fn()
    return bytes_fetched(engine, rec)


def with_bytes_moved(
    comparison: Comparison, variants: Mapping[str, Callable[[], Any]], engine: Engine
) -> pd.DataFrame:
    """The comparison's table with the bytes each variant moved, in all and per row."""
    table = comparison.frame
    table["bytes moved"] = [bytes_moved(engine, fn) for fn in variants.values()]
    table["bytes per row"] = (table["bytes moved"] / table["rows"]).round().astype(int)
    return table[["median_ms", "iqr_ms", "runs", "statements", "rows", "bytes moved", "bytes per row", "speedup"]]


def _shares(table: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Each variant's bytes and time as a share of the whole entities'."""
    bytes_share = table["bytes moved"] / table.loc[_WHOLE, "bytes moved"]
    time_share = table["median_ms"] / table.loc[_WHOLE, "median_ms"]
    return bytes_share, time_share


def _time_shares(time_share: pd.Series, of: str = "") -> str:
    """Each projection's time share, named: "40% (load_only), ..." or, with `of`, "40% of ... (load_only), ...";
    the learner's ("yours") last, when it raced."""
    projections = [p for p in (*_PROJECTIONS, "yours") if p in time_share.index]
    return ", ".join(f"{time_share[p]:.0%}{of} ({p})" for p in projections)


def bytes_and_time_sentence(table: pd.DataFrame, backend: str) -> str:
    """Whether time fell as far as bytes did, and which of the two costs (bytes, objects) was the larger."""
    bytes_share, time_share = _shares(table)
    ms = table["median_ms"]
    bytes_ms = ms[_WHOLE] - ms["load_only"]  # same objects, fewer bytes
    objects_ms = ms["load_only"] - ms["select(columns)"]  # same bytes, no objects
    bigger = "building ORM objects" if objects_ms > bytes_ms else "moving the wide columns"
    return (
        f"The projections moved the same {table.loc['load_only', 'bytes moved']:,} bytes, "
        f"{bytes_share['load_only']:.0%} of what whole entities moved; their times were "
        f"{_time_shares(time_share)} of the whole entities' time.\n"
        f"Medians: whole entities {ms[_WHOLE]:.1f} ms, load_only {ms['load_only']:.1f} ms (fewer bytes, "
        f"same objects), select(columns) {ms['select(columns)']:.1f} ms (no objects). On {backend}, most of "
        f"the gap is {bigger}."
    )


def bytes_summary(table: pd.DataFrame) -> str:
    """The projections' bytes and times as shares of the whole entities', in one line."""
    bytes_share, time_share = _shares(table)
    return (
        f"Bytes against time: the projections moved {bytes_share['load_only']:.0%} of the whole entities' "
        f"bytes, in {_time_shares(time_share, ' of their time')}."
    )


# ---------------------------------------------------------------- more rows, more cost
def _per_row_us(by_size: pd.DataFrame) -> tuple[int, pd.Series]:
    """The largest list length measured, and each variant's time per row there, in µs."""
    largest = by_size.index.max()
    return largest, by_size.loc[largest] / largest * 1000


def growth_sentence(by_size: pd.DataFrame) -> str:
    """Each variant's cost per row at the largest list, and how many times the whole entities' it was."""
    largest, per_row_us = _per_row_us(by_size)
    return (
        f"At {largest:,} rows: "
        + ", ".join(f"{variant} {us:.1f} µs per row" for variant, us in per_row_us.items())
        + f"; whole entities took {per_row_us[_WHOLE] / per_row_us['select(columns)']:.1f}× as long as "
        "select(columns)."
    )


def growth_summary(by_size: pd.DataFrame) -> str:
    """The whole entities' time against select(columns)' at the largest list, in one line."""
    largest, per_row_us = _per_row_us(by_size)
    return (
        f"Time against rows: at {largest:,} customers, whole entities took "
        f"{per_row_us[_WHOLE] / per_row_us['select(columns)']:.1f}× as long as select(columns)."
    )


# ---------------------------------------------------------------- select(columns) against the driver
def driver_sentence(to_driver: Comparison, rows: int) -> str:
    """select(columns) through the session and its connection, against the raw driver; the ORM's cost per row."""
    floor_ms = to_driver[DRIVER].median_s * 1000
    session_ms = to_driver[SESSION].median_s * 1000
    core_ms = to_driver[CONNECTION].median_s * 1000
    orm_us_per_row = (session_ms - core_ms) / rows * 1000
    ratios = (
        f"select(columns) took {session_ms / floor_ms:.2f}× the raw driver's time through the session and "
        f"{core_ms / floor_ms:.2f}× through the session's connection."
    )
    if session_ms <= core_ms:  # noise larger than the difference: say so rather than print a negative cost
        return f"{ratios} In this run the ORM's row handling was lost in the noise: rerun to see it."
    return (
        f"{ratios} The ORM's row handling accounts for {session_ms - core_ms:.2f} ms of {session_ms:.2f} ms here: "
        f"{orm_us_per_row:.2f} µs per row, {orm_us_per_row * 20:.1f} µs for a page of 20 rows."
    )


# ---------------------------------------------------------------- the trap, and pandas
def trap_summary(trap: Comparison) -> str:
    """The deferred-column trap's statements against the loaded column's, and its time, in one line."""
    return (
        f"The trap: touching one deferred column in a loop over 50 customers ran {trap.baseline.statements} "
        f"statements instead of {trap.measurements[1].statements}. {trap.summary()}"
    )


def frame_memory(frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Columns and memory (MB, strings counted deeply) of each DataFrame."""
    return pd.DataFrame(
        {
            "columns": [frame.shape[1] for frame in frames.values()],
            "memory_MB": [frame.memory_usage(deep=True).sum() / 1e6 for frame in frames.values()],
        },
        index=list(frames),
    )


def memory_sentence(memory: pd.DataFrame, faster: float) -> str:
    """The second DataFrame's memory as a share of the first's, and how many times faster it loaded."""
    mb = memory["memory_MB"]
    return (
        f"The DataFrame of three columns needs {mb.iloc[1] / mb.iloc[0]:.0%} of the memory of SELECT *, "
        f"and loading it was {faster:.1f}× faster."
    )

"""Lesson 01's instruments: which tables a request's statements read, and the baseline table in sentences.

* `statements_reading(recorder, table)` counts the recorded statements that read `table` (name it in a FROM);
* `baseline_summary(comparison)` says, endpoint by endpoint, the median and the statements per request, then
  which endpoint was the slowest and which ran the most statements;
* `prediction_beside(prediction, comparison)` puts the learner's guess at the chattiest endpoint beside the
  statements the baseline table counted.
"""

from __future__ import annotations

from numbers import Real
from typing import Any

from ..measure.harness import Comparison
from ..measure.recorder import QueryRecorder
from .profiling import one_line

__all__ = ["baseline_summary", "prediction_beside", "statements_reading"]


def statements_reading(recorder: QueryRecorder, table: str) -> int:
    """How many of the recorded statements read `table`: those whose SQL says FROM `table`."""
    return sum(f" FROM {table} " in f" {one_line(s.sql)} " for s in recorder.statements)


def _statements(count: int) -> str:
    return f"{count} statement{'s' * (count != 1)}"


def baseline_summary(comparison: Comparison) -> str:
    """One line per endpoint (median, statements per request), then the slowest and the chattiest endpoint."""
    measured = comparison.frame
    slowest, chattiest = measured["median_ms"].idxmax(), measured["statements"].idxmax()
    lines = [
        f"{name}: {row['median_ms']:.1f} ms median, {_statements(int(row['statements']))} per request"
        for name, row in measured.iterrows()
    ]
    lines.append(
        f"Slowest endpoint: {slowest}. Most statements: {chattiest} "
        f"({int(measured.loc[chattiest, 'statements'])} per request, on {comparison.backend}, "
        f"size {comparison.size})."
    )
    return "\n".join(lines)


def prediction_beside(prediction: Any, comparison: Comparison) -> str:
    """The learner's guess (endpoint name, statements per request) at the endpoint that runs the most statements,
    beside what the baseline table counted; a guess left blank is said, never an error."""
    statements = comparison.frame["statements"].astype(int)
    most = int(statements.max())
    chattiest = " and ".join(repr(name) for name, count in statements.items() if count == most)
    measured = f"the table counted {most} per request for {chattiest}, the most of the {len(statements)} endpoints"
    guess = _guess(prediction)
    if guess is None:
        return f"No prediction (the cell still holds ____, or is not a pair of a name and a number); {measured}."
    name, count = guess
    said = f"You predicted {name!r} would run the most, {count:g} statement{'s' * (count != 1)} per request"
    found = {str(index).lower(): index for index in statements.index}
    if name.strip().lower() in found:
        said += f" (it ran {int(statements[found[name.strip().lower()]])})"
    return f"{said}; {measured}."


def _guess(prediction: Any) -> tuple[str, float] | None:
    """A prediction as (name, statements), or None when the learner left it blank or wrote something else."""
    try:
        name, count = prediction
    except (TypeError, ValueError):
        return None
    if not isinstance(name, str) or isinstance(count, bool) or not isinstance(count, Real):
        return None
    return name, float(count)

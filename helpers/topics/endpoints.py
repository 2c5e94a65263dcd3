"""Lesson 01's instruments: which tables a request's statements read, and the baseline table in sentences.

* `statements_reading(recorder, table)` counts the recorded statements that read `table` (name it in a FROM);
* `baseline_summary(comparison)` says, endpoint by endpoint, the median and the statements per request, then
  which endpoint was the slowest and which ran the most statements.
"""

from __future__ import annotations

from ..measure.harness import Comparison
from ..measure.recorder import QueryRecorder
from .profiling import one_line

__all__ = ["baseline_summary", "statements_reading"]


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

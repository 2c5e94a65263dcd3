"""Units: milliseconds written with the digits that matter (the course's one number formatter), seconds as ms.

Times are kept in seconds (`median_s`) and read in milliseconds: `ms_text` writes a millisecond value for a
table or a sentence (`format_ms` from seconds, with its unit), `in_ms` converts a frame's seconds columns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["format_ms", "in_ms", "ms_text", "number_text"]


def ms_text(value: Any) -> str:
    """Milliseconds with the digits that matter: 1,234 · 123 · 12.3 · 1.23 · 0.123."""
    if value is None or value != value:  # None or NaN
        return "–"
    v = float(value)
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    if abs(v) >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def number_text(value: Any) -> str:
    """Any float in a table, as ms_text writes milliseconds; values under 0.001 in scientific notation."""
    if value is None or value != value:
        return "NaN"
    v = float(value)
    return f"{v:.2e}" if v and abs(v) < 0.001 else ms_text(v)


def in_ms(frame: pd.DataFrame) -> pd.DataFrame:
    """Seconds columns (`median_s`, `spread_s`, ...) as milliseconds (`median_ms`, `iqr_ms`, ...), for reading."""
    renamed = {column: column[:-2] + "_ms" for column in frame.columns if str(column).endswith("_s")}
    renamed["spread_s"] = "iqr_ms"  # the spread the course reports is the interquartile range
    converted = frame.copy()
    for column in renamed:
        if column in converted:
            converted[column] = converted[column] * 1000
    return converted.rename(columns=renamed)


def format_ms(seconds: float) -> str:
    """A duration in seconds as milliseconds with their unit, written as `ms_text` writes them: '12.3 ms'."""
    return f"{ms_text(seconds * 1000)} ms"

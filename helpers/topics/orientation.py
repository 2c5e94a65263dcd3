"""Lesson 00's instruments: what the measurements are made with, the dataset sizes, and what a cold call cost.

* `environment_table(course)` lists the versions and settings a lesson's measurements are made with;
* `sizes_table()` lists the rows each dataset size generates;
* `median_and_mean(measurement)` says how far the slowest runs pulled the mean from the median;
* `cold_call_sentence(cold, connected, warm, backend)` says what a first call on a new engine cost against a warm
  one, and which part of it (opening the connection, or its first statement) was the larger.
"""

from __future__ import annotations

import platform
import sqlite3
from importlib.metadata import version

import pandas as pd
import sqlalchemy

from ..config import SIZES
from ..course import Course
from ..measure.harness import Measurement
from ..measure.units import format_ms

__all__ = ["cold_call_sentence", "environment_table", "median_and_mean", "sizes_table"]


def environment_table(course: Course) -> pd.DataFrame:
    """The versions and settings this lesson measures with: Python, the libraries, the database, size, cache."""
    with course.engine.connect() as conn:
        server_version = ".".join(map(str, conn.dialect.server_version_info or ()))
    values = {
        "Python": platform.python_version(),
        "SQLAlchemy": sqlalchemy.__version__,
        "Flask": version("flask"),
        "Flask-Caching": version("flask-caching"),
        "pandas": pd.__version__,
        "SQLite library": sqlite3.sqlite_version,
        "database in use": f"{course.backend} {server_version}",
        "dataset size": course.size,
        "cache backend": course.settings.cache,
        "database URL": course.engine.url.render_as_string(hide_password=True),
    }
    return pd.DataFrame({"value": list(values.values())}, index=list(values))


def sizes_table() -> pd.DataFrame:
    """The rows each dataset size generates, one size a row."""
    return pd.DataFrame(
        [
            {
                "size": s.name,
                "customers": s.customers,
                "products": s.products,
                "orders": s.orders,
                "order lines (about)": s.order_lines,
                "reviews": s.reviews,
            }
            for s in SIZES.values()
        ]
    ).set_index("size")


def cold_call_sentence(cold: Measurement, connected: Measurement, warm: Measurement, backend: str) -> str:
    """A cold first call against a warm one, and which cost more: opening the connection or the first statement."""
    opening_s = cold.median_s - connected.median_s  # what opening the connection added
    first_statement_s = connected.median_s - warm.median_s  # what the first statement on it added
    if opening_s > 2 * first_statement_s:
        larger = "most of the cold cost was opening the connection."
    elif first_statement_s > 2 * opening_s:
        larger = "most of the cold cost was the first statement on a new connection."
    else:
        larger = "opening the connection and its first statement cost about as much as each other."
    return (
        f"Cold, the lookup took {format_ms(cold.median_s)} (median of {cold.runs} fresh engines), "
        f"{cold.median_s / warm.median_s:.1f}× the warm median of {format_ms(warm.median_s)}; with its connection "
        f"already open, a new engine's first call took {format_ms(connected.median_s)}. All three sent "
        f"{cold.statements} statement{'s' if cold.statements != 1 else ''}: the difference is not the query.\n"
        f"On {backend}, {larger}"
    )


def median_and_mean(measurement: Measurement) -> str:
    """The mean beside the median of one measurement's runs, and which way the slowest runs pulled the mean."""
    mean_s = sum(measurement.times_s) / measurement.runs
    said = f"Over {measurement.runs} runs: median {format_ms(measurement.median_s)}, mean {format_ms(mean_s)}"
    if mean_s > measurement.median_s:
        return f"{said}. The slowest runs pulled the mean up, {mean_s / measurement.median_s:.2f}× the median."
    return f"{said}. This time no slow runs pulled the mean above the median; rerun the cell to see how often."

"""The results store: every measurement a learner makes, kept so reruns can be compared."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterable
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from .config import DATA_DIR

if TYPE_CHECKING:
    from .harness import Measurement

COLUMNS = (
    "run_id",
    "lesson",
    "variant",
    "backend",
    "size",
    "median_s",
    "spread_s",
    "q1_s",
    "q3_s",
    "min_s",
    "max_s",
    "runs",
    "statements",
    "rows",
    "measured_at",
)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS measurements (
    id INTEGER PRIMARY KEY,
    run_id TEXT, lesson TEXT, variant TEXT, backend TEXT, size TEXT,
    median_s REAL, spread_s REAL, q1_s REAL, q3_s REAL, min_s REAL, max_s REAL,
    runs INTEGER, statements INTEGER, rows INTEGER, measured_at TEXT
)
"""


def results_path() -> Path:
    """data/results.sqlite, or COURSE_RESULTS_PATH (the tests keep their runs out of the learner's history)."""
    return Path(os.environ.get("COURSE_RESULTS_PATH") or DATA_DIR / "results.sqlite")


def _connect(path: Path | None = None) -> sqlite3.Connection:
    path = path or results_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=10)
    conn.execute(_SCHEMA)
    return conn


def store(
    lesson: str, backend: str, size: str, measurements: Iterable[Measurement], path: Path | None = None
) -> str:
    """Append one run of measurements; returns its run id."""
    run_id = uuid.uuid4().hex[:12]
    now = datetime.now(UTC).isoformat(timespec="seconds")
    rows = [
        (
            run_id,
            lesson,
            m.variant,
            backend,
            size,
            m.median_s,
            m.spread_s,
            m.q1_s,
            m.q3_s,
            min(m.times_s),
            max(m.times_s),
            m.runs,
            m.statements,
            m.rows,
            now,
        )
        for m in measurements
    ]
    with closing(_connect(path)) as conn, conn:
        conn.executemany(
            f"INSERT INTO measurements ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})", rows
        )
    return run_id


def history(lesson: str | None = None, path: Path | None = None) -> pd.DataFrame:
    """Stored measurements, oldest first (all lessons, or one)."""
    query = f"SELECT {', '.join(COLUMNS)} FROM measurements"
    params: tuple[str, ...] = ()
    if lesson is not None:
        query += " WHERE lesson = ?"
        params = (lesson,)
    with closing(_connect(path)) as conn:
        frame = pd.read_sql_query(query + " ORDER BY id", conn, params=params)
    frame["measured_at"] = pd.to_datetime(frame["measured_at"])
    return frame


def clear(lesson: str | None = None, path: Path | None = None) -> int:
    """Forget stored measurements (of one lesson, or all); returns how many were removed."""
    with closing(_connect(path)) as conn, conn:
        cursor = conn.execute(
            "DELETE FROM measurements" + (" WHERE lesson = ?" if lesson else ""), (lesson,) if lesson else ()
        )
        return cursor.rowcount

"""The results store: every measurement a learner makes, kept so reruns can be compared.

Each stored row is one variant of one comparison in one run, with the role it was declared in (naive, best,
floor). History is read per comparison *and* variant: two comparisons may both have a variant called
'no index (scan)', and must not merge into one line. A run the learner predicted also keeps its prediction
beside what it measured (`predictions()`), for the capstone.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import data_dir

if TYPE_CHECKING:
    import pandas as pd

    from .harness import Comparison

__all__ = [
    "COLUMNS",
    "LESSON_NUMBERING",
    "claims",
    "clear",
    "history",
    "predictions",
    "record_claim",
    "results_path",
    "store",
]

_MEASUREMENT_COLUMNS = (
    "variant", "median_s", "spread_s", "q1_s", "q3_s", "min_s", "max_s", "runs", "statements", "rows",
)  # fmt: skip
COLUMNS = ("run_id", "lesson", "comparison", "backend", "size", *_MEASUREMENT_COLUMNS, "role", "measured_at")
_CLAIM_COLUMNS = (
    "run_id", "claim", "lesson", "comparison", "backend", "size", "holds", "measured_speedup", "detail",
    "measured_at",
)  # fmt: skip
_PREDICTION_COLUMNS = (
    "run_id", "lesson", "comparison", "backend", "size", "naive", "best", "predicted_speedup", "measured_speedup",
    "statements_of", "predicted_statements", "measured_statements", "measured_at",
)  # fmt: skip
# The lesson numbers the store's rows use (helpers/renumbering.py moves an older store's rows once).
LESSON_NUMBERING = "2"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS measurements (
    id INTEGER PRIMARY KEY,
    run_id TEXT, lesson TEXT, comparison TEXT, variant TEXT, backend TEXT, size TEXT,
    median_s REAL, spread_s REAL, q1_s REAL, q3_s REAL, min_s REAL, max_s REAL,
    runs INTEGER, statements INTEGER, rows INTEGER, measured_at TEXT, role TEXT
);
CREATE TABLE IF NOT EXISTS claims (
    run_id TEXT, claim TEXT, lesson TEXT, comparison TEXT, backend TEXT, size TEXT, holds INTEGER,
    measured_speedup REAL, detail TEXT, measured_at TEXT
);
CREATE TABLE IF NOT EXISTS predictions (
    run_id TEXT PRIMARY KEY, lesson TEXT, comparison TEXT, backend TEXT, size TEXT, naive TEXT, best TEXT,
    predicted_speedup REAL, measured_speedup REAL, statements_of TEXT, predicted_statements INTEGER,
    measured_statements INTEGER, measured_at TEXT
);
"""


def results_path() -> Path:
    """data/results.sqlite, or COURSE_RESULTS_PATH (the tests keep their runs out of the learner's history)."""
    return Path(os.environ.get("COURSE_RESULTS_PATH") or data_dir() / "results.sqlite")


def _connect(path: Path | None = None) -> sqlite3.Connection:
    path = path or results_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=10)
    fresh = not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'measurements'").fetchone()
    conn.executescript(_SCHEMA)
    if fresh:  # a new store is written with today's lesson numbers: nothing in it to renumber
        conn.execute("INSERT OR IGNORE INTO store_meta VALUES ('lesson_numbering', ?)", (LESSON_NUMBERING,))
        conn.commit()
    columns = {row[1] for row in conn.execute("PRAGMA table_info(measurements)")}
    if "comparison" not in columns:  # a store written before comparisons had names: theirs is the lesson's
        conn.execute("ALTER TABLE measurements ADD COLUMN comparison TEXT")
        conn.execute("UPDATE measurements SET comparison = lesson")
        conn.commit()
    if "role" not in columns:  # a store written before variants had roles
        conn.execute("ALTER TABLE measurements ADD COLUMN role TEXT")
        conn.commit()
    return conn


def store(comparison: Comparison, path: Path | None = None) -> str:
    """Append one run of a comparison (a row per variant); returns the run's id."""
    run_id = uuid.uuid4().hex[:12]
    now = datetime.now(UTC).isoformat(timespec="seconds")
    name = comparison.title or comparison.lesson
    head = (run_id, comparison.lesson, name, comparison.backend, comparison.size)
    records = [
        (*head, *m.row().values(), comparison.roles.get(m.variant, ""), now) for m in comparison.measurements
    ]
    with closing(_connect(path)) as conn, conn:
        conn.executemany(_insert("measurements", COLUMNS), records)
        if (outcome := comparison.outcome) is not None:
            conn.execute(
                _insert("predictions", _PREDICTION_COLUMNS),
                (
                    *head, outcome.naive, outcome.best, outcome.predicted_speedup, outcome.measured_speedup,
                    outcome.statements_of, outcome.predicted_statements, outcome.measured_statements, now,
                ),
            )  # fmt: skip
        if comparison.claim is not None:
            naive, best = comparison.role("naive") or comparison.baseline, comparison.role("best")
            speedup = naive.median_s / best.median_s if best is not None else None
            detail = f"{best.variant!r} against {naive.variant!r}" if best is not None else ""
            conn.execute(
                _insert("claims", _CLAIM_COLUMNS),
                (run_id, comparison.claim, comparison.lesson, name, comparison.backend, comparison.size, None,
                 speedup, detail, now),
            )  # fmt: skip
    return run_id


def record_claim(claim: str, *, lesson: str, backend: str, size: str, holds: bool, detail: str) -> None:
    """Keep what a lesson found about one of the blog's claims when it is a fact, not a race (a cache key that
    leaks, a setting that is ignored): `holds` says whether the blog's advice, as written, held."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    row = (uuid.uuid4().hex[:12], claim, lesson, "", backend, size, int(holds), None, detail, now)
    with closing(_connect()) as conn, conn:
        conn.execute(_insert("claims", _CLAIM_COLUMNS), row)


def claims(path: Path | None = None) -> pd.DataFrame:
    """Every stored finding about the blog's claims, oldest first (races and recorded facts alike)."""
    import pandas as pd  # deferred: pandas is heavy; recording and storing run without it

    with closing(_connect(path)) as conn:
        frame = pd.read_sql_query(f"SELECT {', '.join(_CLAIM_COLUMNS)} FROM claims ORDER BY rowid", conn)
    frame["measured_at"] = pd.to_datetime(frame["measured_at"])
    return frame


def _insert(table: str, columns: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def history(lesson: str | None = None, path: Path | None = None) -> pd.DataFrame:
    """Stored measurements, oldest first (all lessons, or one)."""
    import pandas as pd  # deferred: pandas is heavy; recording and storing run without it

    query = f"SELECT {', '.join(COLUMNS)} FROM measurements"
    params: tuple[str, ...] = ()
    if lesson is not None:
        query += " WHERE lesson = ?"
        params = (lesson,)
    with closing(_connect(path)) as conn:
        frame = pd.read_sql_query(query + " ORDER BY id", conn, params=params)
    frame["measured_at"] = pd.to_datetime(frame["measured_at"])
    return frame


def predictions(lesson: str | None = None, path: Path | None = None) -> pd.DataFrame:
    """Stored predictions beside what their races measured, oldest first (all lessons, or one)."""
    import pandas as pd  # deferred: pandas is heavy; recording and storing run without it

    where, params = (" WHERE lesson = ?", (lesson,)) if lesson is not None else ("", ())
    with closing(_connect(path)) as conn:
        frame = pd.read_sql_query(
            f"SELECT {', '.join(_PREDICTION_COLUMNS)} FROM predictions{where} ORDER BY rowid", conn, params=params
        )
    frame["measured_at"] = pd.to_datetime(frame["measured_at"])
    return frame


def clear(lesson: str | None = None, path: Path | None = None) -> int:
    """Forget stored measurements and predictions (of one lesson, or all); returns how many rows were removed."""
    where, params = (" WHERE lesson = ?", (lesson,)) if lesson else ("", ())
    with closing(_connect(path)) as conn, conn:
        conn.execute("DELETE FROM predictions" + where, params)
        conn.execute("DELETE FROM claims" + where, params)
        return int(conn.execute("DELETE FROM measurements" + where, params).rowcount)

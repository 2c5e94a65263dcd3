"""The lessons were renumbered when indexing became two lessons (04 the fundamentals, 05 the endpoints' indexes):
what a learner saved under the old numbers follows them, once, the first time a lesson is set up.

Before: 04 indexing, 05 caching, 06 pooling, 07 batching, 08 profiling, 09 capstone. After: 04 index
fundamentals, 05 indexes for the endpoints, 06 caching, 07 pooling, 08 batching, 09 profiling, 10 capstone.
The endpoints lesson 04 had the learner rewrite (the order list by keyset, the search) are lesson 05's now.
"""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing
from pathlib import Path

from .config import data_dir
from .measure.results import LESSON_NUMBERING, results_path

__all__ = ["NUMBERING", "renumber_saved_work"]

NUMBERING = LESSON_NUMBERING  # written beside the saved answers, and in the results store, once they follow it
_MOVED = {"05": "06", "06": "07", "07": "08", "08": "09", "09": "10"}
# What lesson 04 measured about the endpoints (paging, search) is lesson 05's history now.
_ENDPOINT_TOPICS = re.compile(r"keyset|offset|pag(e|ing)|search|like|fragment|improve the app", re.IGNORECASE)


def renumber_saved_work(folder: Path | None = None, results: Path | None = None) -> list[str]:
    """Move the learner's saved endpoints and stored history to the current numbers, once each; say what moved.

    Each keeps its own mark: the answers a `.lesson-numbering` file beside them, the results store a row of its
    own (a store made by this version of the course is marked when it is created).
    """
    my_app = (folder or data_dir()) / "my_app"
    marker = my_app / ".lesson-numbering"
    moved = [] if marker.exists() else _rename_answers(my_app)
    my_app.mkdir(parents=True, exist_ok=True)
    marker.write_text(NUMBERING + "\n")
    return moved + _relabel_history(results or results_path())


def _new_number(old: str, endpoint: str) -> str:
    if old == "04" and endpoint in ("order_list", "search"):
        return "05"
    return _MOVED.get(old, old)


def _rename_answers(my_app: Path) -> list[str]:
    moved = []
    # Highest first, so that 05 → 06 never lands on an old 06 not yet moved.
    for path in sorted(my_app.glob("[0-9][0-9]_*.*"), reverse=True):
        old, _, endpoint = path.stem.partition("_")
        new = _new_number(old, endpoint)
        if new != old:
            target = path.with_name(f"{new}_{path.name[3:]}")
            path.rename(target)
            moved.append(f"{path.name} → {target.name}")
    return moved


def _relabel_history(path: Path) -> list[str]:
    if not path.exists():
        return []
    with closing(sqlite3.connect(path, timeout=10)) as conn, conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "measurements" not in tables:
            return []
        if "store_meta" in tables:
            mark = conn.execute("SELECT value FROM store_meta WHERE key = 'lesson_numbering'").fetchone()
            if mark is not None and mark[0] == NUMBERING:
                return []
        else:
            conn.execute("CREATE TABLE store_meta (key TEXT PRIMARY KEY, value TEXT)")
        changed = 0
        for old, new in sorted(_MOVED.items(), reverse=True):
            changed += conn.execute("UPDATE measurements SET lesson = ? WHERE lesson = ?", (new, old)).rowcount
        query = "SELECT DISTINCT comparison FROM measurements WHERE lesson = '04'"
        for (title,) in conn.execute(query).fetchall():
            if title and _ENDPOINT_TOPICS.search(title):
                changed += conn.execute(
                    "UPDATE measurements SET lesson = '05' WHERE lesson = '04' AND comparison = ?", (title,)
                ).rowcount
        conn.execute("INSERT OR REPLACE INTO store_meta VALUES ('lesson_numbering', ?)", (NUMBERING,))
    return [f"{changed} stored measurements relabelled to the new lesson numbers"] if changed else []

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
from .measure.results import results_path

__all__ = ["NUMBERING", "renumber_saved_work"]

NUMBERING = "2"  # written to data/.lesson-numbering once what was saved follows the current numbers
_MOVED = {"05": "06", "06": "07", "07": "08", "08": "09", "09": "10"}
# What lesson 04 measured about the endpoints (paging, search) is lesson 05's history now.
_ENDPOINT_TOPICS = re.compile(r"keyset|offset|pag(e|ing)|search|like|fragment|improve the app", re.IGNORECASE)


def renumber_saved_work(folder: Path | None = None, results: Path | None = None) -> list[str]:
    """Move the learner's saved endpoints and stored history to the current numbers, once; say what moved."""
    folder = folder or data_dir()
    marker = folder / ".lesson-numbering"
    if marker.exists():
        return []
    moved = _rename_answers(folder / "my_app") + _relabel_history(results or results_path())
    folder.mkdir(parents=True, exist_ok=True)
    marker.write_text(NUMBERING + "\n")
    return moved


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
        changed = 0
        for old, new in sorted(_MOVED.items(), reverse=True):
            changed += conn.execute("UPDATE measurements SET lesson = ? WHERE lesson = ?", (new, old)).rowcount
        titles = [
            row[0] for row in conn.execute("SELECT DISTINCT comparison FROM measurements WHERE lesson = '04'")
        ]
        for title in titles:
            if title and _ENDPOINT_TOPICS.search(title):
                changed += conn.execute(
                    "UPDATE measurements SET lesson = '05' WHERE lesson = '04' AND comparison = ?", (title,)
                ).rowcount
    return [f"{changed} stored measurements relabelled to the new lesson numbers"] if changed else []

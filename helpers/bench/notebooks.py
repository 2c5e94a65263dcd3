"""`make bench-notebooks`: how long every notebook takes top to bottom on a fresh kernel, and the whole course.

Goals (reported, never asserted): each notebook ≤ 60 s at `small`, the whole course ≤ 3 minutes at `tiny`.
"""

from __future__ import annotations

import importlib
import time
from typing import Any

from ..config import PROJECT_ROOT
from ..lessons import LESSONS

NOTEBOOK_GOAL_S = 60.0
COURSE_GOAL_S = 180.0


def _execute(path: Any, size: str) -> float:
    # The same runner as the tests; tools/ lives beside helpers/ in the project (make runs from its root).
    runner = importlib.import_module("tools.run_notebook")
    started = time.perf_counter()
    runner.execute(path, size=size, backend="sqlite", cache="simple")
    return time.perf_counter() - started


def time_notebooks(size: str | None = None) -> list[dict[str, Any]]:
    """Each notebook at `size` (default small), then the whole course at tiny; one record per run."""
    size = size or "small"
    records: list[dict[str, Any]] = []

    def record(benchmark: str, variant: str, seconds: float, goal_s: float) -> None:
        print(f"  · {variant} at {benchmark.rsplit('_', 1)[-1]}: {seconds:.1f} s", flush=True)
        records.append(
            {
                "benchmark": benchmark,
                "variant": variant,
                "backend": "sqlite",
                "size": benchmark.rsplit("_", 1)[-1],
                "median_s": seconds,
                "spread_s": 0.0,
                "runs": 1,
                "ratio_vs_baseline": 1.0,
                "ratio_vs_floor": "",
                "goal": f"≤ {goal_s:.0f} s",
                "meets": "yes" if seconds <= goal_s else "NO",
            }
        )

    print(f"Every notebook at {size}, on a fresh kernel each:", flush=True)
    for lesson in LESSONS:
        path = PROJECT_ROOT / "notebooks" / lesson.filename
        record(f"notebook_{size}", lesson.filename, _execute(path, size), NOTEBOOK_GOAL_S)
    print("The whole course at tiny:", flush=True)
    started = time.perf_counter()
    for lesson in LESSONS:
        _execute(PROJECT_ROOT / "notebooks" / lesson.filename, "tiny")
    record("course_tiny", "all notebooks", time.perf_counter() - started, COURSE_GOAL_S)
    return records

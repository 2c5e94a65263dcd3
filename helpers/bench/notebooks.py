"""`make bench-notebooks`: how long every notebook takes top to bottom on a fresh kernel, and the whole course.

Goals (reported, never asserted): each notebook ≤ 60 s at `small`, the whole course ≤ 3 minutes at `tiny`.
"""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import PROJECT_ROOT
from ..lessons import LESSONS

if TYPE_CHECKING:
    from nbformat import NotebookNode

__all__ = ["execute_notebook", "time_notebooks"]

_NOTEBOOK_GOAL_S = 60.0
_COURSE_GOAL_S = 180.0


def execute_notebook(
    path: Path, *, size: str, backend: str, cache: str, timeout: int = 900, times: int = 1
) -> NotebookNode:
    """Run every cell of `path` in a new kernel with the course environment set; raise on the first error.

    The one runner of the tests, `make bench-notebooks` and `make site`. `times=2` runs all cells twice in the
    same kernel, as a learner pressing Run All again would.
    """
    # deferred: nbformat and nbclient come with the development tools (make test, make bench), not the lessons
    import nbformat
    from nbclient import NotebookClient

    nb: NotebookNode = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    nb.cells = [copy.deepcopy(cell) for _ in range(times) for cell in nb.cells]
    env = {
        "COURSE_SIZE": size,
        "COURSE_BACKEND": backend,
        "COURSE_CACHE": cache,
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "COURSE_ONCALL_APPLY_REFERENCE": "1",  # the on-call lesson applies its reference fix (its test mode)
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        client = NotebookClient(
            nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
        )
        client.execute()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


def _execute(path: Path, size: str) -> float:
    started = time.perf_counter()
    execute_notebook(path, size=size, backend="sqlite", cache="simple")
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
        record(f"notebook_{size}", lesson.filename, _execute(path, size), _NOTEBOOK_GOAL_S)
    print("The whole course at tiny:", flush=True)
    started = time.perf_counter()
    for lesson in LESSONS:
        _execute(PROJECT_ROOT / "notebooks" / lesson.filename, "tiny")
    record("course_tiny", "all notebooks", time.perf_counter() - started, _COURSE_GOAL_S)
    return records

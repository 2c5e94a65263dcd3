"""Instructions per call of each variant, counted by valgrind's callgrind: the same count whatever else the
machine is doing, where a time moves with every other program on a shared machine.

    python -m helpers bench --instructions --only keyset_paging,endpoint_customer_page [--backends sqlite]

It runs the chosen races in a child Python under `valgrind --tool=callgrind` and, for each variant, counts the
instructions of N calls and of 2N calls (callgrind_control dumps between them): the difference over N is one
call, the dumps' own cost taken out. Only this process is counted, not a PostgreSQL server's: on PostgreSQL the
figures are the client's share of the work (what the layers between the app and the driver add is all there).
A variant slower than a few seconds a call under valgrind (a naive baseline) is left out.
"""

from __future__ import annotations

import gc
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..config import PROJECT_ROOT
from ..course import setup
from ..errors import CourseError
from .registry import REGISTRY

__all__ = ["CPU_RACES", "count", "table"]

# The races where the layers between the app and the driver are the subject (those counted by default).
CPU_RACES = (
    "keyset_paging", "pooled_request", "cached_hit", "endpoint_customer_page", "endpoint_order_list",
    "endpoint_search", "endpoint_sales_report",
)  # fmt: skip
_SLOWEST_CALL_S = 3.0  # under valgrind, about 50 times a native call: a variant slower than this is left out
_SPENT_PER_VARIANT_S = 6.0  # the N calls of a variant take about this long under valgrind


def count(names: Sequence[str], backends: Sequence[str], size: str | None) -> list[dict[str, Any]]:
    """Instructions per call of every variant of the named benchmarks, on each backend (one record a variant)."""
    valgrind = shutil.which("valgrind")
    if valgrind is None or shutil.which("callgrind_control") is None:
        raise CourseError("valgrind is not installed: install it (apt install valgrind) to count instructions.")
    records: list[dict[str, Any]] = []
    for backend in backends:
        with tempfile.TemporaryDirectory(prefix="course-callgrind-") as folder:
            work = Path(folder)
            spec = {"names": list(names), "backend": backend, "size": size, "out": str(work / "calls.json")}
            command = [valgrind, "--tool=callgrind", f"--callgrind-out-file={work}/cg.%p"]
            command += [sys.executable, "-m", __name__, json.dumps(spec)]
            print(f"  · counting {', '.join(names)} on {backend} under callgrind", flush=True)
            child = subprocess.run(
                command, cwd=PROJECT_ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False
            )
            if child.returncode != 0 or not (work / "calls.json").exists():
                last = [line for line in child.stderr.splitlines() if line.strip()][-1:] or ["no output"]
                raise CourseError(f"counting under callgrind failed ({last[0]}).")
            records += _per_call(json.loads((work / "calls.json").read_text()), _dumps(work))
    return records


def _dumps(folder: Path) -> dict[str, int]:
    """Each callgrind dump's trigger label and its instruction total."""
    totals = {}
    for path in folder.glob("cg.*"):
        text = path.read_text(errors="replace")
        label, total = (
            re.search(r"^desc: Trigger: dump (\S+)", text, re.M),
            re.search(r"^totals: (\d+)", text, re.M),
        )
        if label and total:
            totals[label.group(1)] = int(total.group(1))
    return totals


def _per_call(calls: list[dict[str, Any]], totals: dict[str, int]) -> list[dict[str, Any]]:
    """Instructions per call: (2N calls − N calls) ÷ N, and each variant ÷ its race's floor."""
    records = []
    for call in calls:
        n, key = call.pop("calls"), call.pop("key")
        once, twice = totals.get(f"{key}-n"), totals.get(f"{key}-2n")
        call["instructions"] = (twice - once) / n if n and once is not None and twice is not None else None
        records.append(call)
    floors = {(r["benchmark"], r["backend"]): r["instructions"] for r in records if r["variant"] == r["floor"]}
    for r in records:
        floor = floors.get((r["benchmark"], r["backend"]))
        r["ratio_vs_floor"] = r["instructions"] / floor if floor and r["instructions"] else None
    return records


def table(records: list[dict[str, Any]]) -> str:
    """Instructions per call (thousands) and × floor, by benchmark, backend and variant."""

    frame = pd.DataFrame(records).set_index(["benchmark", "backend", "variant"])
    shown = pd.DataFrame(
        {
            "k instructions": frame["instructions"].map(lambda i: "left out" if i != i else f"{i / 1000:,.0f}"),
            "× floor": frame["ratio_vs_floor"].map(lambda r: "" if r != r else f"{r:.2f}"),
        }
    )
    return str(shown.to_string())


# ------------------------------------------------------------------------------------ the child, under valgrind
def _dump(label: str) -> None:
    subprocess.run(["callgrind_control", f"--dump={label}", str(os.getpid())], capture_output=True, timeout=300)


def _calls_for(first_s: float) -> int:
    """N: about _SPENT_PER_VARIANT_S for the 3N calls, at least 2 (a first call under valgrind is the slowest)."""
    return max(2, int(_SPENT_PER_VARIANT_S / 3 / max(first_s, 1e-6)))


def _child(spec: dict[str, Any]) -> None:

    course = setup("bench", size=spec["size"], backend=spec["backend"], quiet=True)
    calls: list[dict[str, Any]] = []
    try:
        for bench in [b for b in REGISTRY if b.name in spec["names"]]:
            race = bench.make(course)
            if race is None or not race.variants:
                continue
            try:
                for i, (variant, fn) in enumerate(race.variants.items()):
                    key = f"{bench.name}.{i}"
                    started = time.perf_counter()
                    fn()
                    first_s = time.perf_counter() - started
                    n = (
                        0
                        if first_s > _SLOWEST_CALL_S
                        else max(2, int(_SPENT_PER_VARIANT_S / 3 / max(first_s, 1e-6)))
                    )
                    for _ in range(min(n, 3)):
                        fn()  # warm
                    if n:
                        # As the harness does: what is alive now is frozen out of the collector's sight, so a full
                        # collection landing in one window walks only what the calls left, not the whole heap.
                        gc.collect()
                        gc.freeze()
                        _dump(f"{key}-start")
                        for _ in range(n):
                            fn()
                        _dump(f"{key}-n")
                        for _ in range(2 * n):
                            fn()
                        _dump(f"{key}-2n")
                    where = {"benchmark": bench.name, "backend": course.backend, "size": course.size}
                    calls.append({**where, "variant": variant, "floor": race.floor or "", "calls": n, "key": key})
            finally:
                for cleanup in race.cleanup:
                    cleanup()
    finally:
        course.engine.dispose()
    Path(spec["out"]).write_text(json.dumps(calls))


if __name__ == "__main__":
    _child(json.loads(sys.argv[1]))

"""Run the registered benchmarks on each backend in one invocation; records, the CSV, the printed table."""

from __future__ import annotations

import csv
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..config import settings
from ..course import Course, setup
from ..errors import CourseError
from ..measure.harness import Measurement, check_same, run_variants
from .registry import REGISTRY, Benchmark, Race

__all__ = ["BACKENDS", "COLUMNS", "run", "selected", "stability", "table", "write_csv"]

COLUMNS = (
    "benchmark", "variant", "backend", "size", "median_s", "spread_s", "runs",
    "ratio_vs_baseline", "ratio_vs_floor",
)  # fmt: skip
BACKENDS = ("sqlite", "postgres")


def selected(only: Sequence[str] | None) -> list[Benchmark]:
    """The registered benchmarks, or those named in `only` (a one-line error for an unknown name)."""
    names = [b.name for b in REGISTRY]
    unknown = [name for name in only or () if name not in names]
    if unknown:
        raise CourseError(f"Unknown benchmark {', '.join(unknown)}: choose from {', '.join(names)}.")
    return [b for b in REGISTRY if not only or b.name in only]


def _measure_race(bench: Benchmark, race: Race, repeat: int | None) -> list[Measurement]:
    """Time a race's variants side by side (or take the measurements it made), and check they agree."""
    if race.measured is not None:
        return race.measured
    measurements = run_variants(race.variants, repeat=repeat or bench.repeat, warmup=1, budget_s=60)
    if race.same_result:
        check_same(measurements, race.key)
    return measurements


def _records_of(bench: Benchmark, course: Course, race: Race, ms: list[Measurement]) -> list[dict[str, Any]]:
    """One CSV record per variant: ratio_vs_baseline = naive ÷ variant, ratio_vs_floor = variant ÷ floor."""
    base = ms[0].median_s
    floor = next((m.median_s for m in ms if m.variant == race.floor), None)
    goals = {goal.variant: goal for goal in race.goals}
    records = []
    for m in ms:
        vs_floor = m.median_s / floor if floor else None
        goal = goals.get(m.variant)
        records.append(
            {
                "benchmark": bench.name,
                "variant": m.variant,
                "backend": course.backend,
                "size": course.size,
                "median_s": m.median_s,
                "spread_s": m.spread_s,
                "runs": m.runs,
                "ratio_vs_baseline": base / m.median_s,
                "ratio_vs_floor": "" if vs_floor is None else vs_floor,
                # printed beside the figure, not written to the CSV
                "goal": goal.text() if goal else "",
                "meets": "" if goal is None or vs_floor is None else ("yes" if goal.met(vs_floor) else "NO"),
            }
        )
    return records


def run(
    backends: Sequence[str],
    *,
    size: str | None = None,
    only: Sequence[str] | None = None,
    repeat: int | None = None,
    out: Any = sys.stdout,
) -> list[dict[str, Any]]:
    """Run the selected benchmarks on each backend, printing progress; return one record per variant."""
    benchmarks = selected(only)
    records: list[dict[str, Any]] = []
    mine = settings().database_url
    if mine:
        backends = backends[:1]  # DATABASE_URL names one database whatever the backend: run once, on it
    for backend in backends:
        course = setup("bench", size=size, backend=backend, quiet=True)
        where = " (DATABASE_URL: that database only)" if mine else ""
        print(
            f"{course.backend}, size {course.size} ({course.info.total_rows:,} rows){where}:", file=out, flush=True
        )
        try:
            for bench in benchmarks:
                started = time.perf_counter()
                print(f"  · {bench.name}: {bench.doc}", file=out, end="", flush=True)
                race = bench.make(course)
                if race is None:
                    print(" (not on this backend)", file=out, flush=True)
                    continue
                try:
                    measurements = _measure_race(bench, race, repeat)
                finally:
                    for cleanup in race.cleanup:
                        cleanup()
                records += _records_of(bench, course, race, measurements)
                print(f" [{time.perf_counter() - started:.1f} s]", file=out, flush=True)
        finally:
            course.engine.dispose()
    return records


def write_csv(records: list[dict[str, Any]], path: Path) -> None:
    """data/bench/latest.csv: the promised columns only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records)


def table(records: list[dict[str, Any]]) -> str:
    """The records as a readable table: ms with sensible digits, ratios, goals."""
    import pandas as pd

    from ..measure.units import in_ms, ms_text

    frame = in_ms(pd.DataFrame(records)).set_index(["benchmark", "backend", "variant"])
    frame["median_ms"] = frame["median_ms"].map(ms_text)
    frame["iqr_ms"] = frame["iqr_ms"].map(ms_text)
    frame["× baseline"] = frame["ratio_vs_baseline"].map(lambda r: f"{r:.2f}")
    frame["× floor"] = frame["ratio_vs_floor"].map(lambda r: "" if r == "" else f"{r:.2f}")
    columns = ["median_ms", "iqr_ms", "runs", "× baseline", "× floor", "goal", "meets"]
    return str(frame[columns].to_string())


def stability(first: list[dict[str, Any]], second: list[dict[str, Any]]) -> str:
    """How much each median moved between two runs of the suite, and how much each ratio within a race moved.

    On a shared machine the whole machine speeds up and slows down: medians then move together, while ratios
    measured within one run (what the course compares) move much less. Both are reported (goal: within 10%).
    """
    import pandas as pd

    key = ["benchmark", "backend", "variant"]

    def frame(records: list[dict[str, Any]]) -> pd.DataFrame:
        f = pd.DataFrame(records).set_index(key)[["median_s"]]
        first_of_race = f.groupby(level=["benchmark", "backend"], sort=False)["median_s"].transform("first")
        return f.assign(ratio=f["median_s"] / first_of_race)

    a, b = frame(first), frame(second)
    moved = pd.DataFrame(
        {
            "median moved": ((b["median_s"] - a["median_s"]).abs() / a["median_s"]),
            "ratio moved": ((b["ratio"] - a["ratio"]).abs() / a["ratio"]),
        }
    ).dropna()
    lines = moved.map(lambda r: f"{r:.0%}").to_string()
    medians, ratios = int((moved["median moved"] <= 0.10).sum()), int((moved["ratio moved"] <= 0.10).sum())
    return (
        f"{lines}\n\n{medians} of {len(moved)} medians and {ratios} of {len(moved)} ratios within a race "
        "(variant ÷ the race's first variant) moved by 10% or less between the two runs."
    )

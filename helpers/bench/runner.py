"""Run the registered benchmarks on each backend in one invocation; records, the CSV, the printed table."""

from __future__ import annotations

import csv
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..config import SIZES, settings
from ..course import Course, setup
from ..errors import CourseError
from ..measure.harness import Measurement, check_same, run_variants
from ..measure.units import in_ms, ms_text
from .registry import REGISTRY, Benchmark, Race

__all__ = [
    "BACKENDS",
    "COLUMNS",
    "details_of",
    "load_table",
    "run",
    "selected",
    "size_table",
    "stability",
    "table",
    "write_csv",
    "write_rows",
]

COLUMNS = (
    "benchmark", "variant", "backend", "size", "median_s", "spread_s", "runs",
    "ratio_vs_baseline", "ratio_vs_floor",
)  # fmt: skip
BACKENDS = ("sqlite", "postgres")
# Each sample of a sub-millisecond variant lasts at least this long (a batch of calls): a call of a few
# microseconds timed alone is mostly the clock, and one descheduling of the process moves it by multiples.
_MIN_SAMPLE_S = 0.001


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
    measurements = run_variants(
        race.variants, repeat=repeat or bench.repeat, warmup=1, budget_s=60, min_sample_s=_MIN_SAMPLE_S
    )
    if race.same_result:
        check_same(measurements, race.key)
    return measurements


def _records_of(bench: Benchmark, course: Course, race: Race, ms: list[Measurement]) -> list[dict[str, Any]]:
    """One CSV record per variant: ratio_vs_baseline = naive ÷ variant, ratio_vs_floor = variant ÷ floor."""
    base = ms[0].median_s
    floor = next((m.median_s for m in ms if m.variant == race.floor), None)
    goals = {goal.variant: goal for goal in race.goals}
    records = []
    for i, m in enumerate(ms):
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
                "floor": race.floor or "",
                "batch": m.batch,
                # the side table's rows (per endpoint under load), carried by the race's first record
                "details": [{"backend": course.backend, "size": course.size, **row} for row in race.details]
                if i == 0
                else [],
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

    frame = in_ms(pd.DataFrame(records)).set_index(["benchmark", "backend", "variant"])
    frame["median_ms"] = frame["median_ms"].map(ms_text)
    frame["iqr_ms"] = frame["iqr_ms"].map(ms_text)
    frame["× baseline"] = frame["ratio_vs_baseline"].map(lambda r: f"{r:.2f}")
    frame["× floor"] = frame["ratio_vs_floor"].map(lambda r: "" if r == "" else f"{r:.2f}")
    columns = ["median_ms", "iqr_ms", "runs", "× baseline", "× floor", "goal", "meets"]
    return str(frame[columns].to_string())


def stability(first: list[dict[str, Any]], second: list[dict[str, Any]]) -> str:
    """How much each median moved between two runs of the suite, and how much each ratio the table reports moved.

    On a shared machine the whole machine speeds up and slows down: medians then move together, while ratios
    measured within one run (what the course compares) move much less. The ratios are each variant's
    `× baseline` (naive ÷ variant) and `× floor` (variant ÷ floor), leaving out those that are 1 by definition
    (a race's naive variant against itself, its floor against itself). Goal: within 10%.
    """

    a, b = _ratios(first), _ratios(second)
    moved = ((b - a).abs() / a).reindex(a.index)
    shown = moved.map(lambda r: "" if r != r else f"{r:.0%}").to_string()
    medians = moved["median_s"].dropna()
    ratios = pd.concat([moved["× baseline"], moved["× floor"]]).dropna()
    steady_medians, steady = int((medians <= 0.10).sum()), int((ratios <= 0.10).sum())
    per_100 = 100 * steady / max(1, len(ratios))
    return (
        f"{shown}\n\n{steady_medians} of {len(medians)} medians and {steady} of {len(ratios)} ratios "
        f"(× baseline and × floor) moved by 10% or less between the two runs: {per_100:.0f} of every 100 ratios."
    )


def _ratios(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Medians, × baseline and × floor by (benchmark, backend, variant), NaN where a ratio is 1 by definition."""

    races: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for record in records:
        races.setdefault((record["benchmark"], record["backend"]), []).append(record)
    rows = {}
    for (name, backend), race in races.items():
        naive = race[0]["median_s"]
        floor = next((r["median_s"] for r in race if r["variant"] == r.get("floor")), None)
        for i, r in enumerate(race):
            rows[(name, backend, r["variant"])] = {
                "median_s": r["median_s"],
                "× baseline": naive / r["median_s"] if i else math.nan,
                "× floor": r["median_s"] / floor if floor and r["variant"] != r.get("floor") else math.nan,
            }
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.names = ["benchmark", "backend", "variant"]
    return frame


def details_of(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The side-table rows the races carried (per endpoint under load)."""
    return [row for record in records for row in record.get("details", [])]


def load_table(rows: list[dict[str, Any]]) -> str:
    """Per endpoint under load, app beside floor: throughput and p50/p95/p99, median (min–max) over the runs."""

    def cell(row: pd.Series, name: str, digits: str) -> str:
        return f"{row[name]:{digits}} ({row[name + '_min']:{digits}}–{row[name + '_max']:{digits}})"

    frame = pd.DataFrame(rows)
    shown = pd.DataFrame(
        {
            "throughput rps": frame.apply(lambda r: cell(r, "throughput_rps", ".0f"), axis=1),
            **{
                f"{q} ms": frame.apply(lambda r, q=q: cell(r, f"{q}_ms", ".1f"), axis=1)
                for q in ("p50", "p95", "p99")
            },
            "runs": frame["runs"],
        }
    )
    shown.index = pd.MultiIndex.from_frame(frame[["backend", "endpoint", "server"]])
    rps = frame.set_index(["backend", "endpoint", "server"])["throughput_rps"].unstack("server")
    share = (rps["app"] / rps["floor"]).map(lambda r: f"{r:.2f}")
    return (
        f"{shown.sort_index(level=[0, 1], sort_remaining=False).to_string()}\n\n"
        f"The app's throughput ÷ the floor's, by endpoint (medians):\n{share.to_string()}"
    )


def write_rows(rows: list[dict[str, Any]], path: Path) -> None:
    """Rows of dicts as a CSV, columns in the order of the first row."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def size_table(folder: Path) -> str | None:
    """× baseline and × floor of every variant at each size measured (by-size/<size>.csv), side by side."""

    files = {p.stem: p for p in folder.glob("*.csv")}
    sizes = [size for size in SIZES if size in files]
    if len(sizes) < 2:
        return None
    frames = {
        size: pd.read_csv(files[size]).set_index(["benchmark", "backend", "variant"])[
            ["ratio_vs_baseline", "ratio_vs_floor"]
        ]
        for size in sizes
    }
    joined = pd.concat(frames, axis=1).swaplevel(axis=1).sort_index(axis=1, level=0, sort_remaining=False)
    names = {"ratio_vs_baseline": "× baseline", "ratio_vs_floor": "× floor"}
    joined.columns = [f"{names[ratio]} {size}" for ratio, size in joined.columns]
    return str(joined.map(lambda r: "" if r != r else f"{r:.2f}").to_string())

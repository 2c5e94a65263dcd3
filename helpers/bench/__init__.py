"""`make bench`: every lesson's key comparison against its naive form and its floor, on both backends, in one run.

    python -m helpers bench [--size small] [--backends sqlite,postgres] [--only projection,n_plus_one]
                            [--repeat 5] [--repeat-run] [--notebooks]

One module per topic, as in SQLAlchemy's examples/performance: `reads` (02–05), `writes` (00, 08), `web`
(06, 07, 10 and the endpoints), `notebooks` (execution times); `registry` declares, `runner` runs.
Writes data/bench/latest.csv with the columns in `COLUMNS`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..config import data_dir
from ..errors import CourseError
from . import reads, web, writes
from .registry import REGISTRY, Benchmark, Goal, Race, benchmark
from .runner import (
    BACKENDS,
    COLUMNS,
    details_of,
    load_table,
    run,
    selected,
    size_table,
    stability,
    table,
    write_csv,
    write_rows,
)

REGISTRY.sort(key=lambda b: b.lesson)  # stable: within a lesson, declaration order

__all__ = [
    "BACKENDS",
    "COLUMNS",
    "REGISTRY",
    "Benchmark",
    "CourseError",
    "Goal",
    "Race",
    "benchmark",
    "data_dir",
    "details_of",
    "load_table",
    "main",
    "reads",
    "run",
    "selected",
    "size_table",
    "stability",
    "table",
    "web",
    "write_csv",
    "write_rows",
    "writes",
]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--size", default=None, help="tiny, small, medium or large (default: COURSE_SIZE or small)"
    )
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated: sqlite,postgres")
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument("--repeat", type=int, default=None, help="timed runs per variant (default: per benchmark)")
    parser.add_argument("--repeat-run", action="store_true", help="run the suite twice; report how medians moved")
    parser.add_argument("--notebooks", action="store_true", help="time every notebook instead (see notebooks.py)")
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions per call under valgrind (instructions.py)"
    )
    parser.add_argument("--out", type=Path, default=None, help="CSV path (default: data/bench/latest.csv)")
    args = parser.parse_args(argv)
    out = args.out or data_dir() / "bench" / ("notebooks.csv" if args.notebooks else "latest.csv")
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    try:
        unknown = [b for b in backends if b not in BACKENDS]
        if unknown or not backends:
            raise CourseError(
                f"Unknown backend {', '.join(unknown) or '(none)'}: choose from {', '.join(BACKENDS)}."
            )
        if args.notebooks:
            from .notebooks import time_notebooks  # deferred: only for --notebooks (starts kernels)

            records = time_notebooks(args.size)
        elif args.instructions:
            from . import instructions  # deferred: only for --instructions (runs under valgrind)

            only = [n for n in args.only.split(",") if n] or list(instructions.CPU_RACES)
            counted = instructions.count([b.name for b in selected(only)], backends, args.size)
            write_rows(counted, out.with_name("instructions.csv"))
            print("\n" + instructions.table(counted) + f"\n\nWritten to {out.with_name('instructions.csv')}")
            return 0
        else:
            only = [n for n in args.only.split(",") if n]
            records = run(backends, size=args.size, only=only, repeat=args.repeat)
            if args.repeat_run:
                print("\nSecond run, for stability (the table below is this run):", flush=True)
                again = run(backends, size=args.size, only=only, repeat=args.repeat)
                print("\n" + stability(records, again))
                records = again
    except CourseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_csv(records, out)
    print("\n" + table(records))
    if details := details_of(records):
        write_rows(details, out.with_name("load.csv"))
        print("\nUnder load, per endpoint (median and range over the runs):\n" + load_table(details))
    if not args.notebooks and records and not args.only:  # a whole run: the latest at its size
        by_size = out.parent / "by-size"
        write_csv(records, by_size / f"{records[0]['size']}.csv")
        if moved := size_table(by_size):
            print("\nHow each ratio moves with size (the latest run at each size):\n" + moved)
    print(f"\nWritten to {out}")
    return 0

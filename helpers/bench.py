"""`make bench`: the course's comparisons side by side in one run, as a table and data/bench/latest.csv.

    python -m helpers bench [--size small] [--only dataset_build,projection] [--repeat 5]

Each benchmark is a function registered with @benchmark that returns its variants, naive first (the
baseline); a variant named in `floor=` is the fastest possible way (the raw driver) that others are held to.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sqlite3
import sys
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session, joinedload

from .config import data_dir
from .course import Course, setup
from .data import build_dataset, drop_copy, generate_rows
from .db import make_engine
from .errors import CourseError
from .harness import Measurement, check_same, in_ms, run_variants
from .shop.models import Base, Customer, Order

COLUMNS = (
    "benchmark", "variant", "backend", "size", "median_s", "spread_s", "runs",
    "ratio_vs_baseline", "ratio_vs_floor",
)  # fmt: skip

Variants = dict[str, Callable[[], Any]]


@dataclass(frozen=True)
class Benchmark:
    name: str
    doc: str
    make: Callable[[Course], Variants]
    floor: str | None
    repeat: int
    same_result: bool


REGISTRY: list[Benchmark] = []
_CLEANUP: list[Callable[[], None]] = []  # what benchmarks made (copies, files), undone after the run


def _private_copy(course: Course, name: str) -> Course:
    copy = course.private_copy(name)

    def remove() -> None:
        copy.engine.dispose()
        drop_copy(copy.url)

    _CLEANUP.append(remove)
    return copy


def benchmark(
    floor: str | None = None, repeat: int = 7, same_result: bool = True
) -> Callable[[Callable[[Course], Variants]], Any]:
    """Register a function returning {variant: callable}; its docstring is the benchmark's label."""

    def register(make: Callable[[Course], Variants]) -> Callable[[Course], Variants]:
        REGISTRY.append(Benchmark(make.__name__, (make.__doc__ or "").strip(), make, floor, repeat, same_result))
        return make

    return register


# ---------------------------------------------------------------- the benchmarks
@benchmark(floor="raw driver executemany", repeat=3)
def dataset_build(course: Course) -> Variants:
    """Build the dataset (SQLite file) vs the raw driver inserting the same pre-generated rows."""
    workdir = data_dir() / "bench" / "build"
    workdir.mkdir(parents=True, exist_ok=True)
    _CLEANUP.append(lambda: shutil.rmtree(workdir, ignore_errors=True))
    rows = list(generate_rows(course.size))  # generated once, outside the timed region

    def course_builder() -> int:
        path = workdir / "built.sqlite"
        path.unlink(missing_ok=True)
        return build_dataset(
            course.size, url=URL.create("sqlite+pysqlite", database=str(path)), progress=False
        ).total_rows

    def raw_executemany() -> int:
        path = workdir / "floor.sqlite"
        path.unlink(missing_ok=True)
        engine = make_engine(URL.create("sqlite+pysqlite", database=str(path)))
        Base.metadata.create_all(engine)
        engine.dispose()
        total = 0
        with closing(sqlite3.connect(path, isolation_level=None)) as raw:
            raw.execute("PRAGMA journal_mode = OFF")
            raw.execute("PRAGMA synchronous = OFF")
            raw.execute("BEGIN")
            for table, chunk in rows:
                raw.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(chunk[0]))})", chunk)
                total += len(chunk)
            raw.execute("COMMIT")
        return total

    return {"course builder": course_builder, "raw driver executemany": raw_executemany}


@benchmark()
def projection(course: Course) -> Variants:
    """5000 customers: whole entities vs the two columns used."""
    n = min(5000, course.info.rows["customers"])

    def entities() -> list[tuple[int, str]]:
        with Session(course.engine) as s:
            return [(c.id, c.name) for c in s.scalars(select(Customer).order_by(Customer.id).limit(n))]

    def columns() -> list[tuple[int, str]]:
        with Session(course.engine) as s:
            return [
                (r.id, r.name)
                for r in s.execute(select(Customer.id, Customer.name).order_by(Customer.id).limit(n))
            ]

    return {"whole entities": entities, "select(columns)": columns}


@benchmark()
def n_plus_one(course: Course) -> Variants:
    """500 newest orders with their customer's name: lazy loading vs joinedload vs join + columns."""
    # Ids grow with created_at, and ordering by the primary key needs no sort: the time is the loading.
    newest = select(Order).order_by(Order.id.desc()).limit(500)

    def lazy() -> list[tuple[int, str]]:
        with Session(course.engine) as s:
            return [(o.id, o.customer.name) for o in s.scalars(newest)]

    def joined() -> list[tuple[int, str]]:
        with Session(course.engine) as s:
            return [(o.id, o.customer.name) for o in s.scalars(newest.options(joinedload(Order.customer)))]

    def join_columns() -> list[tuple[int, str]]:
        with Session(course.engine) as s:
            q = select(Order.id, Customer.name).join(Order.customer).order_by(Order.id.desc()).limit(500)
            return [(r.id, r.name) for r in s.execute(q)]

    return {"lazy (N+1)": lazy, "joinedload": joined, "join + columns": join_columns}


@benchmark(repeat=5)
def index_lookup(course: Course) -> Variants:
    """50 lookups of orders by customer id: no index vs an index (on a private copy)."""
    lab = _private_copy(course, "bench")
    ids = list(range(1, 51))
    query = text("SELECT id, total FROM orders WHERE customer_id = :cid ORDER BY id")

    def lookups(engine: Any) -> list[Any]:
        with engine.connect() as conn:
            return [tuple(r) for cid in ids for r in conn.execute(query, {"cid": cid})]

    with_index = _private_copy(course, "bench_indexed")
    with with_index.engine.begin() as conn:
        conn.execute(text("CREATE INDEX ix_orders_customer_id ON orders (customer_id)"))
        conn.execute(text("ANALYZE"))
    return {"no index": lambda: lookups(lab.engine), "index": lambda: lookups(with_index.engine)}


@benchmark(repeat=5, same_result=False)
def baseline_endpoints(course: Course) -> Variants:
    """The baseline app's endpoints through the test client (each its own variant, not a race)."""
    app = course.app()
    _CLEANUP.append(app.extensions["engine"].dispose)  # its pooled connections, closed after the run
    client = app.test_client()
    urls = {
        "customer page": "/customers/1",
        "order list": "/orders?page=1&per_page=20",
        "search": "/search?city=Lisbon&name=an&limit=20",
        "sales report": "/reports/sales?days=7",
    }

    def call(url: str) -> Callable[[], int]:
        return lambda: client.get(url).status_code

    return {name: call(url) for name, url in urls.items()}


@benchmark(repeat=50)
def connection_cost(course: Course) -> Variants:
    """Open a connection and run SELECT 1: a new connection each time (NullPool) vs a pooled one (QueuePool)."""
    from sqlalchemy.pool import NullPool

    fresh, pooled = make_engine(course.url, poolclass=NullPool), make_engine(course.url)
    _CLEANUP.extend((fresh.dispose, pooled.dispose))

    def select_one(engine: Any) -> Callable[[], int]:
        def run() -> int:
            with engine.connect() as conn:
                return int(conn.execute(text("SELECT 1")).scalar_one())

        return run

    return {"new connection (NullPool)": select_one(fresh), "pooled (QueuePool)": select_one(pooled)}


@benchmark(repeat=5)
def order_list_latency(course: Course) -> Variants:
    """The baseline order list (an N+1) with 0 and 2 ms added per round trip to PostgreSQL (skipped on SQLite)."""
    if course.backend != "postgresql" or course.settings.database_url:
        return {}

    def order_list(delay: float) -> Callable[[], Any]:
        slow, proxy = course.with_latency(delay)
        app = slow.app()
        _CLEANUP.extend((proxy.close, slow.engine.dispose, app.extensions["engine"].dispose))
        client = app.test_client()
        return lambda: client.get("/orders?per_page=20").get_json()

    return {f"+{delay:g} ms per round trip": order_list(delay) for delay in (0.0, 2.0)}


# ---------------------------------------------------------------- running
def run(course: Course, only: Sequence[str] | None = None, repeat: int | None = None) -> list[dict[str, Any]]:
    """Run the registered benchmarks and return one record per variant."""
    unknown = set(only or ()) - {b.name for b in REGISTRY}
    if unknown:
        raise CourseError(
            f"Unknown benchmark {', '.join(sorted(unknown))}: choose from {', '.join(b.name for b in REGISTRY)}."
        )
    records = []
    try:
        for bench in REGISTRY:
            if only and bench.name not in only:
                continue
            print(f"· {bench.name}: {bench.doc}", flush=True)
            variants = bench.make(course)
            if not variants:
                print("  (not on this backend)")
                continue
            measurements = run_variants(variants, repeat=repeat or bench.repeat, warmup=1, budget_s=60)
            if bench.same_result:
                check_same(measurements)
            records += _records(bench, course, measurements)
    finally:  # whatever happened: copies, files and connections the benchmarks made
        while _CLEANUP:
            _CLEANUP.pop()()
    return records


def _records(bench: Benchmark, course: Course, ms: list[Measurement]) -> list[dict[str, Any]]:
    base = ms[0].median_s
    floor = next((m.median_s for m in ms if m.variant == bench.floor), None)
    return [
        {
            "benchmark": bench.name,
            "variant": m.variant,
            "backend": course.backend,
            "size": course.size,
            "median_s": m.median_s,
            "spread_s": m.spread_s,
            "runs": m.runs,
            "ratio_vs_baseline": base / m.median_s,
            "ratio_vs_floor": "" if floor is None else floor / m.median_s,
        }
        for m in ms
    ]


def write_csv(records: list[dict[str, Any]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(records)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers bench", description=__doc__.splitlines()[0])
    parser.add_argument("--size", default=None)
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--out", type=Path, default=data_dir() / "bench" / "latest.csv")
    args = parser.parse_args(argv)
    try:
        course = setup("bench", size=args.size, quiet=True)
    except CourseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        print(f"Benchmarks on {course.backend}, size {course.size} ({course.info.total_rows:,} rows)")
        records = run(course, [n for n in args.only.split(",") if n], args.repeat)
    except CourseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        course.engine.dispose()
    write_csv(records, args.out)
    import pandas as pd

    table = in_ms(pd.DataFrame(records).set_index(["benchmark", "variant"]))
    print(
        table[["median_ms", "iqr_ms", "runs", "ratio_vs_baseline", "ratio_vs_floor"]].to_string(
            float_format="{:.3f}".format
        )
    )
    print(f"\nWritten to {args.out}")
    return 0

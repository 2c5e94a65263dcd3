"""The shop dataset: generated from a fixed seed, bulk-loaded, swapped in atomically.

Command line (what `make data` runs)::

    python -m helpers data build --size small [--force]
    python -m helpers data ensure --size small
    python -m helpers data info --size small
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import Connection, Engine, MetaData, inspect, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import column
from sqlalchemy.sql import table as table_clause
from tqdm.auto import tqdm

from . import servers
from .config import SIZES, SizeSpec, settings, size_spec
from .db import check_reachable, course_url, make_engine, parse_url, sqlite_path
from .errors import CourseError, gist
from .servers import create_database, database_exists, drop_database, rename_database
from .shop.models import STATUSES, Base

SEED = 20_240_611
SCHEMA_VERSION = 1
META_TABLE = "course_meta"
CHUNK = 50_000
TABLE_ORDER = ("customers", "products", "orders", "order_lines", "reviews")

Row = tuple[Any, ...]

# ---------------------------------------------------------------- vocabulary for generated text
_FIRST = (
    "Ada Alan Amara Anna Ben Bruno Carla Chen Chiara Dana David Elena Emil Eva Farah Felix Grace Hana Hugo "
    "Ines Ivan Jonas Julia Kai Karin Lars Lea Leo Lina Luca Maja Marco Maria Mateo Mia Nadia Nils Noor Omar "
    "Olga Paul Priya Rafael Rosa Sami Sara Sofia Tariq Tom Uma Vera Viktor Wen Yara Yusuf Zoe Amir Beatriz"
).split()
_LAST = (
    "Adams Alves Bauer Becker Brown Costa Dubois Eriksen Fischer Garcia Gomez Hansen Ito Jansen Kim Kowalski "
    "Larsen Lopez Martin Meyer Moreau Murphy Nakamura Novak Okafor Olsen Park Petrov Quinn Rossi Santos "
    "Schmidt Silva Smith Sousa Tanaka Tremblay Ueda Vargas Weber Wilson Yamamoto Young Zhang Ziegler"
).split()
_CITIES = (
    "Lisbon Porto Madrid Lyon Berlin Hamburg Munich Vienna Zurich Milan Turin Prague Warsaw Krakow Oslo "
    "Bergen Aarhus Ghent Utrecht Dublin Leeds Glasgow Nantes Seville Valencia Bologna Graz Brno Gdansk Turku"
).split()
_STREETS = "Oak Maple Harbour Station Mill Church Market Garden River Hill Park Bridge Castle Meadow".split()
_CATEGORIES = (
    "books kitchen garden toys audio camera office outdoor sports beauty tools grocery pets music games home"
).split()
_ADJECTIVES = "Classic Compact Deluxe Eco Essential Everyday Handy Premium Pro Smart Sturdy Travel Ultra".split()
_NOUNS = "Kettle Lamp Backpack Speaker Notebook Blender Tent Drill Jacket Mug Puzzle Camera Chair Brush".split()
_WORDS = (
    "the a quality order delivery fast slow package arrived great good fine poor value price colour size "
    "fits works broke returned support helpful friendly box gift again recommend would not very really "
    "battery screen sound light heavy sturdy cheap expensive durable handle lid cable warranty manual "
    "assembly instructions easy hard minutes weeks days happy disappointed excellent perfect okay average "
    "customer please leave at door ring bell call before neighbour floor apartment building gate code"
).split()


@dataclass(frozen=True)
class DatasetInfo:
    """What a finished dataset says about itself (its course_meta row)."""

    url: str
    size: str
    seed: int
    schema_version: int
    built_at: str
    build_seconds: float
    rows: dict[str, int]

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


# ---------------------------------------------------------------- generation (vectorised, seeded)
def _paragraphs(rng: np.random.Generator, count: int, min_words: int, max_words: int) -> list[str]:
    """A pool of random paragraphs; rows pick from the pool so wide text costs no per-row work."""
    lengths = rng.integers(min_words, max_words + 1, size=count)
    picks = [_WORDS[i] for i in rng.integers(0, len(_WORDS), size=int(lengths.sum())).tolist()]
    bounds = zip(lengths.tolist(), np.cumsum(lengths).tolist(), strict=True)
    return [" ".join(picks[end - n : end]).capitalize() + "." for n, end in bounds]


def _zipf_weights(n: int, s: float = 1.1) -> np.ndarray:
    """Zipf-like popularity over n items (item 0 is the most popular)."""
    weights = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** s
    normalised: np.ndarray = weights / weights.sum()
    return normalised


def _timestamps(rng: np.random.Generator, count: int, *, ordered: bool) -> np.ndarray:
    start = np.datetime64("2023-01-01T00:00:00", "s")
    seconds = rng.integers(0, 3 * 365 * 86_400, size=count)
    if ordered:
        seconds.sort()
    return start + seconds.astype("timedelta64[s]")


def _iso(stamps: np.ndarray) -> list[str]:
    # SQLAlchemy's SQLite DateTime reads 'YYYY-MM-DD HH:MM:SS'; PostgreSQL parses it too.
    return [s.replace("T", " ") for s in np.datetime_as_string(stamps, unit="s").tolist()]


class _CustomerDraws(NamedTuple):
    first: np.ndarray
    last: np.ndarray
    city: np.ndarray
    street: np.ndarray
    number: np.ndarray
    postcode: np.ndarray
    note: np.ndarray
    created: list[str]


class _Generator:
    """Produces each table's rows in chunks, always in the same order from the same seed."""

    def __init__(self, spec: SizeSpec, seed: int = SEED) -> None:
        self.spec = spec
        self.seed = seed
        rng = self._rng("pools")
        self.notes = _paragraphs(rng, 1024, 40, 110)
        self.descriptions = _paragraphs(rng, 1024, 80, 160)
        self.bodies = _paragraphs(rng, 1024, 10, 60)
        self.order_notes = _paragraphs(rng, 1024, 4, 16)
        self.prices = np.round(self._rng("prices").gamma(2.0, 20.0, size=spec.products) + 1.0, 2)

    def _rng(self, table: str) -> np.random.Generator:
        # One stream per table: a table's content does not depend on how others are generated.
        return np.random.default_rng([self.seed, sum(map(ord, table)), len(table)])

    @cached_property
    def _customer_draws(self) -> _CustomerDraws:
        """The customers' stream, drawn once: customers() and the orders' addresses both read it."""
        n = self.spec.customers
        rng = self._rng("customers")
        return _CustomerDraws(  # keyword arguments are evaluated in order: this is the order of the draws
            first=rng.integers(0, len(_FIRST), n),
            last=rng.integers(0, len(_LAST), n),
            city=rng.integers(0, len(_CITIES), n),
            street=rng.integers(0, len(_STREETS), n),
            number=rng.integers(1, 300, n),
            postcode=rng.integers(1000, 99999, n),
            note=rng.integers(0, len(self.notes), n),
            created=_iso(_timestamps(rng, n, ordered=True)),
        )

    @cached_property
    def addresses(self) -> list[str]:
        """Each customer's address (customer id - 1 is the index); every order ships to its customer's."""
        d = self._customer_draws
        return [
            f"{d.number[i]} {_STREETS[d.street[i]]} Street, {d.postcode[i]:05d} {_CITIES[d.city[i]]}"
            for i in range(self.spec.customers)
        ]

    def customers(self) -> Iterator[list[Row]]:
        n = self.spec.customers
        d = self._customer_draws
        first, last, city, note, created, addresses = d.first, d.last, d.city, d.note, d.created, self.addresses
        for lo in range(0, n, CHUNK):
            yield [
                (
                    i + 1,
                    f"{_FIRST[first[i]]} {_LAST[last[i]]}",
                    f"{_FIRST[first[i]].lower()}.{_LAST[last[i]].lower()}{i + 1}@example.com",
                    _CITIES[city[i]],
                    addresses[i],
                    self.notes[note[i]],
                    created[i],
                )
                for i in range(lo, min(lo + CHUNK, n))
            ]

    def products(self) -> Iterator[list[Row]]:
        n = self.spec.products
        rng = self._rng("products")
        adj = rng.integers(0, len(_ADJECTIVES), n)
        noun = rng.integers(0, len(_NOUNS), n)
        cat = rng.integers(0, len(_CATEGORIES), n)
        desc = rng.integers(0, len(self.descriptions), n)
        yield [
            (
                i + 1,
                f"{_ADJECTIVES[adj[i]]} {_NOUNS[noun[i]]} {i + 1}",
                _CATEGORIES[cat[i]],
                float(self.prices[i]),
                self.descriptions[desc[i]],
            )
            for i in range(n)
        ]

    def orders_and_lines(self) -> tuple[Iterator[list[Row]], Iterator[list[Row]]]:
        """Orders and their lines; totals are the sum of each order's lines."""
        spec = self.spec
        rng = self._rng("orders")
        n = spec.orders
        # Skewed customers: a few order much more than most. The popularity rank is shuffled over ids
        # so that customer 1 is an ordinary customer, not the busiest one.
        rank = rng.choice(spec.customers, size=n, p=_zipf_weights(spec.customers, 0.5))
        customer = rng.permutation(spec.customers)[rank] + 1
        status = rng.choice(len(STATUSES), size=n, p=[0.6, 0.15, 0.1, 0.1, 0.05])
        created = _iso(_timestamps(rng, n, ordered=True))
        has_note = rng.random(n) < 0.2
        note_idx = rng.integers(0, len(self.order_notes), n)
        line_counts = np.clip(rng.poisson(spec.lines_per_order - 1, n) + 1, 1, 12)
        order_of_line = np.repeat(np.arange(1, n + 1), line_counts)
        lrng = self._rng("order_lines")
        product = lrng.choice(spec.products, size=len(order_of_line), p=_zipf_weights(spec.products)) + 1
        quantity = lrng.integers(1, 6, size=len(order_of_line))
        unit_price = self.prices[product - 1]
        totals = np.round(np.bincount(order_of_line, weights=quantity * unit_price, minlength=n + 1)[1:], 2)

        def orders() -> Iterator[list[Row]]:
            # Plain Python lists: indexing a numpy array one element at a time is several times slower.
            cust, stat, tot = customer.tolist(), status.tolist(), totals.tolist()
            noted, note = has_note.tolist(), note_idx.tolist()
            addresses, notes = self.addresses, self.order_notes
            for lo in range(0, n, CHUNK):
                yield [
                    (
                        i + 1,
                        cust[i],
                        STATUSES[stat[i]],
                        created[i],
                        tot[i],
                        addresses[cust[i] - 1],
                        notes[note[i]] if noted[i] else None,
                    )
                    for i in range(lo, min(lo + CHUNK, n))
                ]

        def lines() -> Iterator[list[Row]]:
            m = len(order_of_line)
            ids, orders_, products_ = np.arange(1, m + 1).tolist(), order_of_line.tolist(), product.tolist()
            qty, price = quantity.tolist(), unit_price.tolist()
            for lo in range(0, m, CHUNK):
                hi = min(lo + CHUNK, m)
                yield list(
                    zip(ids[lo:hi], orders_[lo:hi], products_[lo:hi], qty[lo:hi], price[lo:hi], strict=True)
                )

        return orders(), lines()

    def reviews(self) -> Iterator[list[Row]]:
        spec = self.spec
        n = spec.reviews
        rng = self._rng("reviews")
        product = rng.choice(spec.products, size=n, p=_zipf_weights(spec.products)) + 1
        customer = rng.integers(1, spec.customers + 1, n)
        rating = rng.choice(5, size=n, p=[0.05, 0.07, 0.13, 0.3, 0.45]) + 1
        body = rng.integers(0, len(self.bodies), n)
        created = _iso(_timestamps(rng, n, ordered=True))
        prod, cust, stars, text_of = product.tolist(), customer.tolist(), rating.tolist(), body.tolist()
        for lo in range(0, n, CHUNK):
            yield [
                (i + 1, prod[i], cust[i], stars[i], self.bodies[text_of[i]], created[i])
                for i in range(lo, min(lo + CHUNK, n))
            ]

    def tables(self) -> Iterator[tuple[str, Iterator[list[Row]]]]:
        yield "customers", self.customers()
        yield "products", self.products()
        orders, lines = self.orders_and_lines()
        yield "orders", orders
        yield "order_lines", lines
        yield "reviews", self.reviews()


def generate_rows(size: str, seed: int = SEED) -> Iterator[tuple[str, list[Row]]]:
    """Every (table, chunk of rows) of a dataset, in insert order: the same for the same size and seed."""
    for table, chunks in _Generator(size_spec(size), seed).tables():
        for chunk in chunks:
            yield table, chunk


# ---------------------------------------------------------------- loading
Writer = Callable[[str, list[str], list[Row]], None]  # writes rows of (table, columns) into the build
META_COLUMNS = ["key", "value"]


def _columns(table: str) -> list[str]:
    return [c.name for c in Base.metadata.tables[table].columns]


def _bare_tables() -> MetaData:
    """The shop tables without any index: an `Index` made on a model's columns (in a lesson, say) attaches
    itself to the model's table, and must not end up in a freshly built dataset."""
    bare = MetaData()
    for table in Base.metadata.sorted_tables:
        copy = table.to_metadata(bare)
        copy.indexes.clear()
    return bare


def _create_schema(bind: Engine | Connection) -> None:
    """Tables with primary keys only: lesson 04 adds the secondary indexes."""
    _bare_tables().create_all(bind)
    create_meta = text(f"CREATE TABLE {META_TABLE} (key VARCHAR(40) PRIMARY KEY, value TEXT NOT NULL)")
    if isinstance(bind, Connection):
        bind.execute(create_meta)
    else:
        with bind.begin() as conn:
            conn.execute(create_meta)


def _meta_rows(spec: SizeSpec, seed: int, seconds: float, rows: dict[str, int]) -> list[Row]:
    meta = {
        "size": spec.name,
        "seed": str(seed),
        "schema_version": str(SCHEMA_VERSION),
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "build_seconds": f"{seconds:.3f}",
        **{f"rows.{table}": str(count) for table, count in rows.items()},
    }
    return list(meta.items())


def _load(spec: SizeSpec, seed: int, write: Writer, progress: bool) -> dict[str, int]:
    """Write every generated row through `write`; return the row count of each table."""

    counts = dict.fromkeys(TABLE_ORDER, 0)
    bar = tqdm(
        total=spec.total_rows,
        unit=" rows",
        unit_scale=True,
        desc=f"building {spec.name}",
        disable=not progress or spec.name == "tiny",
    )
    with bar:
        for table, chunk in generate_rows(spec.name, seed):
            write(table, _columns(table), chunk)
            counts[table] += len(chunk)
            bar.update(len(chunk))
        # The total was an estimate (order lines are drawn per order): end the bar at what was built, in
        # green, rather than short of an estimate.
        bar.total = bar.n
        bar.refresh()
    return counts


class _Build:
    """One way to build a dataset: the steps `_run` takes in order, done as each kind of database needs."""

    def __init__(self, url: URL) -> None:
        self.url = url  # where the finished dataset is read
        self.engine: Engine | None = None  # the load's engine and connection, for builds that use them
        self.conn: Connection | None = None

    def prepare(self) -> None:
        """Make an empty place to build in, clearing what a killed build left behind."""

    def begin(self) -> Writer:
        """Create the tables and open the load; return what writes a table's rows."""
        raise NotImplementedError

    def finish(self) -> None:
        """Commit the load and make the data quick to read."""

    def swap(self) -> None:
        """Put the finished build where the dataset belongs, replacing the previous one in one step."""

    def close(self) -> None:
        """Release connections and remove an unfinished build; runs however the build ended."""
        if self.conn is not None:
            self.conn.close()  # rolls back a load that did not finish
            self.conn = None
        if self.engine is not None:
            self.engine.dispose()
            self.engine = None


def _run(build: _Build, spec: SizeSpec, seed: int, progress: bool) -> DatasetInfo:
    """The one build: prepare, create the schema, load, write course_meta, finish, swap. Nothing is
    replaced until the swap, so an interrupted build leaves the previous dataset as it was."""
    started = time.perf_counter()
    try:
        build.prepare()
        write = build.begin()
        rows = _load(spec, seed, write, progress)
        write(META_TABLE, META_COLUMNS, _meta_rows(spec, seed, time.perf_counter() - started, rows))
        build.finish()
        build.swap()
    finally:
        build.close()
    return read_info(build.url, size=spec.name)


class _SqliteFile(_Build):
    """A private file next to the dataset, loaded through sqlite3 in one transaction, renamed over it."""

    def __init__(self, path: Path) -> None:
        super().__init__(URL.create("sqlite+pysqlite", database=str(path)))
        self.path = path
        self.tmp = path.with_name(f"{path.name}.building-{os.getpid()}")
        self.raw: sqlite3.Connection | None = None

    def prepare(self) -> None:
        for stale in self.path.parent.glob(f"{self.path.name}.building-*"):
            stale.unlink(missing_ok=True)  # left by a build that was killed; never a finished dataset

    def begin(self) -> Writer:
        engine = make_engine(URL.create("sqlite+pysqlite", database=str(self.tmp)))
        try:
            _create_schema(engine)
        finally:
            engine.dispose()
        raw = self.raw = sqlite3.connect(self.tmp, isolation_level=None)
        # The file is private until renamed, so durability can wait for the final checkpoint.
        raw.execute("PRAGMA journal_mode = OFF")
        raw.execute("PRAGMA synchronous = OFF")
        raw.execute("BEGIN")

        def write(table: str, cols: list[str], rows: list[Row]) -> None:
            marks = ", ".join("?" * len(cols))
            raw.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", rows)

        return write

    def finish(self) -> None:
        assert self.raw is not None
        self.raw.execute("COMMIT")
        self.raw.execute("ANALYZE")
        # WAL persists in the file: readers and the single writer of two notebooks don't block.
        self.raw.execute("PRAGMA journal_mode = WAL")

    def swap(self) -> None:
        self._disconnect()  # the last connection to close checkpoints the WAL into the file
        if self.path.exists() and not _is_dataset(self.url):  # someone's file: kept, nothing is lost
            names = (self.path.with_name(f"{self.path.name}.bak{n or ''}") for n in itertools.count())
            backup = next(name for name in names if not name.exists())
            os.replace(self.path, backup)
            print(f"Kept the file that was at {self.path} as {backup}.", file=sys.stderr)
        os.replace(self.tmp, self.path)

    def close(self) -> None:
        self._disconnect()
        for suffix in ("", "-wal", "-shm"):
            self.tmp.with_name(self.tmp.name + suffix).unlink(missing_ok=True)
        super().close()

    def _disconnect(self) -> None:
        if self.raw is not None:
            self.raw.close()
            self.raw = None


class _PostgresDatabase(_Build):
    """`<name>__building`, filled with COPY in the transaction that created its tables, then renamed."""

    def __init__(self, url: URL, default_name: str) -> None:
        name = url.database or default_name
        super().__init__(url.set(database=name))
        self.name, self.building, self.old = name, f"{name}__building", f"{name}__old"
        self.admin = url.set(database="postgres").render_as_string(hide_password=False)

    def prepare(self) -> None:

        drop_database(self.building, server_url=self.admin)
        create_database(self.building, server_url=self.admin)

    def begin(self) -> Writer:
        self.engine = make_engine(self.url.set(database=self.building))
        conn = self.conn = self.engine.connect()
        conn.begin()
        _create_schema(conn)  # same transaction as the COPYs: with wal_level=minimal they skip the WAL
        _skip_foreign_key_checks(conn)
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]

        def write(table: str, cols: list[str], rows: list[Row]) -> None:
            # FREEZE (the tables are this transaction's own): rows are written frozen and their pages marked
            # all-visible, so the VACUUM in finish() has nothing left to do and no first read rewrites hint bits.
            with cursor.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN WITH (FREEZE)") as copy:
                for row in rows:
                    copy.write_row(row)

        return write

    def finish(self) -> None:
        assert self.engine is not None and self.conn is not None
        # COPY wrote the ids itself: move each id sequence past them, or the next INSERT collides.
        for table in TABLE_ORDER:
            self.conn.execute(
                text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
            )
        self.conn.commit()
        # Statistics for the planner (and the visibility map for index-only scans), a table per connection at
        # once: each server process samples its own table.
        engine = self.engine

        def vacuum_analyze(table: str) -> None:
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text(f"VACUUM (ANALYZE) {table}"))

        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            list(pool.map(vacuum_analyze, [*TABLE_ORDER, META_TABLE]))

    def swap(self) -> None:

        self.close()
        drop_database(self.old, server_url=self.admin)
        if database_exists(self.name, server_url=self.admin):
            if _is_dataset(self.url):
                rename_database(self.name, self.old, server_url=self.admin)  # dropped once replaced
            else:  # someone's own database under that name: kept, nothing is lost
                names = (f"{self.name}__bak{n or ''}" for n in itertools.count())
                backup = next(name for name in names if not database_exists(name, server_url=self.admin))
                rename_database(self.name, backup, server_url=self.admin)
                print(f"Kept the database that was named {self.name} as {backup}.", file=sys.stderr)
        rename_database(self.building, self.name, server_url=self.admin)
        drop_database(self.old, server_url=self.admin)


def _skip_foreign_key_checks(conn: Connection) -> None:
    """Generated rows reference each other correctly; checking each one would cost most of the load time.

    Needs a superuser (the course's own server); on someone else's server the checks simply stay on.
    """

    savepoint = conn.begin_nested()
    try:
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        savepoint.commit()
    except DBAPIError:
        savepoint.rollback()


class _InPlace(_Build):
    """Any other database (your own DATABASE_URL): empty tables filled with SQLAlchemy Core executemany."""

    def prepare(self) -> None:
        if _exists(self.url):
            raise CourseError(
                f"{self.url.render_as_string(hide_password=True)} already has tables: point DATABASE_URL at "
                "an empty database and the course will fill it."
            )

    def begin(self) -> Writer:
        self.engine = make_engine(self.url)
        _create_schema(self.engine)
        conn = self.conn = self.engine.connect()
        conn.begin()

        def write(table: str, cols: list[str], rows: list[Row]) -> None:
            insert = table_clause(table, *(column(c) for c in cols)).insert()
            conn.execute(insert, [dict(zip(cols, row, strict=True)) for row in rows])

        return write

    def finish(self) -> None:
        assert self.conn is not None
        self.conn.commit()


# ---------------------------------------------------------------- reading, checking, ensuring
def read_info(url: URL | str, *, size: str | None = None) -> DatasetInfo:
    """The dataset's course_meta, or a CourseError saying why this is not a finished course dataset.

    `size` is the size it should be, named in the advice to rebuild it.
    """
    engine = make_engine(url)
    shown = engine.url.render_as_string(hide_password=True)
    call = f"build_dataset({size!r}, force=True)" if size else "build_dataset(size, force=True)"
    rebuild = f"rebuild it with `make reset SIZE={size or '<size>'}` or `{call}`"
    try:
        tables = set(inspect(engine).get_table_names())
        missing = {META_TABLE, *TABLE_ORDER} - tables
        if missing:
            raise CourseError(
                f"{shown} is not a complete course dataset (missing {', '.join(sorted(missing))}): {rebuild}."
            )
        with engine.connect() as conn:
            meta: dict[str, str] = dict(conn.execute(text(f"SELECT key, value FROM {META_TABLE}")).all())
    except CourseError:
        raise
    except Exception as exc:  # a corrupt file, a text file named .sqlite, ...
        raise CourseError(f"{shown} cannot be read as a course dataset ({gist(exc)}): {rebuild}.") from None
    finally:
        engine.dispose()
    if meta.get("schema_version") != str(SCHEMA_VERSION):
        raise CourseError(
            f"{shown} was built by another version of the course (schema {meta.get('schema_version')}, "
            f"expected {SCHEMA_VERSION}): rebuild it with `make reset SIZE={meta.get('size', size or '<size>')}`."
        )
    return DatasetInfo(
        url=shown,
        size=meta["size"],
        seed=int(meta["seed"]),
        schema_version=SCHEMA_VERSION,
        built_at=meta["built_at"],
        build_seconds=float(meta["build_seconds"]),
        rows={t: int(meta[f"rows.{t}"]) for t in TABLE_ORDER},
    )


def _exists(url: URL) -> bool:
    if url.get_backend_name() == "sqlite":
        return bool(url.database) and Path(str(url.database)).exists()
    engine = make_engine(url)
    try:
        return bool(inspect(engine).get_table_names())
    except Exception:
        return False
    finally:
        engine.dispose()


def build_dataset(
    size: str | None = None,
    *,
    url: URL | str | None = None,
    force: bool = False,
    progress: bool = True,
    seed: int = SEED,
) -> DatasetInfo:
    """Build the dataset of `size` at `url` (default: the course database), unless a good one is there.

    A database that cannot be reached fails first, in one line. With `force`, what is in the way and is
    not a course dataset is kept: a file as `<name>.bak`, a PostgreSQL database as `<name>__bak`.
    """
    spec = size_spec(size)
    target = parse_url(url) if url is not None else course_url(settings(size=spec.name))
    check_reachable(target)
    if not force and _exists(target):
        return read_info(target, size=spec.name)
    build: _Build
    if target.get_backend_name() == "sqlite":
        build = _SqliteFile(Path(str(target.database)))
    elif target.get_backend_name() == "postgresql":
        build = _PostgresDatabase(target, default_name=f"shop_{spec.name}")
    else:
        build = _InPlace(target)
    return _run(build, spec, seed, progress)


def _is_dataset(url: URL) -> bool:
    """Whether `url` holds a finished course dataset (of any size)."""
    try:
        read_info(url)
    except CourseError:
        return False
    return True


def ensure_dataset(size: str | None = None, *, url: URL | str | None = None, progress: bool = True) -> DatasetInfo:
    """The dataset of `size`, built first if missing; a CourseError if what is there is not one."""
    return build_dataset(size, url=url, progress=progress)


def copy_dataset(size: str | None = None, name: str = "copy", *, source: URL | None = None) -> URL:
    """A private, writable copy of a dataset (lessons that add indexes or rows work on one).

    `source` is the database to copy; by default the course database of `size` for COURSE_BACKEND.
    """
    spec = size_spec(size)
    source = source or course_url(settings(size=spec.name))
    ensure_dataset(spec.name, url=source)
    if source.get_backend_name() == "sqlite":
        copy = sqlite_path(spec.name).with_name(f"shop-{spec.name}.{name}.sqlite")
        with closing(sqlite3.connect(str(source.database))) as src, closing(sqlite3.connect(copy)) as dst:
            src.backup(dst)
        return URL.create("sqlite+pysqlite", database=str(copy))
    if source.get_backend_name() == "postgresql":
        target = f"{source.database}__{name}"
        admin = source.set(database="postgres").render_as_string(hide_password=False)
        servers.drop_database(target, server_url=admin)
        servers.create_database(target, template=str(source.database), server_url=admin)
        return source.set(database=target)
    raise CourseError("copy_dataset works on SQLite and PostgreSQL: use the course's own database for lesson 04.")


def copy_exists(url: URL) -> bool:
    """Whether a copy made by copy_dataset is still there (a lesson's clean-up cell removes it)."""
    if url.get_backend_name() == "sqlite":
        return Path(str(url.database)).exists()
    if url.get_backend_name() == "postgresql":
        admin = url.set(database="postgres").render_as_string(hide_password=False)
        return servers.database_exists(str(url.database), server_url=admin)
    return True


def drop_copy(url: URL) -> None:
    """Remove a copy made by copy_dataset (its engines must be disposed first)."""
    if url.get_backend_name() == "sqlite":
        path = Path(str(url.database))
        for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            leftover.unlink(missing_ok=True)
    elif url.get_backend_name() == "postgresql":
        admin = url.set(database="postgres").render_as_string(hide_password=False)
        servers.drop_database(str(url.database), server_url=admin)


def row_counts(engine: Engine) -> dict[str, int]:
    """Live row counts of the shop tables."""
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLE_ORDER}


def content_fingerprint(engine: Engine) -> dict[str, str]:
    """A hash of every table's rows in id order, and of its indexes: equal fingerprints, equal datasets."""

    prints: dict[str, str] = {}
    metadata = MetaData()
    metadata.reflect(engine, only=list(TABLE_ORDER))
    insp = inspect(engine)
    with engine.connect() as conn:
        for name in TABLE_ORDER:
            digest = hashlib.sha256()
            for row in conn.execute(metadata.tables[name].select().order_by(text("id"))):
                digest.update(repr(tuple(row)).encode())
            indexes = sorted((ix["name"] or "", tuple(ix["column_names"])) for ix in insp.get_indexes(name))
            digest.update(repr(indexes).encode())
            prints[name] = digest.hexdigest()
    return prints


# ---------------------------------------------------------------- command line
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers data", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("build", "ensure", "info"))
    parser.add_argument("--size", default=None, help=f"one of {', '.join(SIZES)} (default: COURSE_SIZE or small)")
    parser.add_argument("--force", action="store_true", help="rebuild even if the dataset exists")
    args = parser.parse_args(argv)
    try:
        if args.command == "info":
            spec = size_spec(args.size)
            url = course_url(settings(size=spec.name))
            check_reachable(url)
            if not _exists(url):
                shown = url.render_as_string(hide_password=True)
                raise CourseError(f"There is no dataset at {shown}: build it with `make data SIZE={spec.name}`.")
            info = read_info(url, size=spec.name)
        else:  # build and ensure differ only in --force: build never replaces a good dataset without it
            info = build_dataset(args.size, force=args.force)
    except CourseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"{info.size} dataset at {info.url}: {info.total_rows:,} rows "
        f"(built {info.built_at} in {info.build_seconds:.1f} s)"
    )
    return 0

"""The shop dataset: generated from a fixed seed, bulk-loaded, swapped in atomically.

Command line (what `make data` runs)::

    python -m helpers data build --size small [--force]
    python -m helpers data ensure --size small
    python -m helpers data info --size small
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, MetaData, inspect, text
from sqlalchemy.engine import URL

from .config import SIZES, SizeSpec, settings, size_spec
from .db import course_url, make_engine, sqlite_path
from .errors import CourseError
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
        self.addresses: list[str] = []
        self.prices = np.round(self._rng("prices").gamma(2.0, 20.0, size=spec.products) + 1.0, 2)

    def _rng(self, table: str) -> np.random.Generator:
        # One stream per table: a table's content does not depend on how others are generated.
        return np.random.default_rng([self.seed, sum(map(ord, table)), len(table)])

    def customers(self) -> Iterator[list[Row]]:
        n = self.spec.customers
        rng = self._rng("customers")
        first = rng.integers(0, len(_FIRST), n)
        last = rng.integers(0, len(_LAST), n)
        city = rng.integers(0, len(_CITIES), n)
        street = rng.integers(0, len(_STREETS), n)
        number = rng.integers(1, 300, n)
        postcode = rng.integers(1000, 99999, n)
        note = rng.integers(0, len(self.notes), n)
        created = _iso(_timestamps(rng, n, ordered=True))
        self.addresses = [
            f"{number[i]} {_STREETS[street[i]]} Street, {postcode[i]:05d} {_CITIES[city[i]]}" for i in range(n)
        ]
        for lo in range(0, n, CHUNK):
            yield [
                (
                    i + 1,
                    f"{_FIRST[first[i]]} {_LAST[last[i]]}",
                    f"{_FIRST[first[i]].lower()}.{_LAST[last[i]].lower()}{i + 1}@example.com",
                    _CITIES[city[i]],
                    self.addresses[i],
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


def _meta_rows(spec: SizeSpec, seed: int, seconds: float, rows: dict[str, int]) -> list[dict[str, str]]:
    meta = {
        "size": spec.name,
        "seed": str(seed),
        "schema_version": str(SCHEMA_VERSION),
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "build_seconds": f"{seconds:.3f}",
        **{f"rows.{table}": str(count) for table, count in rows.items()},
    }
    return [{"key": k, "value": v} for k, v in meta.items()]


Writer = Callable[[str, list[str], list[Row]], None]


def _load(engine: Engine, spec: SizeSpec, seed: int, writer: Writer, progress: bool) -> dict[str, int]:
    from tqdm.auto import tqdm

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
            writer(table, _columns(table), chunk)
            counts[table] += len(chunk)
            bar.update(len(chunk))
    return counts


def _build_sqlite(path: Path, spec: SizeSpec, seed: int, progress: bool) -> DatasetInfo:
    """Build into a temporary file next to `path`, then swap it in with one atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f"{path.name}.building-*"):
        stale.unlink(missing_ok=True)  # left by a build that was killed; never a finished dataset
    tmp = path.with_name(f"{path.name}.building-{os.getpid()}")
    started = time.perf_counter()
    try:
        engine = make_engine(URL.create("sqlite+pysqlite", database=str(tmp)))
        _create_schema(engine)
        engine.dispose()
        with closing(sqlite3.connect(tmp, isolation_level=None)) as raw:
            # The file is private until renamed, so durability can wait for the final checkpoint.
            raw.execute("PRAGMA journal_mode = OFF")
            raw.execute("PRAGMA synchronous = OFF")
            raw.execute("BEGIN")

            def write(table: str, cols: list[str], rows: list[Row]) -> None:
                marks = ", ".join("?" * len(cols))
                raw.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", rows)

            rows = _load(engine, spec, seed, write, progress)
            seconds = time.perf_counter() - started
            raw.executemany(
                f"INSERT INTO {META_TABLE} (key, value) VALUES (:key, :value)",
                _meta_rows(spec, seed, seconds, rows),
            )
            raw.execute("COMMIT")
            raw.execute("ANALYZE")
            # WAL persists in the file: readers and the single writer of two notebooks don't block.
            raw.execute("PRAGMA journal_mode = WAL")
        os.replace(tmp, path)
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
            leftover.unlink(missing_ok=True)
    return read_info(URL.create("sqlite+pysqlite", database=str(path)))


def _build_postgres(url: URL, spec: SizeSpec, seed: int, progress: bool) -> DatasetInfo:
    """Build into `<db>__building` with COPY, then swap names: the old dataset stays until the end."""
    from . import servers

    name = url.database or f"shop_{spec.name}"
    building, old = f"{name}__building", f"{name}__old"
    admin = url.set(database="postgres").render_as_string(hide_password=False)
    servers.drop_database(building, server_url=admin)
    servers.create_database(building, server_url=admin)
    started = time.perf_counter()
    engine = make_engine(url.set(database=building))
    try:
        with engine.begin() as conn:
            _create_schema(conn)  # same transaction as the COPYs: with wal_level=minimal they skip the WAL
            _skip_foreign_key_checks(conn)
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]

            def write(table: str, cols: list[str], rows: list[Row]) -> None:
                with cursor.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)

            rows = _load(engine, spec, seed, write, progress)
            # COPY wrote the ids itself: move each id sequence past them, or the next INSERT collides.
            for table in TABLE_ORDER:
                conn.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
                )
            seconds = time.perf_counter() - started
            conn.execute(
                text(f"INSERT INTO {META_TABLE} (key, value) VALUES (:key, :value)"),
                _meta_rows(spec, seed, seconds, rows),
            )
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    finally:
        engine.dispose()
    servers.drop_database(old, server_url=admin)
    if servers.database_exists(name, server_url=admin):
        servers.rename_database(name, old, server_url=admin)
    servers.rename_database(building, name, server_url=admin)
    servers.drop_database(old, server_url=admin)
    return read_info(url)


def _skip_foreign_key_checks(conn: Connection) -> None:
    """Generated rows reference each other correctly; checking each one would cost most of the load time.

    Needs a superuser (the course's own server); on someone else's server the checks simply stay on.
    """
    from sqlalchemy.exc import DBAPIError

    savepoint = conn.begin_nested()
    try:
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        savepoint.commit()
    except DBAPIError:
        savepoint.rollback()


def _build_in_place(url: URL, spec: SizeSpec, seed: int, progress: bool) -> DatasetInfo:
    """Any other database (your own DATABASE_URL): SQLAlchemy Core executemany into empty tables."""
    engine = make_engine(url)
    started = time.perf_counter()
    try:
        _create_schema(engine)
        tables = Base.metadata.tables
        with engine.begin() as conn:

            def write(table: str, cols: list[str], rows: list[Row]) -> None:
                conn.execute(tables[table].insert(), [dict(zip(cols, row, strict=True)) for row in rows])

            rows = _load(engine, spec, seed, write, progress)
            conn.execute(
                text(f"INSERT INTO {META_TABLE} (key, value) VALUES (:key, :value)"),
                _meta_rows(spec, seed, time.perf_counter() - started, rows),
            )
    finally:
        engine.dispose()
    return read_info(url)


# ---------------------------------------------------------------- reading, checking, ensuring
def read_info(url: URL | str) -> DatasetInfo:
    """The dataset's course_meta, or a CourseError saying why this is not a finished course dataset."""
    engine = make_engine(url)
    shown = engine.url.render_as_string(hide_password=True)
    try:
        tables = set(inspect(engine).get_table_names())
        missing = {META_TABLE, *TABLE_ORDER} - tables
        if missing:
            raise CourseError(
                f"{shown} is not a complete course dataset (missing {', '.join(sorted(missing))}): "
                "rebuild it with `make reset SIZE=<size>` or `build_dataset(size, force=True)`."
            )
        with engine.connect() as conn:
            meta: dict[str, str] = dict(conn.execute(text(f"SELECT key, value FROM {META_TABLE}")).all())
    except CourseError:
        raise
    except Exception as exc:  # a corrupt file, a text file named .sqlite, ...
        first = str(exc).strip().splitlines()[0]
        raise CourseError(
            f"{shown} cannot be read as a course dataset ({first}): "
            "rebuild it with `make reset SIZE=<size>` or `build_dataset(size, force=True)`."
        ) from None
    finally:
        engine.dispose()
    if meta.get("schema_version") != str(SCHEMA_VERSION):
        raise CourseError(
            f"{shown} was built by another version of the course (schema {meta.get('schema_version')}, "
            f"expected {SCHEMA_VERSION}): rebuild it with `make reset SIZE={meta.get('size', '<size>')}`."
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
    """Build the dataset of `size` at `url` (default: the course database), unless a good one is there."""
    spec = size_spec(size)
    target = make_engine(url).url if url is not None else course_url(settings(size=spec.name))
    if not force and _exists(target):
        return read_info(target)
    backend = target.get_backend_name()
    if backend == "sqlite":
        path = Path(str(target.database))
        if path.exists() and force:
            _keep_previous(path)
        return _build_sqlite(path, spec, seed, progress)
    if backend == "postgresql":
        return _build_postgres(target, spec, seed, progress)
    if _exists(target):
        raise CourseError(
            f"{target.render_as_string(hide_password=True)} already has tables: point DATABASE_URL at an "
            "empty database and the course will fill it."
        )
    return _build_in_place(target, spec, seed, progress)


def _keep_previous(path: Path) -> None:
    """Keep a file we are about to replace unless it is a course dataset: nothing the learner made is lost."""
    try:
        read_info(URL.create("sqlite+pysqlite", database=str(path)))
    except CourseError:
        backup = path.with_name(path.name + ".bak")
        os.replace(path, backup)
        print(f"Kept the file that was at {path} as {backup}.", file=sys.stderr)


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
        from . import servers

        target = f"{source.database}__{name}"
        admin = source.set(database="postgres").render_as_string(hide_password=False)
        servers.drop_database(target, server_url=admin)
        servers.create_database(target, template=str(source.database), server_url=admin)
        return source.set(database=target)
    raise CourseError("copy_dataset works on SQLite and PostgreSQL: use the course's own database for lesson 04.")


def drop_copy(url: URL) -> None:
    """Remove a copy made by copy_dataset (its engines must be disposed first)."""
    if url.get_backend_name() == "sqlite":
        path = Path(str(url.database))
        for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            leftover.unlink(missing_ok=True)
    elif url.get_backend_name() == "postgresql":
        from . import servers

        admin = url.set(database="postgres").render_as_string(hide_password=False)
        servers.drop_database(str(url.database), server_url=admin)


def row_counts(engine: Engine) -> dict[str, int]:
    """Live row counts of the shop tables."""
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLE_ORDER}


def content_fingerprint(engine: Engine) -> dict[str, str]:
    """A hash of every table's rows in id order, and of its indexes: equal fingerprints, equal datasets."""
    import hashlib

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
            info = read_info(course_url(settings(size=args.size)))
        else:
            info = (
                build_dataset(args.size, force=args.force or False)
                if args.command == "build"
                else (ensure_dataset(args.size))
            )
    except CourseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"{info.size} dataset at {info.url}: {info.total_rows:,} rows "
        f"(built {info.built_at} in {info.build_seconds:.1f} s)"
    )
    return 0

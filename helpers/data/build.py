"""Building a dataset: the generated rows bulk-loaded into a private place, then swapped in atomically, so an
interrupted build leaves the previous dataset as it was. One build skeleton (`_run`), three places to build:
a SQLite file, a PostgreSQL database, or any other database in place."""

from __future__ import annotations

import itertools
import os
import sqlite3
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, Engine, MetaData, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import column
from sqlalchemy.sql import table as table_clause
from tqdm.auto import tqdm

from ..config import SizeSpec, settings, size_spec
from ..db import check_reachable, drop_pooled_connections, make_engine, parse_url
from ..errors import CourseError
from ..servers import create_database, database_exists, drop_database, rename_database
from ..shop.models import Base  # noqa: F401  (the shop's models, read here by tests that half-build one)
from .generate import Row, generate_rows
from .info import META_TABLE, SCHEMA_VERSION, SEED, DatasetInfo, OutdatedDataset, exists, is_dataset, read_info
from .kinds import SHOP, Dataset, dataset_url

__all__ = ["build_dataset", "ensure_dataset"]

# ---------------------------------------------------------------- loading
_Writer = Callable[[str, list[str], list[Row]], None]  # writes rows of (table, columns) into the build
_META_COLUMNS = ["key", "value"]


def _columns(dataset: Dataset, table: str) -> list[str]:
    return [c.name for c in dataset.metadata.tables[table].columns]


def _bare_tables(dataset: Dataset) -> MetaData:
    """The dataset's tables without any index: an `Index` made on a model's columns (in a lesson, say) attaches
    itself to the model's table, and must not end up in a freshly built dataset."""
    bare = MetaData()
    for table in dataset.metadata.sorted_tables:
        copy = table.to_metadata(bare)
        copy.indexes.clear()
    return bare


def _create_schema(bind: Engine | Connection, dataset: Dataset) -> None:
    """Tables with primary keys only: lesson 04 adds the secondary indexes."""
    _bare_tables(dataset).create_all(bind)
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


def _load(spec: SizeSpec, seed: int, write: _Writer, progress: bool, dataset: Dataset) -> dict[str, int]:
    """Write every generated row through `write`; return the row count of each table."""

    counts = dict.fromkeys(dataset.tables, 0)
    # The shop's rows through this module's `generate_rows` (tests interrupt a build by replacing it).
    generate = generate_rows if dataset is SHOP else dataset.generate
    bar = tqdm(
        total=dataset.total_rows(spec.name),
        unit=" rows",
        unit_scale=True,
        desc=f"building {spec.name}",
        disable=not progress or spec.name == "tiny",
    )
    with bar:
        for table, chunk in generate(spec.name, seed):
            write(table, _columns(dataset, table), chunk)
            counts[table] += len(chunk)
            bar.update(len(chunk))
        # The total was an estimate (order lines are drawn per order): end the bar at what was built, in
        # green, rather than short of an estimate.
        bar.total = bar.n
        bar.refresh()
    return counts


class _Build:
    """One way to build a dataset: the steps `_run` takes in order, done as each kind of database needs."""

    def __init__(self, url: URL, dataset: Dataset = SHOP) -> None:
        self.url = url  # where the finished dataset is read
        self.dataset = dataset
        self.engine: Engine | None = None  # the load's engine and connection, for builds that use them
        self.conn: Connection | None = None

    def prepare(self) -> None:
        """Make an empty place to build in, clearing what a killed build left behind."""

    def begin(self) -> _Writer:
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
        rows = _load(spec, seed, write, progress, build.dataset)
        write(META_TABLE, _META_COLUMNS, _meta_rows(spec, seed, time.perf_counter() - started, rows))
        build.finish()
        build.swap()
    finally:
        build.close()
    return read_info(build.url, size=spec.name, tables=build.dataset.tables)


class _SqliteFile(_Build):
    """A private file next to the dataset, loaded through sqlite3 in one transaction, renamed over it."""

    def __init__(self, path: Path, dataset: Dataset = SHOP) -> None:
        super().__init__(URL.create("sqlite+pysqlite", database=str(path)), dataset)
        self.path = path
        self.tmp = path.with_name(f"{path.name}.building-{os.getpid()}")
        self.raw: sqlite3.Connection | None = None

    def prepare(self) -> None:
        for stale in self.path.parent.glob(f"{self.path.name}.building-*"):
            stale.unlink(missing_ok=True)  # left by a build that was killed; never a finished dataset

    def begin(self) -> _Writer:
        engine = make_engine(URL.create("sqlite+pysqlite", database=str(self.tmp)))
        try:
            _create_schema(engine, self.dataset)
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
        # Someone's file in the way: kept, nothing is lost.
        if self.path.exists() and not is_dataset(self.url, self.dataset.tables):
            names = (self.path.with_name(f"{self.path.name}.bak{n or ''}") for n in itertools.count())
            backup = next(name for name in names if not name.exists())
            os.replace(self.path, backup)
            print(f"Kept the file that was at {self.path} as {backup}.", file=sys.stderr)
        elif self.path.exists():
            _checkpoint(self.path)
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


def _checkpoint(path: Path) -> None:
    """Fold the write-ahead log of the file about to be replaced back into it: a log left beside the new file
    (by a process that did not close its connection) would otherwise be read as the new file's."""
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


class _PostgresDatabase(_Build):
    """`<name>__building`, filled with COPY in the transaction that created its tables, then renamed."""

    def __init__(self, url: URL, default_name: str, dataset: Dataset = SHOP) -> None:
        name = url.database or default_name
        super().__init__(url.set(database=name), dataset)
        self.name, self.building, self.old = name, f"{name}__building", f"{name}__old"
        self.admin = url.set(database="postgres").render_as_string(hide_password=False)

    def prepare(self) -> None:

        drop_database(self.building, server_url=self.admin)
        create_database(self.building, server_url=self.admin)

    def begin(self) -> _Writer:
        self.engine = make_engine(self.url.set(database=self.building))
        conn = self.conn = self.engine.connect()
        conn.begin()
        # In the same transaction as the COPYs: with wal_level=minimal they skip the WAL.
        _create_schema(conn, self.dataset)
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
        for table in self.dataset.tables:
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
            list(pool.map(vacuum_analyze, [*self.dataset.tables, META_TABLE]))

    def swap(self) -> None:

        self.close()
        drop_database(self.old, server_url=self.admin)
        if database_exists(self.name, server_url=self.admin):
            if is_dataset(self.url, self.dataset.tables):
                rename_database(self.name, self.old, server_url=self.admin)  # dropped once replaced
            else:  # someone's own database under that name: kept, nothing is lost
                names = (f"{self.name}__bak{n or ''}" for n in itertools.count())
                backup = next(name for name in names if not database_exists(name, server_url=self.admin))
                rename_database(self.name, backup, server_url=self.admin)
                print(f"Kept the database that was named {self.name} as {backup}.", file=sys.stderr)
        rename_database(self.building, self.name, server_url=self.admin)
        drop_database(self.old, server_url=self.admin)
        drop_pooled_connections(self.url)  # their sessions were on the database now replaced


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
        if exists(self.url):
            raise CourseError(
                f"{self.url.render_as_string(hide_password=True)} already has tables: point DATABASE_URL at "
                "an empty database and the course will fill it."
            )

    def begin(self) -> _Writer:
        self.engine = make_engine(self.url)
        _create_schema(self.engine, self.dataset)
        conn = self.conn = self.engine.connect()
        conn.begin()

        def write(table: str, cols: list[str], rows: list[Row]) -> None:
            insert = table_clause(table, *(column(c) for c in cols)).insert()
            conn.execute(insert, [dict(zip(cols, row, strict=True)) for row in rows])

        return write

    def finish(self) -> None:
        assert self.conn is not None
        self.conn.commit()


def build_dataset(
    size: str | None = None,
    *,
    url: URL | str | None = None,
    force: bool = False,
    progress: bool = True,
    seed: int = SEED,
    dataset: Dataset = SHOP,
) -> DatasetInfo:
    """Build the dataset of `size` at `url` (default: the course database), unless a good one is there.

    A database that cannot be reached fails first, in one line. With `force`, what is in the way and is
    not a course dataset is kept: a file as `<name>.bak`, a PostgreSQL database as `<name>__bak`.
    `dataset` is the kind to build: the shop (the default) or the on-call lesson's library.
    """
    spec = size_spec(size)
    target = parse_url(url) if url is not None else dataset_url(dataset, settings(size=spec.name))
    check_reachable(target)
    if not force and exists(target):
        try:
            return read_info(target, size=spec.name, tables=dataset.tables)
        except OutdatedDataset:  # the data is the course's own, generated from a seed: build it anew
            shown = target.render_as_string(hide_password=True)
            print(f"{shown} was built by an older version of the course: rebuilding it from its seed.", flush=True)
    build: _Build
    if target.get_backend_name() == "sqlite":
        build = _SqliteFile(Path(str(target.database)), dataset)
    elif target.get_backend_name() == "postgresql":
        build = _PostgresDatabase(target, default_name=f"{dataset.name}_{spec.name}", dataset=dataset)
    else:
        build = _InPlace(target, dataset)
    return _run(build, spec, seed, progress)


def ensure_dataset(
    size: str | None = None, *, url: URL | str | None = None, progress: bool = True, dataset: Dataset = SHOP
) -> DatasetInfo:
    """The dataset of `size`, built first if missing; a CourseError if what is there is not one."""
    return build_dataset(size, url=url, progress=progress, dataset=dataset)

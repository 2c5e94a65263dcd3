"""Writes: the dataset build (00) and bulk inserts (08), against the raw driver's executemany and COPY."""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from decimal import Decimal
from typing import Any

from sqlalchemy import MetaData, Numeric, insert, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from .. import servers
from ..config import data_dir
from ..course import Course
from ..data import build_dataset, drop_copy, generate_rows
from ..db import make_engine
from ..shop.models import Base
from .registry import Goal, Race, benchmark

__all__ = ["bulk_insert", "dataset_build"]


@benchmark(lesson="00", repeat=5)
def dataset_build(course: Course) -> Race:
    """Build the dataset vs the raw driver writing the same generated rows (executemany; COPY on PostgreSQL)."""
    rows = list(generate_rows(course.size))  # generated once, outside the timed region
    if course.backend == "postgresql":
        return _build_postgres(course, rows)
    workdir = data_dir() / "bench" / "build"
    workdir.mkdir(parents=True, exist_ok=True)

    def course_builder() -> int:
        path = workdir / "built.sqlite"
        path.unlink(missing_ok=True)
        url = URL.create("sqlite+pysqlite", database=str(path))
        return build_dataset(course.size, url=url, progress=False).total_rows

    def raw_executemany() -> int:
        path = workdir / "floor.sqlite"
        path.unlink(missing_ok=True)
        engine = make_engine(URL.create("sqlite+pysqlite", database=str(path)))
        _bare_schema().create_all(engine)
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

    return Race(
        {"course builder": course_builder, "raw driver executemany (floor)": raw_executemany},
        floor="raw driver executemany (floor)",
        goals=(Goal("course builder", 2.0),),
        cleanup=[lambda: shutil.rmtree(workdir, ignore_errors=True)],
    )


def _bare_schema() -> MetaData:
    """The shop's tables with primary keys only, as datasets are built."""
    bare = MetaData()
    for table in Base.metadata.sorted_tables:
        table.to_metadata(bare).indexes.clear()
    return bare


def _build_postgres(course: Course, rows: list[tuple[str, list[Any]]]) -> Race:

    admin = course.url.set(database="postgres").render_as_string(hide_password=False)
    built = course.url.set(database=f"bench_built_{course.size}")
    floor = course.url.set(database=f"bench_floor_{course.size}")

    def course_builder() -> int:
        return build_dataset(course.size, url=built, force=True, progress=False).total_rows

    def raw_copy() -> int:
        servers.drop_database(str(floor.database), server_url=admin)
        servers.create_database(str(floor.database), server_url=admin)
        engine = make_engine(floor)
        try:
            # What the builder does, and nothing else: the tables created and filled in one transaction (with
            # wal_level=minimal, COPY into them then skips the write-ahead log), rows frozen as they are written,
            # foreign-key triggers off.
            with engine.begin() as conn:
                _bare_schema().create_all(conn)
                conn.execute(text("SET LOCAL session_replication_role = replica"))
                cursor, total = conn.connection.driver_connection.cursor(), 0  # type: ignore[union-attr]
                for table, chunk in rows:
                    with cursor.copy(f"COPY {table} FROM STDIN WITH (FREEZE)") as copy:
                        for row in chunk:
                            copy.write_row(row)
                    total += len(chunk)
            return total
        finally:
            engine.dispose()

    def remove() -> None:
        for url in (built, floor):
            servers.drop_database(str(url.database), server_url=admin)

    return Race(
        {"course builder": course_builder, "raw driver COPY (floor)": raw_copy},
        floor="raw driver COPY (floor)",
        goals=(Goal("course builder", 2.0),),
        cleanup=[remove],
    )


# ---------------------------------------------------------------------- bulk inserts (lesson 08)
def _sqlite_values(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(str(v) if isinstance(v, Decimal) else v for v in row.values())


class _Scratch(DeclarativeBase):
    """Its own metadata: the scratch table never reaches the shop's schema or a built dataset."""


class _BenchLine(_Scratch):
    __tablename__ = "bench_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int]
    product_id: Mapped[int]
    quantity: Mapped[int]
    unit_price: Mapped[Decimal] = mapped_column(Numeric(10, 2))


@benchmark(lesson="08", repeat=7)
def bulk_insert(course: Course) -> Race:
    """500 order lines: a commit per row vs ORM bulk insert vs Core executemany vs the raw driver (and COPY)."""
    n = 500  # a commit per row syncs to disk each time: 500 of them take most of a second
    copy = course.private_copy("bench_writes")
    _Scratch.metadata.create_all(copy.engine)
    next_id = [1]

    def batch() -> list[dict[str, Any]]:
        first = next_id[0]
        next_id[0] += n
        return [
            {"id": i, "order_id": 1 + i % 1000, "product_id": 1 + i % 97, "quantity": 1 + i % 5,
             "unit_price": Decimal(f"{1 + i % 50}.99")}
            for i in range(first, first + n)
        ]  # fmt: skip

    def inserted(rows: list[dict[str, Any]]) -> tuple[int, int]:
        """Read back what the call wrote: its row count and total quantity (the same for every variant)."""
        with copy.engine.connect() as conn:
            count, quantity = conn.execute(
                text("SELECT count(*), sum(quantity) FROM bench_lines WHERE id BETWEEN :a AND :b"),
                {"a": rows[0]["id"], "b": rows[-1]["id"]},
            ).one()
        return int(count), int(quantity)

    def per_row_commit() -> tuple[int, int]:
        rows = batch()
        with Session(copy.engine) as session:
            for row in rows:
                session.add(_BenchLine(**row))
                session.commit()
        return inserted(rows)

    def orm_bulk() -> tuple[int, int]:
        rows = batch()
        with Session(copy.engine) as session:
            session.execute(insert(_BenchLine), rows)
            session.commit()
        return inserted(rows)

    def core_executemany() -> tuple[int, int]:
        rows = batch()
        with copy.engine.begin() as conn:
            conn.execute(insert(_Scratch.metadata.tables["bench_lines"]), rows)
        return inserted(rows)

    raw = copy.engine.raw_connection()
    marks = ", ".join(["%s" if course.backend == "postgresql" else "?"] * 5)
    # sqlite3 takes no Decimal: the price goes as text, which the NUMERIC column stores as a number.
    to_driver = (lambda r: tuple(r.values())) if course.backend == "postgresql" else _sqlite_values

    def raw_executemany() -> tuple[int, int]:
        rows = batch()
        cursor = raw.cursor()
        cursor.executemany(f"INSERT INTO bench_lines VALUES ({marks})", [to_driver(r) for r in rows])
        raw.commit()
        cursor.close()
        return inserted(rows)

    variants = {
        "commit per row (ORM add)": per_row_commit,
        "ORM bulk insert": orm_bulk,
        "Core executemany": core_executemany,
        "raw driver executemany (floor)": raw_executemany,
    }
    if course.backend == "postgresql":

        def raw_copy() -> tuple[int, int]:
            rows = batch()
            cursor = raw.cursor()
            with cursor.copy("COPY bench_lines FROM STDIN") as pipe:  # type: ignore[attr-defined]
                for r in rows:
                    pipe.write_row(tuple(r.values()))
            raw.commit()
            cursor.close()
            return inserted(rows)

        variants["raw driver COPY"] = raw_copy

    def remove() -> None:
        raw.close()
        copy.engine.dispose()
        drop_copy(copy.url)

    return Race(
        variants,
        floor="raw driver executemany (floor)",
        goals=(Goal("ORM bulk insert", 3.0),),
        cleanup=[remove],
    )

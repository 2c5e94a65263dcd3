"""What a built dataset says about itself (its course_meta row, read and checked), row counts, a fingerprint."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, MetaData, inspect, text
from sqlalchemy.engine import URL

from ..db import make_engine
from ..errors import CourseError, gist

__all__ = [
    "META_TABLE",
    "SCHEMA_VERSION",
    "SEED",
    "TABLE_ORDER",
    "DatasetInfo",
    "OutdatedDataset",
    "content_fingerprint",
    "exists",
    "is_dataset",
    "read_info",
    "row_counts",
]

SEED = 20_240_611


# 2: timestamps written as SQLAlchemy's DateTime writes them on SQLite, with six fractional digits (a dataset of
# version 1 has none, and a datetime bound by the ORM does not find its row there: rebuild it).
SCHEMA_VERSION = 2


META_TABLE = "course_meta"


TABLE_ORDER = ("customers", "products", "orders", "order_lines", "reviews")


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


class OutdatedDataset(CourseError):
    """A course dataset built by an older version of the course (another schema): the build replaces it."""


def read_info(url: URL | str, *, size: str | None = None, tables: tuple[str, ...] = TABLE_ORDER) -> DatasetInfo:
    """The dataset's course_meta, or a CourseError saying why this is not a finished course dataset.

    `size` is the size it should be, named in the advice to rebuild it; `tables` are the dataset's (the shop's).
    """
    engine = make_engine(url)
    shown = engine.url.render_as_string(hide_password=True)
    call = f"build_dataset({size!r}, force=True)" if size else "build_dataset(size, force=True)"
    rebuild = f"rebuild it with `make reset SIZE={size or '<size>'}` or `{call}`"
    try:
        found = set(inspect(engine).get_table_names())
        missing = {META_TABLE, *tables} - found
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
        raise OutdatedDataset(
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
        rows={t: int(meta[f"rows.{t}"]) for t in tables},
    )


def exists(url: URL) -> bool:
    """Whether something is at `url`: a SQLite file, or a PostgreSQL database with tables."""
    if url.get_backend_name() == "sqlite":
        return bool(url.database) and Path(str(url.database)).exists()
    engine = make_engine(url)
    try:
        return bool(inspect(engine).get_table_names())
    except Exception:
        return False
    finally:
        engine.dispose()


def is_dataset(url: URL, tables: tuple[str, ...] = TABLE_ORDER) -> bool:
    """Whether `url` holds a finished course dataset (of any size, any version of the course) with these tables."""
    try:
        read_info(url, tables=tables)
    except OutdatedDataset:
        return True
    except CourseError:
        return False
    return True


def row_counts(engine: Engine) -> dict[str, int]:
    """Live row counts of the shop tables."""
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLE_ORDER}


def content_fingerprint(engine: Engine, tables: tuple[str, ...] = TABLE_ORDER) -> dict[str, str]:
    """A hash of every table's rows in id order, and of its indexes: equal fingerprints, equal datasets."""

    prints: dict[str, str] = {}
    metadata = MetaData()
    metadata.reflect(engine, only=list(tables))
    insp = inspect(engine)
    with engine.connect() as conn:
        for name in tables:
            digest = hashlib.sha256()
            for row in conn.execute(metadata.tables[name].select().order_by(text("id"))):
                digest.update(repr(tuple(row)).encode())
            indexes = sorted((ix["name"] or "", tuple(ix["column_names"])) for ix in insp.get_indexes(name))
            digest.update(repr(indexes).encode())
            prints[name] = digest.hexdigest()
    return prints

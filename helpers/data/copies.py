"""Private, writable copies of a dataset, for lessons that add indexes or rows (and the app's indexed copy)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from sqlalchemy.engine import URL

from .. import servers
from ..config import settings, size_spec
from ..db import drop_pooled_connections, sqlite_path
from ..errors import CourseError
from .build import ensure_dataset
from .kinds import SHOP, Dataset, dataset_url

__all__ = ["copy_dataset", "copy_exists", "drop_copy"]


def copy_dataset(
    size: str | None = None, name: str = "copy", *, source: URL | None = None, dataset: Dataset = SHOP
) -> URL:
    """A private, writable copy of a dataset (lessons that add indexes or rows work on one).

    `source` is the database to copy; by default the course database of `size` for COURSE_BACKEND.
    """
    spec = size_spec(size)
    source = source or dataset_url(dataset, settings(size=spec.name))
    ensure_dataset(spec.name, url=source, dataset=dataset)
    if source.get_backend_name() == "sqlite":
        copy = sqlite_path(spec.name).with_name(f"{dataset.name}-{spec.name}.{name}.sqlite")
        with closing(sqlite3.connect(str(source.database))) as src, closing(sqlite3.connect(copy)) as dst:
            src.backup(dst)
        return URL.create("sqlite+pysqlite", database=str(copy))
    if source.get_backend_name() == "postgresql":
        target = f"{source.database}__{name}"
        admin = source.set(database="postgres").render_as_string(hide_password=False)
        servers.drop_database(target, server_url=admin)
        servers.create_database(target, template=str(source.database), server_url=admin)
        drop_pooled_connections(source)  # the copy ended the source's other sessions, this process's pools' too
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

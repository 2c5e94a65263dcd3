"""Databases on a PostgreSQL server (the course's, or the one a URL names): exists, create, drop, rename."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from ..errors import CourseError
from .postgres import postgres_url

__all__ = ["create_database", "database_exists", "drop_database", "rename_database"]


def database_exists(name: str, *, server_url: str | None = None) -> bool:
    """Whether database `name` exists on the course's server (or on the one `server_url` points at)."""
    with _admin(server_url) as conn:
        row = conn.execute(sa.text("select 1 from pg_database where datname = :n"), {"n": name}).first()
        return row is not None


def create_database(name: str, template: str | None = None, *, server_url: str | None = None) -> None:
    """Create database `name`, as a copy of `template` if given (whose other sessions are ended first)."""
    with _admin(server_url) as conn:
        sql = f"create database {_quote(name)}"
        if template is not None:
            sql += f" template {_quote(template)}"
            _disconnect_others(conn, template)  # PostgreSQL copies a template only when nobody is on it
        conn.exec_driver_sql(sql)


def drop_database(name: str, *, server_url: str | None = None) -> None:
    """Drop database `name` if it exists, ending its sessions."""
    with _admin(server_url) as conn:
        conn.exec_driver_sql(f"drop database if exists {_quote(name)} with (force)")


def rename_database(old: str, new: str, *, server_url: str | None = None) -> None:
    """Rename database `old` to `new`, ending the sessions on `old` first."""
    with _admin(server_url) as conn:
        sql = f"alter database {_quote(old)} rename to {_quote(new)}"
        for attempt in range(5):
            _disconnect_others(conn, old)
            try:
                conn.exec_driver_sql(sql)
                return
            except sa.exc.OperationalError as exc:  # 55006: a new session slipped in; end it and retry
                if attempt == 4 or getattr(exc.orig, "sqlstate", None) != "55006":
                    raise
                time.sleep(0.1)


@contextlib.contextmanager
def _admin(server_url: str | None) -> Iterator[sa.Connection]:
    """An AUTOCOMMIT connection to the server's `postgres` database (CREATE DATABASE refuses transactions)."""
    url = sa.make_url(server_url or postgres_url()).set(database="postgres")
    engine = sa.create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            # DDL cannot take bound names; without parameters the driver leaves a % in a name alone.
            yield conn.execution_options(no_parameters=True)
    finally:
        engine.dispose()


def _quote(name: str) -> str:
    """`name` as a quoted identifier; PostgreSQL would silently truncate one over 63 bytes."""
    if not name or len(name.encode()) > 63:
        raise CourseError(f"Invalid database name {name!r}: use 1 to 63 characters, such as shop_small.")
    return '"' + name.replace('"', '""') + '"'


def _disconnect_others(conn: sa.Connection, name: str) -> None:
    """End the other sessions on database `name`, waiting up to 5 s for each."""
    sql = "select pg_terminate_backend(pid, 5000) from pg_stat_activity where datname = :n"
    conn.execute(sa.text(sql + " and pid <> pg_backend_pid()"), {"n": name})

"""Engines for the course database: one place that turns settings into a working connection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.pool import NullPool

from .config import Settings, data_dir, settings
from .errors import CourseError

CONNECT_TIMEOUT_S = 3


def sqlite_path(size: str) -> Path:
    """Where the SQLite dataset of a size lives."""
    return data_dir() / f"shop-{size}.sqlite"


def parse_url(url: str | URL, source: str = "DATABASE_URL") -> URL:
    """Parse a database URL, mapping the forms people often paste to a working driver."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise CourseError(
            f"{source} {str(url)!r} is not a database URL: use a form like "
            "sqlite:///path/to/file.sqlite or postgresql+psycopg://user@host:5432/dbname."
        ) from None
    # 'postgres://' (Heroku style) and bare 'postgresql://' would need psycopg2; the course ships psycopg 3.
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def course_url(s: Settings | None = None) -> URL:
    """The URL of the course database: DATABASE_URL, else the local server or file for the size."""
    s = s or settings()
    if s.database_url:
        return parse_url(s.database_url)
    if s.backend == "postgres":
        from .servers import postgres_url

        return parse_url(postgres_url(f"shop_{s.size}"), source="the course PostgreSQL URL")
    return URL.create("sqlite+pysqlite", database=str(sqlite_path(s.size)))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # Wait for a writer instead of failing at once: two notebooks may share a dataset.
    cursor.execute("PRAGMA busy_timeout = 5000")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def make_engine(url: str | URL | None = None, **kwargs: Any) -> Engine:
    """create_engine with the course's defaults: fast failure, SQLite pragmas, one clear error."""
    parsed = parse_url(url) if url is not None else course_url()
    backend = parsed.get_backend_name()
    connect_args = dict(kwargs.pop("connect_args", {}))
    if backend == "postgresql":
        connect_args.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
    try:
        engine = create_engine(parsed, connect_args=connect_args, **kwargs)
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        raise CourseError(
            f"No SQLAlchemy driver for {parsed.drivername!r} ({exc}): "
            "use sqlite:/// or postgresql+psycopg:// URLs, which the course installs."
        ) from None
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def check_connection(engine: Engine) -> None:
    """Open one connection now so an unreachable database fails here, in one line."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc).splitlines()[0]
        reason = reason.rsplit(" failed: ", 1)[-1]  # libpq: 'connection to server at "h", port 1 failed: ...'
        raise CourseError(
            f"Cannot reach the database at {engine.url.render_as_string(hide_password=True)} ({reason}): "
            "check DATABASE_URL, start the server, or unset DATABASE_URL to use the course's own database."
        ) from None


def check_reachable(url: URL) -> None:
    """Fail in one line, before anything else touches it, if the database at `url` cannot be used.

    A SQLite file may not exist yet (the course builds it), but its folder must; a server must answer.
    """
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            folder = Path(database).expanduser().resolve().parent
            if not folder.is_dir():
                raise CourseError(
                    f"The folder {folder} for the SQLite database {database} does not exist: "
                    "create it, or fix DATABASE_URL."
                )
        return
    engine = make_engine(url, poolclass=NullPool)
    try:
        check_connection(engine)
    finally:
        engine.dispose()

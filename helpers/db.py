"""Engines for the course database: one place that turns settings into a working connection.

Also here, because everything that watches an engine builds on it: `listen_statements`, the course's one
statement listener (the recorder, the profiler's trace, the exercise checks and the shop's per-request headers).
"""

from __future__ import annotations

import math
import re
import sys
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.pool import NullPool

from .config import Settings, data_dir, settings
from .errors import CourseError, gist
from .servers import postgres_url

__all__ = [
    "Executed",
    "StatementHandler",
    "check_connection",
    "check_reachable",
    "course_url",
    "drop_pooled_connections",
    "is_statement_timeout",
    "limit_statement_time",
    "listen_statements",
    "make_engine",
    "parse_url",
    "sqlite_path",
    "statements_heard",
]

_CONNECT_TIMEOUT_S = 3
# What servers say when they refuse a login (PostgreSQL's libpq, MySQL's drivers).
_LOGIN_REFUSED = re.compile(
    r'password authentication failed|no password supplied|role "[^"]*" does not exist|Access denied for user'
)
_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")
_MISSING_DATABASE = re.compile(r'database "[^"]*" does not exist|Unknown database')


@dataclass(frozen=True)
class Executed:
    """One statement the driver ran, as a statement listener hears of it."""

    sql: str
    params: Any
    duration_s: float
    executemany: bool


StatementHandler = Callable[[Executed, FrameType], None]


def listen_statements(engine: Engine, handler: StatementHandler) -> Callable[[], None]:
    """Call `handler(executed, caller)` after every statement `engine` sends to its driver; return the remover.

    The course's one cursor listener: SQLAlchemy's `before_cursor_execute` and `after_cursor_execute` events,
    timed as in SQLAlchemy's FAQ recipe. Start times are kept on the connection, per listener, so listeners nest
    (a trace inside a panel's) and threads never mix theirs. `caller` is the frame that ran the statement
    (SQLAlchemy's event dispatch): walk out from it to find the application line that issued it.
    """
    key = object()  # this listener's slot in each connection's info

    def before(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        conn.info.setdefault(key, []).append(time.perf_counter())

    def after(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        ended = time.perf_counter()
        timers = conn.info.get(key)
        started = timers.pop() if timers else ended
        if not timers:
            conn.info.pop(key, None)
        handler(Executed(statement, params, ended - started, many), sys._getframe(1))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)

    def remove() -> None:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)

    return remove


@contextmanager
def statements_heard(engine: Engine, handler: StatementHandler) -> Iterator[None]:
    """`listen_statements` for the duration of a `with` block."""
    remove = listen_statements(engine, handler)
    try:
        yield
    finally:
        remove()


def sqlite_path(size: str) -> Path:
    """Where the SQLite dataset of a size lives."""
    return data_dir() / f"shop-{size}.sqlite"


def parse_url(url: str | URL, source: str = "DATABASE_URL") -> URL:
    """Parse a database URL, mapping the forms people often paste to a working driver."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
        raise _not_a_url(url, source, exc) from None
    # 'postgres://' (Heroku style) and bare 'postgresql://' would need psycopg2; the course ships psycopg 3.
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _not_a_url(url: str | URL, source: str, exc: Exception) -> CourseError:
    # SQLAlchemy hides the password of a URL it could parse; in one it could not, hide what looks like one.
    shown = (
        url.render_as_string(hide_password=True) if isinstance(url, URL) else repr(_PASSWORD.sub(r"\1***@", url))
    )
    return CourseError(
        f"{source} {shown} is not a database URL ({gist(exc)}): use a form like "
        "sqlite:////absolute/path/file.sqlite or postgresql+psycopg://user:password@host:5432/dbname."
    )


def course_url(s: Settings | None = None) -> URL:
    """The URL of the course database: DATABASE_URL, else the local server or file for the size."""
    s = s or settings()
    if s.database_url:
        return parse_url(s.database_url)
    if s.backend == "postgres":
        return parse_url(postgres_url(f"shop_{s.size}"), source="the course PostgreSQL URL")
    path = sqlite_path(s.size)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)  # the course's own folder: made on first use
    except OSError as exc:
        raise CourseError(
            f"Cannot create the course's data folder {path.parent} ({exc.strerror}): "
            "set COURSE_DATA_DIR to a folder you can write to."
        ) from None
    return URL.create("sqlite+pysqlite", database=str(path))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # Wait for a writer instead of failing at once: two notebooks may share a dataset.
    cursor.execute("PRAGMA busy_timeout = 5000")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()  # every engine make_engine made, for drop_pooled_connections


def drop_pooled_connections(url: URL) -> None:
    """Empty the pools of this process's engines on `url`'s PostgreSQL database.

    Copying a database (CREATE DATABASE ... TEMPLATE) or renaming it ends every other session on it, the idle
    ones each pool keeps included; without this, the next request of an app opened before the copy would get a
    dead connection (and a 503). Connections checked out now are left alone and dropped when returned.
    """
    if url.get_backend_name() != "postgresql":
        return
    for engine in list(_ENGINES):
        other = engine.url
        if other.get_backend_name() == "postgresql" and (other.host, other.port, other.database) == (
            url.host,
            url.port,
            url.database,
        ):
            engine.dispose()


def make_engine(url: str | URL | None = None, **kwargs: Any) -> Engine:
    """create_engine with the course's defaults: fast failure, SQLite pragmas, one clear error."""
    parsed = parse_url(url) if url is not None else course_url()
    backend = parsed.get_backend_name()
    connect_args = dict(kwargs.pop("connect_args", {}))
    if backend == "postgresql":
        connect_args.setdefault("connect_timeout", _CONNECT_TIMEOUT_S)
    try:
        engine = create_engine(parsed, connect_args=connect_args, **kwargs)
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        raise CourseError(
            f"No database driver for {parsed.drivername}:// URLs ({gist(exc)}): use a sqlite:/// or "
            "postgresql+psycopg:// URL (the course installs their drivers), or install that driver yourself."
        ) from None
    except ArgumentError as exc:  # parsed, but the dialect refuses it (sqlite://relative, say)
        raise _not_a_url(parsed, "The URL", exc) from None
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    _ENGINES.add(engine)
    return engine


def limit_statement_time(engine: Engine, seconds: float) -> None:
    """Stop any statement on `engine` that runs longer than `seconds`, with an OperationalError.

    PostgreSQL has `statement_timeout`; SQLite has none, so a progress handler, which SQLite calls every few
    thousand steps of a statement, interrupts the statement once its time is up. Checks of learners' code use
    it: a query that would read a table once per row stops with a clear message instead of running for minutes.
    """
    if engine.dialect.name == "postgresql":

        @event.listens_for(engine, "connect")
        def _set_timeout(dbapi_connection: Any, _record: Any) -> None:
            autocommit = dbapi_connection.autocommit
            dbapi_connection.autocommit = True  # SET outside a transaction: it lasts the whole session
            cursor = dbapi_connection.cursor()
            cursor.execute(f"SET statement_timeout = {round(seconds * 1000)}")
            cursor.close()
            dbapi_connection.autocommit = autocommit

    elif engine.dialect.name == "sqlite":
        deadlines: dict[int, float] = {}

        @event.listens_for(engine, "connect")
        def _watch(dbapi_connection: Any, _record: Any) -> None:
            key = id(dbapi_connection)
            dbapi_connection.set_progress_handler(lambda: time.monotonic() > deadlines.get(key, math.inf), 10_000)

        @event.listens_for(engine, "before_cursor_execute")
        def _start(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
            deadlines[id(conn.connection.dbapi_connection)] = time.monotonic() + seconds


def is_statement_timeout(exc: BaseException) -> bool:
    """Whether `exc` is a statement stopped by `limit_statement_time` (on either backend)."""
    text_ = str(getattr(exc, "orig", exc))
    return "interrupted" in text_ or "statement timeout" in text_


def check_connection(engine: Engine) -> None:
    """Open one connection now so an unusable database fails here, in one line that says what to do."""
    if (exc := _connect_error(engine)) is not None:
        raise _unusable(engine.url, exc) from None


def check_reachable(url: URL, *, must_exist: bool = False) -> None:
    """Fail in one line, before anything else touches it, if the database at `url` cannot be used.

    Unless `must_exist`, the database itself may be missing, as the course's build creates it: a SQLite
    file's folder must exist, and a PostgreSQL server must answer.
    """
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            path = Path(database).expanduser().resolve()
            if not path.parent.is_dir():
                raise CourseError(
                    f"The folder {path.parent} for the SQLite database {database} does not exist: "
                    "create it, or fix DATABASE_URL."
                )
            if must_exist and not path.exists():
                raise CourseError(f"There is no SQLite database at {database}: fix DATABASE_URL.")
        return
    exc = _connect_error(make_engine(url, poolclass=NullPool), dispose=True)
    if exc is None:
        return
    if not must_exist and url.get_backend_name() == "postgresql" and _MISSING_DATABASE.search(gist(exc)):
        server = make_engine(url.set(database="postgres"), poolclass=NullPool)
        if _connect_error(server, dispose=True) is None:
            return  # the server answers: building the dataset creates the database
    raise _unusable(url, exc) from None


def _connect_error(engine: Engine, *, dispose: bool = False) -> DBAPIError | None:
    """The driver's error when connecting to `engine` and running SELECT 1, or None if that works."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except DBAPIError as exc:
        return exc
    finally:
        if dispose:
            engine.dispose()
    return None


def _unusable(url: URL, exc: DBAPIError) -> CourseError:
    """One line on why the database at `url` cannot be used, and what to do about it."""
    shown = url.render_as_string(hide_password=True)
    reason = gist(exc)
    if _LOGIN_REFUSED.search(reason):
        return CourseError(
            f"The database at {shown} refused the login ({reason}): fix the user name or password in DATABASE_URL."
        )
    if _MISSING_DATABASE.search(reason):
        return CourseError(
            f"The database {shown} does not exist ({reason}): create it, or fix its name in DATABASE_URL."
        )
    return CourseError(
        f"Cannot reach the database at {shown} ({reason}): "
        "check DATABASE_URL, start the server, or unset DATABASE_URL to use the course's own database."
    )

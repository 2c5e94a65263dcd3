"""The object every lesson's setup cell returns: settings, engine and measuring tools, bound together."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pandas as pd
from flask import Flask
from IPython.display import display
from sqlalchemy import Engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement

from .config import Settings, settings
from .data import DatasetInfo, copy_dataset, drop_copy, ensure_dataset
from .db import check_connection, check_reachable, course_url, make_engine, parse_url, sqlite_path
from .errors import CourseError, show_course_errors_briefly
from .measure import results
from .measure.display import set_table_options, styled
from .measure.harness import Comparison, compare
from .measure.plans import Plan, explain
from .measure.recorder import QueryRecorder, record
from .measure.units import in_ms
from .renumbering import renumber_saved_work
from .servers import LatencyProxy, check_redis, postgres_url, redis_url
from .shop.app import create_app

__all__ = ["Course", "cache_config", "setup"]


@dataclass
class Course:
    """A lesson's connection to the course database and its measuring tools."""

    lesson: str
    settings: Settings
    url: URL
    engine: Engine
    info: DatasetInfo

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    @property
    def size(self) -> str:
        return self.info.size

    def session(self) -> Session:
        """A new ORM session on the course engine (use it in a `with` block)."""
        return Session(self.engine)

    @contextmanager
    def record(self) -> Iterator[QueryRecorder]:
        """Record the statements run inside the block."""
        with record(self.engine) as rec:
            yield rec

    def explain(self, statement: ClauseElement | str, *, analyze: bool = False) -> Plan:
        return explain(self.engine, statement, analyze=analyze)

    def compare(self, variants: Mapping[str, Callable[[], Any]], **kwargs: Any) -> Comparison:
        """harness.compare for this lesson, engine, backend and size; stored in the results store."""
        kwargs.setdefault("lesson", self.lesson)
        kwargs.setdefault("engine", self.engine)
        kwargs.setdefault("size", self.size)
        return compare(variants, **kwargs)

    def history(self, comparison: str | None = None) -> pd.DataFrame:
        """This lesson's stored measurements at this backend and size (of one comparison), oldest first."""
        frame = results.history(self.lesson)
        frame = frame[(frame["backend"] == self.backend) & (frame["size"] == self.size)]
        return frame if comparison is None else frame[frame["comparison"] == comparison]

    def show_history(self, last: int = 12, *, comparison: str | None = None) -> None:
        """Chart this lesson's stored medians across reruns and show the latest rows."""

        from .measure.plots import history_chart, show_figure  # deferred: matplotlib, only when a chart is shown

        frame = self.history(comparison)
        if frame.empty:
            print("No stored measurements for this lesson, backend and size yet.")
            return
        show_figure(history_chart(frame))
        table = in_ms(frame.tail(last))
        columns = ["measured_at", "comparison", "variant", "median_ms", "iqr_ms", "runs", "statements", "rows"]
        display(styled(table[columns].set_index("measured_at")))

    def app(self, *, views: Any = None, **config: Any) -> Flask:
        """The shop app on this lesson's database; `views` is a Blueprint (or a list), config as keywords."""

        return create_app({"DATABASE_URL": self.url, **cache_config(self.settings), **config}, views=views)

    def private_copy(self, name: str) -> Course:
        """A Course on a fresh writable copy of the dataset, for lessons that change the database."""
        url = copy_dataset(self.size, name, source=self.url)
        # PostgreSQL copies from a template only when nobody is connected to it, so the copy ended this
        # engine's pooled connections: start a fresh pool rather than meet a dead connection later.
        self.engine.dispose()
        engine = make_engine(url)
        return Course(self.lesson, self.settings, url, engine, self.info)

    @contextmanager
    def scratch_copy(self, name: str) -> Iterator[Course]:
        """A private copy for one block (a check, a test): its engine disposed and the copy removed after."""
        copy = self.private_copy(name)
        try:
            yield copy
        finally:
            copy.engine.dispose()
            drop_copy(copy.url)

    def on_postgres(self) -> Course:
        """This lesson on the course's own PostgreSQL (started if needed) with the dataset of this size.

        It is this Course itself when that already is the course's PostgreSQL (the pooling and profiling lessons
        measure PostgreSQL whatever COURSE_BACKEND is).
        """
        url = parse_url(postgres_url(f"shop_{self.size}"), source="the course PostgreSQL URL")
        return self._on(url)

    def on_sqlite(self) -> Course:
        """This lesson on the course's SQLite file of the same size (built if missing); itself if it is that."""
        return self._on(URL.create("sqlite+pysqlite", database=str(sqlite_path(self.size))))

    def _on(self, url: URL) -> Course:
        if self.url == url:
            return self
        info = ensure_dataset(self.size, url=url)
        return Course(self.lesson, self.settings, url, make_engine(url), info)

    def with_latency(self, delay_ms: float) -> tuple[Course, LatencyProxy]:
        """A Course whose connections pass through a proxy adding `delay_ms` per round trip (PostgreSQL).

        Close the proxy when done; its `delay_ms` can be changed while it runs.
        """
        if self.backend != "postgresql" or self.settings.database_url:
            raise CourseError(
                "Added latency needs the course's own PostgreSQL (a network database): "
                "restart the kernel with COURSE_BACKEND=postgres."
            )
        proxy = LatencyProxy(delay_ms).start()
        url = make_url(proxy.url(str(self.url.database)))
        return Course(self.lesson, self.settings, url, make_engine(url), self.info), proxy

    def __repr__(self) -> str:
        return f"Course(lesson={self.lesson!r}, backend={self.backend!r}, size={self.size!r})"


def setup(lesson: str, *, size: str | None = None, backend: str | None = None, quiet: bool = False) -> Course:
    """Check the environment, make sure the dataset exists, connect, and say what was set up.

    Whatever is wrong (a setting, the database, the dataset, the cache) stops here with one line that
    says what to do: a CourseError, which a notebook shows as one red line instead of a traceback.
    """
    show_course_errors_briefly()
    set_table_options()
    s = settings(size=size, backend=backend)
    for moved in renumber_saved_work():  # once, after the lessons were renumbered
        print(f"Renumbered what you saved: {moved}.")
    url = course_url(s)  # the course's PostgreSQL starts here when asked for
    check_reachable(url)  # quick checks first: a build of the dataset may take minutes
    if s.cache == "redis":
        cache_config(s)  # start (or reach) Redis now: an unreachable CACHE_REDIS_URL is one line here too
    info = ensure_dataset(s.size, url=url)
    engine = make_engine(url)
    check_connection(engine)
    course = Course(lesson, s, url, engine, info)
    if not quiet:
        print(
            f"Setup complete: lesson {lesson}, backend {course.backend}, size {info.size} "
            f"({info.total_rows:,} rows), cache {s.cache}."
        )
    return course


def cache_config(chosen: Settings) -> dict[str, Any]:
    """Flask-Caching settings for COURSE_CACHE: a per-process SimpleCache, or a shared Redis.

    Spelled out either way: with no CACHE_TYPE at all, Flask-Caching silently uses NullCache and caches
    nothing (lesson 06 shows it).
    """
    if chosen.cache == "redis":
        url = chosen.cache_redis_url or redis_url()
        check_redis(url)
        return {"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": url}
    return {"CACHE_TYPE": "SimpleCache"}

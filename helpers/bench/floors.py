"""The floors of the reads and writes: the same work done the fastest way available, to hold the course's code
against. The endpoints' floors (a bare Flask view, the raw driver inside one) are `topics.floors`: lesson 09
shows them too."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..course import Course

__all__ = ["raw_connection", "raw_fetch", "select_one_on_open_connection"]


def raw_connection(course: Course) -> Any:
    """A DBAPI connection of the course's driver (sqlite3 or psycopg), opened once outside any timing."""
    connection = course.engine.raw_connection()
    return connection


def raw_fetch(
    course: Course, sql: str, params: Sequence[Any] = (), *, end_transaction: bool = True
) -> tuple[Callable[[], list[Any]], Callable[[], None]]:
    """The raw driver running `sql` (written with `?` placeholders) and fetching every row, as tuples.

    Each call ends its transaction (a rollback), as a request and the course's Session do: on PostgreSQL the
    driver opens one with BEGIN before the statement, so that is the same round trips as the code it is held
    against. `end_transaction=False` leaves it open: one round trip per call and no more.
    Returns the timed function and the cleanup that gives its connection back.
    """
    connection = raw_connection(course)
    if course.backend == "postgresql":
        sql = sql.replace("?", "%s")

    def fetch() -> list[Any]:
        cursor = connection.cursor()
        try:
            cursor.execute(sql, tuple(params))
            return [tuple(row) for row in cursor.fetchall()]
        finally:
            cursor.close()
            if end_transaction:
                connection.rollback()

    return fetch, connection.close


def select_one_on_open_connection(course: Course) -> tuple[Callable[[], int], Callable[[], None]]:
    """`SELECT 1` on a DBAPI connection that stays open: one round trip, the floor for a short request."""
    fetch, close = raw_fetch(course, "SELECT 1", end_transaction=False)
    return (lambda: int(fetch()[0][0])), close

"""The pool of planted problems: each a realistic variant of something a lesson taught, never in its form.

An incident is a version of one endpoint's view that shipped (`deployed/`), or a change to the indexes the
library runs with, or both. The on-call lesson draws five or six with distinct endpoints from a seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Index

from .deployed import (
    book_detail_1,
    book_detail_2,
    book_list_1,
    book_list_2,
    genre_report_1,
    import_loans_1,
    loan_feed_1,
    my_loans_1,
    my_loans_2,
    popular_1,
    popular_2,
)
from .models import Loan

__all__ = ["POOL", "Incident"]


@dataclass(frozen=True)
class Incident:
    """One planted problem: where it is, what it is, which lesson it varies, which objectives catch it."""

    name: str
    endpoint: str  # the view's name in spec.ROUTES
    what: str
    lesson: str  # the lesson (number) whose subject it is a variant of
    catches: tuple[str, ...]  # the objectives that fail while it is there
    view: Callable[..., Any] | None = None  # the view that shipped (None: the specified one)
    missing_index: str | None = None  # a deployed index that was never created in production
    instead: Callable[[], Index] | None = None  # the index production has in its place


@cache  # made once: an Index on a model's columns attaches itself to the table
def _status_only() -> Index:
    return Index("ix_loans_status", Loan.status)


POOL: tuple[Incident, ...] = (
    Incident(
        "author through a model property",
        "book_list",
        "The catalogue serialises `book.author_name`, a model property that lazy-loads each book's author: one "
        "statement per distinct author on every page (an N+1 hidden in the model, not in the view).",
        "03",
        ("statements", "db work"),
        view=book_list_1.book_list,
    ),
    Incident(
        "whole rows for a list",
        "book_list",
        "The catalogue loads whole Book rows and joined Author rows to show four fields: every synopsis and "
        "every biography travel from the database on every page.",
        "02",
        ("db work", "p95"),
        view=book_list_2.book_list,
    ),
    Incident(
        "an ORM object in the cache",
        "book_detail",
        "The book page memoizes `find_book()`, which returns the ORM object: a cache hit gives back a detached "
        "Book whose `author` was never loaded, and reading it raises DetachedInstanceError (a 500).",
        "06",
        ("answers", "errors"),
        view=book_detail_1.book_detail,
    ),
    Incident(
        "a session kept alive by the error log",
        "book_detail",
        "The book page opens a session of its own and does not close it on the 404 path; the app keeps its last "
        "errors with their tracebacks, and the tracebacks keep the sessions and their connections: after eight "
        "unknown ids the pool is empty and every request waits, then gets a 503.",
        "07",
        ("errors",),
        view=book_detail_2.book_detail,
    ),
    Incident(
        "an index on the wrong column",
        "overdue_loans",
        "Production has an index on `loans.status` alone (two values: it narrows little) instead of the one on "
        "(status, due_at, id) that serves `WHERE status = 'out' AND due_at < ? ORDER BY due_at, id LIMIT 20`.",
        "04",
        ("db work", "p95"),
        missing_index="ix_loans_status_due",
        instead=_status_only,
    ),
    Incident(
        "a cursor turned into an offset",
        "loan_feed",
        "The sync feed takes a keyset cursor (?after=<id>) but counts the rows before it and hands the count to "
        "the team's OFFSET paginator: every page reads and discards every earlier loan.",
        "04",
        ("db work", "p95"),
        view=loan_feed_1.loan_feed,
    ),
    Incident(
        "one cache entry for every member",
        "my_loans",
        "The member page is cached under the default key, the path `/me/loans`, which does not include the "
        "X-Member-Id header: the first member's loans are served to everyone for a minute.",
        "06",
        ("answers", "privacy"),
        view=my_loans_1.my_loans,
    ),
    Incident(
        "loans sorted in Python, books loaded one by one",
        "my_loans",
        "The member page loads the member, then all their loans through the lazy relationship, then each loan's "
        "book: 2 + N statements, every loan ever, sorted and cut in Python.",
        "03",
        ("statements",),
        view=my_loans_2.my_loans,
    ),
    Incident(
        "a cache key without the query string",
        "popular",
        "The popular list is cached without `query_string=True`: the first genre asked for is the answer for "
        "every genre for five minutes.",
        "06",
        ("answers",),
        view=popular_1.popular,
    ),
    Incident(
        "counting in Python",
        "popular",
        "The popular list loads every loan of the last 90 days with its whole book and counts them in Python, "
        "instead of a GROUP BY on the genre's loans.",
        "03",
        ("db work", "p95"),
        view=popular_2.popular,
    ),
    Incident(
        "a query inside a loop",
        "genre_report",
        "The genre report runs three COUNT queries per genre in a Python loop: 36 statements where three "
        "GROUP BYs answer it.",
        "09",
        ("statements",),
        view=genre_report_1.genre_report,
    ),
    Incident(
        "a commit per imported row",
        "import_loans",
        "The import commits after every loan it adds (so that 'a bad row later loses nothing'): one transaction "
        "and one disk sync per row, and a half-done import when a row is bad.",
        "08",
        ("commits", "statements"),
        view=import_loans_1.import_loans,
    ),
)

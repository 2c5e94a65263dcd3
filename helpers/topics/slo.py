"""The on-call lesson's service-level objectives: each endpoint's fixed requests, budgets, and how each objective
is measured on an app (`helpers.topics.oncall` runs them and judges them against the reference run).

Deterministic (what tests assert): the same answers as the specification; no member sees another's data; the
statements and commits a fixed set of requests costs; the work the database does for them (SQLite: virtual
machine steps, PostgreSQL: buffers touched with the best access path it has) and the bytes it sends back.
Measured (never asserted): p95 latency under a stated load on a real server, and the 5xx/503 answers it got.
"""

from __future__ import annotations

import logging
import sqlite3
import statistics
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from flask import Flask
from sqlalchemy import Engine, func, select, text

from ..data.library import LibrarySize
from ..library.models import GENRES, Loan
from ..measure.recorder import Statement, bytes_fetched, count_commits, record
from ..servers.wsgi import served
from .loadtest import run_load

__all__ = [
    "ENDPOINTS",
    "OBJECTIVES",
    "Call",
    "Endpoint",
    "Gateway",
    "Load",
    "Replies",
    "database_work",
    "p95_bound_ms",
    "replies",
    "send",
    "under_load",
    "written_rows_removed",
]

OBJECTIVES = ("answers", "privacy", "errors", "statements", "commits", "db work", "p95")
_MEMBER_HEADER = "X-Member-Id"
# The stated load: CONCURRENCY clients on a real server, ROUNDS rounds of up to REQUESTS each, ROUND_CAP_S at most
CONCURRENCY, ROUNDS, REQUESTS, ROUND_CAP_S = 4, 3, 60, 3.0
_WRITES_PER_ROUND = 6  # POSTs of _IMPORT_SIZE loans per round, one client
_IMPORT_SIZE = 50
# p95 bound: BOUND_FACTOR times the reference's median p95 on this machine, plus BOUND_SLACK_MS.
BOUND_FACTOR, BOUND_SLACK_MS = 3.0, 5.0
# db work bound: WORK_FACTOR times the reference's, plus a little for a different but sound plan.
WORK_FACTOR, WORK_SLACK, BYTES_SLACK = 2.0, 10, 2048


@dataclass(frozen=True)
class Call:
    """One request of an endpoint's fixed set: a path, as a member (the gateway's header), with a JSON body."""

    path: str
    member: int | None = None
    body: dict[str, Any] | None = None

    def label(self) -> str:
        return self.path + (f" as member {self.member}" if self.member else "")


@dataclass(frozen=True)
class Endpoint:
    """One endpoint's objectives: its requests, what it may cost, and whether it serves private data."""

    name: str
    method: str
    rule: str
    calls: Callable[[LibrarySize], tuple[Call, ...]]
    statements: int  # at most, over `calls`
    commits: int | None = None  # at most, over `calls` (writes)
    private: bool = False
    more_load: Callable[[LibrarySize], tuple[Call, ...]] | None = None  # the load's calls beyond `calls`

    @property
    def route(self) -> str:
        return f"{self.method} {self.rule}"

    def load_paths(self, size: LibrarySize) -> list[str]:
        """The GET paths of the stated load (a member's requests say who through `?as=`, as the gateway does)."""
        calls = self.calls(size) + (self.more_load(size) if self.more_load else ())
        return [_with_member(c.path, c.member) for c in calls]


def _with_member(path: str, member: int | None) -> str:
    if member is None:
        return path
    return f"{path}{'&' if '?' in path else '?'}as={member}"


def _import_body(batch: int) -> dict[str, Any]:
    return {
        "loans": [
            {
                "book_id": 1 + (batch * 7 + i) % 50,
                "member_id": 1 + i % 20,
                "borrowed_at": f"2024-0{1 + batch % 9}-1{i % 10}",
            }
            for i in range(_IMPORT_SIZE)
        ]
    }


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "book_list", "GET", "/books",
        lambda s: (Call("/books"), Call("/books?genre=crime"), Call("/books?genre=poetry&after=200"),
                   Call(f"/books?after={s.books // 2}")),
        statements=4,
    ),
    Endpoint(
        "book_detail", "GET", "/books/<book_id>",
        lambda s: (Call("/books/1"), Call("/books/2"), Call("/books/1"), Call(f"/books/{s.books // 3}"),
                   Call(f"/books/{s.books + 1000}"), Call("/books/2"), Call("/books/3"),
                   Call(f"/books/{s.books + 7}")),
        statements=10,
        # Under the load, people also ask for books that are not there (a 404 each; Flask-Caching keeps a 404 too).
        more_load=lambda s: tuple(Call(f"/books/{s.books + 100 + 17 * i}") for i in range(8)),
    ),
    Endpoint("overdue_loans", "GET", "/loans/overdue", lambda s: (Call("/loans/overdue"),) * 2, statements=2),
    Endpoint(
        "loan_feed", "GET", "/feed",
        lambda s: (Call("/feed"), Call(f"/feed?after={s.loans // 2}"), Call(f"/feed?after={s.loans - 250}"),
                   Call(f"/feed?after={s.loans - 120}")),
        statements=8,
    ),
    Endpoint(
        "my_loans", "GET", "/me/loans",
        lambda s: tuple(Call("/me/loans", member=m) for m in (1, 2, 1, 3, 4, 2)),
        statements=6,
        private=True,
    ),
    Endpoint(
        "popular", "GET", "/popular",
        lambda s: tuple(Call(f"/popular?genre={g}") for g in (GENRES[1], GENRES[7], GENRES[1], GENRES[4])),
        statements=4,
    ),
    Endpoint("genre_report", "GET", "/reports/genres", lambda s: (Call("/reports/genres"),) * 2, statements=8),
    Endpoint(
        "import_loans", "POST", "/loans/import",
        lambda s: tuple(Call("/loans/import", body=_import_body(b)) for b in range(2)),
        statements=4,
        commits=2,
    ),
)  # fmt: skip


# ---------------------------------------------------------------------------------------------- the gateway
class Gateway:
    """What sits in front of the library in production: it signs requests in. For the load generator, which sends
    bare GETs, a request's `?as=<member>` becomes the X-Member-Id header (and leaves the query string)."""

    def __init__(self, wsgi_app: Any) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        pairs = parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        member = [v for k, v in pairs if k == "as"]
        if member:
            environ["HTTP_X_MEMBER_ID"] = member[-1]
            environ["QUERY_STRING"] = urlencode([(k, v) for k, v in pairs if k != "as"])
        return self.wsgi_app(environ, start_response)


# ---------------------------------------------------------------------------------------------- the fixed calls
@dataclass
class Replies:
    """What an app answered to an endpoint's fixed calls, and what they cost."""

    answers: list[tuple[int, Any]] = field(default_factory=list)  # (status, JSON)
    statements: int = 0
    commits: int = 0


@contextmanager
def written_rows_removed(engine: Engine) -> Iterator[None]:
    """Loans a write adds are deleted afterwards, so that every run starts from the same data."""
    with engine.connect() as conn:
        last = conn.scalar(select(func.max(Loan.id))) or 0
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM loans WHERE id > :last"), {"last": last})


def send(app: Flask, call: Call, method: str) -> Any:
    """One call through the test client."""
    headers = {_MEMBER_HEADER: str(call.member)} if call.member else {}
    client = app.test_client()
    if method == "POST":
        return client.post(call.path, json=call.body, headers=headers)
    return client.get(call.path, headers=headers)


def replies(app: Flask, endpoint: Endpoint, calls: Sequence[Call]) -> Replies:
    """Send the calls in order on one app (one cache): each answer, and the statements and commits in all."""
    engine: Engine = app.extensions["engine"]
    got = Replies()
    with written_rows_removed(engine), count_commits(engine) as commits:
        for call in calls:
            response = send(app, call, endpoint.method)
            got.answers.append((response.status_code, response.get_json(silent=True)))
            got.statements += int(response.headers.get("X-Statements", 0))
    got.commits = commits.count
    return got


# ---------------------------------------------------------------------------------------------- db work
def _sqlite_steps(path: str, statement: Statement) -> int:
    """SQLite virtual-machine steps (in tens) to run the statement again on its own read-only connection."""
    steps = 0

    def tick() -> int:
        nonlocal steps
        steps += 1
        return 0

    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        conn.set_progress_handler(tick, 10)
        conn.execute(statement.sql, statement.params or ()).fetchall()
    return steps


def _postgres_buffers(engine: Engine, statement: Statement) -> int:
    """Buffers PostgreSQL touches to run the statement on the plan a web request aims for (index lookups and
    nested loops; sequential scans, hash and merge joins discouraged): what the indexes make possible, whatever
    the planner would pick on tables this small."""
    with engine.connect() as conn:
        for planner_method in ("seqscan", "hashjoin", "mergejoin"):
            conn.exec_driver_sql(f"SET LOCAL enable_{planner_method} = off")
        plan = conn.exec_driver_sql(
            "EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, FORMAT JSON) " + statement.sql, statement.params or None
        ).scalar()
        conn.rollback()
    top = plan[0]["Plan"] if plan else {}
    return int(top.get("Shared Hit Blocks", 0)) + int(top.get("Shared Read Blocks", 0))


def database_work(app: Flask, endpoint: Endpoint, calls: Iterable[Call]) -> tuple[int, int]:
    """(work units, bytes sent back) for the calls, each on an app whose cache is empty (so each reaches the
    database): the statements are recorded, then run again on their own to count the work."""
    engine: Engine = app.extensions["engine"]
    units = sent = 0
    for call in dict.fromkeys(calls):
        with record(engine) as recorded:
            send(app, call, endpoint.method)
        app.extensions["cache"][next(iter(app.extensions["cache"]))].clear()
        queries = [s for s in recorded.statements if s.sql.lstrip().upper().startswith(("SELECT", "WITH"))]
        for statement in queries:
            if engine.dialect.name == "sqlite":
                units += _sqlite_steps(str(engine.url.database), statement)
            elif engine.dialect.name == "postgresql":
                units += _postgres_buffers(engine, statement)
        recorded.statements[:] = queries
        sent += bytes_fetched(engine, recorded)
    return units, sent


# ---------------------------------------------------------------------------------------------- under load
@dataclass
class Load:
    """What the stated load saw: each round's p95, and how many answers were 5xx (or none at all)."""

    p95_ms: list[float]
    requests: int
    failed: int
    statuses: dict[int, int]

    @property
    def median_p95_ms(self) -> float:
        return statistics.median(self.p95_ms) if self.p95_ms else float("nan")


def under_load(app: Flask, endpoint: Endpoint, size: LibrarySize, rounds: int = ROUNDS) -> Load:
    """The stated load on `app`, served by waitress on loopback: GETs from CONCURRENCY clients, or for a write one
    client POSTing imports (the loans it adds are deleted afterwards)."""
    calls = endpoint.calls(size)
    p95s: list[float] = []
    statuses: dict[int, int] = {}
    failed = requests = 0
    if endpoint.method == "POST":
        with written_rows_removed(app.extensions["engine"]):
            send(app, calls[0], "POST")  # warm-up
            for _ in range(rounds):
                times = []
                for i in range(_WRITES_PER_ROUND):
                    started = time.perf_counter()
                    status = send(app, calls[i % len(calls)], "POST").status_code
                    times.append(time.perf_counter() - started)
                    statuses[status] = statuses.get(status, 0) + 1
                    failed += status >= 500
                p95s.append(_p95(times) * 1000)
                requests += len(times)
        return Load(p95s, requests, failed, statuses)
    paths = endpoint.load_paths(size)
    app.wsgi_app = Gateway(app.wsgi_app)  # type: ignore[method-assign]
    with (
        _quiet_queue(),
        served(app, threads=2 * CONCURRENCY) as server,
    ):  # a thread free for every client, and some
        for path in dict.fromkeys(paths):
            server.get(path)  # warm-up: each path once
        for _ in range(rounds):
            result = run_load(
                server.url, paths, concurrency=CONCURRENCY, requests=REQUESTS, duration_s=ROUND_CAP_S
            )
            p95s.append(result.percentile_s(95) * 1000)
            requests += result.requests + len(result.errors)
            failed += result.failed
            for status, n in result.statuses.items():
                statuses[status] = statuses.get(status, 0) + n
    return Load(p95s, requests, failed, statuses)


@contextmanager
def _quiet_queue() -> Iterator[None]:
    """waitress warns on stderr when a request waits for a thread ("Task queue depth is 1"): a load test expects
    it, and its latency is what the p95 measures."""
    logger = logging.getLogger("waitress.queue")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _p95(values: Sequence[float]) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[94]


def p95_bound_ms(reference_p95_ms: float) -> float:
    """The p95 an endpoint must stay under: BOUND_FACTOR times the reference's on this machine, plus a little."""
    return BOUND_FACTOR * reference_p95_ms + BOUND_SLACK_MS

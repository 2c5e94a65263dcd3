"""Exercises for lesson 07 · Connection pooling: a pool chosen for a stated load (raced), the request that leaks,
a connection given back before a slow call, and your app's pool (improve the app).

The checks read the pool back from the engine the learner's options built and prove it with the lesson's
instruments: connections lent out until one is refused (the real ceiling, and how long the refused checkout
waited), a load in two bursts on a real server (connections at once, waits, 503s, connections reopened after the
lull), and the pool watched while a view answers (a leak shows every time with the cycle collector paused).

The options accepted by the improve-the-app task are kept for the capstone and `make app VIEWS=mine` as
data/my_app/07_engine_options.json (`saved_views.save_engine_options`): a JSON object of create_engine keywords.
"""

from __future__ import annotations

import functools
import gc
import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pandas as pd
from flask import Blueprint, Flask, abort, current_app
from sqlalchemy import Engine, func, select
from sqlalchemy.pool import NullPool

from ..course import Course
from ..db import make_engine
from ..errors import CourseError
from ..measure.display import say, show_code
from ..measure.harness import Comparison
from ..measure.predictions import Predicted
from ..servers.wsgi import wait_until
from ..shop import optimized
from ..shop.db import get_engine, get_session
from ..shop.models import Customer, Order
from ..topics.pooling import (
    POOL_OPTIONS,
    checked_out,
    exhaustion,
    gc_paused,
    held_views,
    partner_views,
    pool_settings,
    race_pools,
    two_bursts,
    watched_load,
)
from .core import CheckResult, Exercise, Incorrect, NotAnswered, Question, contains_blank, hint_text, judge
from .saved_views import assemble, save_engine_options, saved_files

__all__ = [
    "BUDGET",
    "CLIENTS",
    "COURSE_POOL",
    "HOLD_MS",
    "IMPROVE_HINTS",
    "IMPROVE_STARTER",
    "Q1",
    "Q2",
    "Q3",
    "Lesson07Exercises",
    "PoolTask",
    "exercises",
    "race_pool",
    "shipping",
    "shipping_page",
    "shipping_quote",
]

# The stated load of exercise 1 and the race: a server with 12 threads, each request one connection; the
# database gives this app 8; the traffic never drops below 8 requests at once (with short lulls); a slow moment
# keeps each connection 30 ms; a request that cannot get one answers 503 within a second.
CLIENTS = 12
BUDGET = 8
_STEADY = 8
HOLD_MS = 30
_FAIL_WITHIN_S = 1.0
_MIN_TIMEOUT_S = 0.25  # well above the waits the stated load makes (a few holds of 30 ms)
COURSE_POOL = {"pool_size": 8, "max_overflow": 0, "pool_timeout": 1}
# The improve-the-app task: your app on waitress with 8 threads (make app and the capstone), 8 connections.
_APP_THREADS = 8
_APP_TIMEOUT_S = 2.0
_CARRIER_DELAY_S = 0.02  # q3: what the carrier's API takes to answer
_MISSING = 999_999_999  # a customer id no dataset has: the 404 path
_HINT_LINE = "# ex.{q}.hint()  ex.{q}.hint(2)  ex.{q}.solution()"

# ---------------------------------------------------------------------- the starter cells, verbatim
_STARTER_Q1 = f"""\
my_pool = ____  # a dict of create_engine's pool options: {{"pool_size": ..., ...}}

ex.q1.check(my_pool)
{_HINT_LINE.format(q="q1")}"""

_STARTER_Q2 = f"""\
leaking_request = ____  # a path, such as "/customers/1/badge"

ex.q2.check(leaking_request)
{_HINT_LINE.format(q="q2")}"""

_STARTER_Q3 = f"""\
quick_shipping = Blueprint("quick_shipping", __name__)


@quick_shipping.get("/customers/<int:customer_id>/shipping")
def shipping_page(customer_id):
    \"\"\"{{"id": customer_id, "city": the customer's city, "quote": shipping_quote(city)}}, or a 404 for a missing
    customer; one statement. shipping_quote takes 20 ms and needs no database: hold no connection meanwhile.\"\"\"
    ____


ex.q3.check(quick_shipping)
{_HINT_LINE.format(q="q3")}"""

IMPROVE_STARTER = f"""\
ENGINE_OPTIONS = ____  # your app's pool: a dict of create_engine options

ex.improve.check(ENGINE_OPTIONS)
{_HINT_LINE.format(q="improve")}"""

_SOLUTION_Q1 = """\
my_pool = {
    "pool_size": 8,  # the traffic never drops below 8 requests at once: keep 8 connections open
    "max_overflow": 0,  # 8 is what the database gives this app: not one more in a burst
    "pool_timeout": 1,  # the 4 clients beyond 8 wait about one request (tens of ms); a stuck database: 503 in 1 s
}
"""
_SOLUTION_Q2 = """\
app = pg.app(views=pooling.partner_views)  # the partner's three endpoints, on a pool of their own
engine, client = app.extensions["engine"], app.test_client()
with gc_paused():  # a forgotten session keeps its connection until the block ends: a leak shows every time
    for customer_id in range(1, 60):
        for endpoint in ("badge", "spent", "recent"):
            path = f"/customers/{customer_id}/{endpoint}"
            client.get(path)
            if checked_out(engine):
                leaking_request = path
                break
        else:
            continue
        break
engine.dispose()
"""
_SOLUTION_IMPROVE = """\
ENGINE_OPTIONS = {
    "pool_size": 8,  # waitress runs 8 threads, one connection each: 8 kept open, none idle beyond that
    "max_overflow": 0,  # 8 is what the database gives this app
    "pool_timeout": 2,  # exhausted anyway (a leak, a stuck database): a 503 within 2 s, not a 30 s hang
    "pool_pre_ping": True,  # a connection the database dropped (a restart) is replaced before a request uses it
}
"""


def _solution_q3() -> str:
    return _STARTER_Q3.replace(
        "    ____",
        "    session = get_session()\n"
        "    city = session.scalar(select(Customer.city).where(Customer.id == customer_id))\n"
        "    if city is None:\n"
        '        abort(404, description=f"no customer with id {customer_id}")\n'
        "    session.close()  # the connection goes back to the pool now: the carrier does not need it\n"
        '    return {"id": customer_id, "city": city, "quote": shipping_quote(city)}',
    ).rsplit("\n# ex.", 1)[0]


# ---------------------------------------------------------------------- reading options
def _options(answer: Any, what: str = "your answer") -> dict[str, Any]:
    """The learner's pool options as a plain dict, or NotAnswered / Incorrect saying what is wrong with them."""
    if contains_blank(list(answer.values()) if isinstance(answer, Mapping) else answer):
        raise NotAnswered("replace ____ with a dict of pool options, then run this cell again")
    if not isinstance(answer, Mapping):
        raise Incorrect(f"{what} should be a dict of create_engine options, not a {type(answer).__name__}")
    known = [key for key in POOL_OPTIONS if key != "poolclass"]
    if unknown := [key for key in answer if key not in known]:
        blog = ": SQLALCHEMY_POOL_SIZE was a Flask-SQLAlchemy 2 setting" if "SQLALCHEMY" in str(unknown[0]) else ""
        raise Incorrect(f"{unknown[0]!r} is not one of create_engine's pool options ({', '.join(known)}){blog}")
    try:
        json.dumps(dict(answer))
    except (TypeError, ValueError):
        raise Incorrect("keep the options to numbers and True/False") from None
    if any(isinstance(value, str) for value in answer.values()):
        raise Incorrect("the options are numbers and True/False, not strings")
    return dict(answer)


def _app(course: Course, views: Any, options: Mapping[str, Any]) -> Flask:
    """course.app() on these ENGINE_OPTIONS; Incorrect if create_engine refuses them."""
    try:
        return course.app(views=views, ENGINE_OPTIONS=dict(options))
    except (TypeError, ValueError) as exc:
        raise Incorrect(f"create_engine refused them: {str(exc).split(' sent to ')[0]}") from None


def _held_paths(course: Course, hold_ms: int) -> list[str]:
    customers = course.info.rows["customers"]
    return [f"/customers/{i}/held?hold_ms={hold_ms}" for i in range(1, min(customers, 200), 7)]


# ---------------------------------------------------------------------- q1: a pool for the stated load
@dataclass(frozen=True)
class _Measured:
    """What the instruments saw of one pool: its ceiling, the refused checkout's wait, the two bursts."""

    ceiling: int
    waited_s: float | None
    peak: int
    reopened: int
    failed: int
    statuses: dict[int, int]
    longest_wait_ms: float


def _measure(app: Flask, course: Course, timeout: float) -> _Measured:
    engine = app.extensions["engine"]
    # Lend connections out until one is refused (only when the refusal comes quickly: the default waits 30 s).
    ceiling, waited = exhaustion(engine, most=CLIENTS + 4) if timeout <= 2 * _FAIL_WITHIN_S else (-1, None)
    results, summary, reopened = two_bursts(
        app, _held_paths(course, HOLD_MS), concurrency=CLIENTS, requests=4 * CLIENTS
    )
    statuses: dict[int, int] = {}
    for result in results:
        for status, n in result.statuses.items():
            statuses[status] = statuses.get(status, 0) + n
    return _Measured(
        ceiling=ceiling,
        waited_s=waited,
        peak=summary["peak_checked_out"],
        reopened=reopened,
        failed=sum(result.failed for result in results),
        statuses=statuses,
        longest_wait_ms=summary["max_wait_ms"],
    )


def _q1_problem(settings: Mapping[str, Any], seen: _Measured) -> str | None:
    """Why a pool does not fit the stated load, with what the instruments measured, or None if it does."""
    if settings["pool"] != "QueuePool":
        return f"that builds a {settings['pool']}: keep the default QueuePool, and size it"
    size, overflow, timeout = settings["pool_size"], settings["max_overflow"], settings["pool_timeout"]
    at_once = f"{CLIENTS} clients had {seen.peak} connections checked out at once"
    if overflow < 0:
        return (
            f"max_overflow={overflow} removes the ceiling: {at_once}, over the {BUDGET} the database gives this "
            "app (and a leak would go on opening connections until the database refuses everyone's)"
        )
    limit = size + overflow
    if limit > BUDGET:
        return f"pool_size + max_overflow = {limit}: {at_once}, over the {BUDGET} the database gives this app"
    if limit < BUDGET:
        return (
            f"pool_size + max_overflow = {limit}: {CLIENTS} clients shared {seen.peak} connections where the "
            f"database allows {BUDGET}, and waited for them (up to {seen.longest_wait_ms:.0f} ms)"
        )
    if size < _STEADY:
        return (
            f"pool_size = {size}: the traffic never drops below {_STEADY} requests at once, yet the pool closed "
            f"connections whenever the load paused, and opened {seen.reopened} new ones in the second burst "
            "(pool_size is what it keeps open)"
        )
    if timeout > _FAIL_WITHIN_S:
        return (
            f"pool_timeout = {timeout:g} s: with every connection busy (a stuck database) a request waits that "
            f"long for its 503; the shop wants it within {_FAIL_WITHIN_S:g} s"
        )
    if timeout < _MIN_TIMEOUT_S:
        answered = f"{seen.statuses.get(503, 0)} requests answered 503 here"
        return (
            f"pool_timeout = {timeout:g} s: under the stated load the clients beyond {BUDGET} wait for a "
            f"connection (up to {seen.longest_wait_ms:.0f} ms here; {answered}): give them at least "
            f"{_MIN_TIMEOUT_S:g} s"
        )
    if seen.failed:
        return f"under the stated load {seen.failed} requests failed ({seen.statuses}): rerun the check"
    return None


def _check_q1(course: Course, answer: Any) -> str:
    options = _options(answer, "my_pool")
    app = _app(course, held_views, options)
    try:
        settings = pool_settings(app.extensions["engine"])
        seen = _measure(app, course, settings.get("pool_timeout", 30))
    finally:
        app.extensions["engine"].dispose()
    if problem := _q1_problem(settings, seen):
        raise Incorrect(problem)
    refused = f"; lending them out, the {seen.ceiling + 1}th checkout waited {seen.waited_s:.2f} s and was refused"
    return (
        f"Read back: pool_size {settings['pool_size']}, max_overflow {settings['max_overflow']}, pool_timeout "
        f"{settings['pool_timeout']:g} s. Measured: {CLIENTS} clients had at most {seen.peak} connections at "
        f"once, none reopened after the lull, no 503 (the longest wait for a connection "
        f"{seen.longest_wait_ms:.0f} ms)"
        f"{refused if seen.waited_s is not None else ''}."
    )


Q1 = Question(
    title="A pool for the stated load",
    starter=_STARTER_Q1,
    check=_check_q1,
    hints=(
        "Three numbers answer three sentences of the load: what stays open (the traffic that never goes away), "
        "the most at once (what the database gives this app, not what the clients would like), and how long a "
        "request may wait for a connection (longer than the waits the load makes, shorter than the 503 deadline).",
        "create_engine's pool_size, max_overflow and pool_timeout (seconds); the real ceiling is pool_size + "
        "max_overflow, and max_overflow=-1 means no ceiling at all.",
    ),
    solution=_SOLUTION_Q1,
)


def race_pool(
    pg: Course, my_pool: Any, prediction: Predicted = None, *, requests: int = 120
) -> tuple[Comparison, pd.DataFrame]:
    """The lesson's race on PostgreSQL: the stated load's short requests from CLIENTS clients, served with no pool
    (NullPool), SQLAlchemy's default pool, the course's pool and yours (once it is a dict create_engine takes)."""
    pools: dict[str, dict[str, Any]] = {
        "NullPool (a connection per request)": {"poolclass": NullPool},
        "the default pool (5 + 10)": {},
        "the course's pool (8 + 0)": dict(COURSE_POOL),
    }
    try:
        pg.app(ENGINE_OPTIONS=_options(my_pool, "my_pool")).extensions["engine"].dispose()
        pools["yours"] = dict(my_pool)
    except (Incorrect, TypeError, ValueError) as exc:
        say(f"Your pool is not in the race ({exc}): it runs the other three.", "#7a6a00")
    best = "yours" if "yours" in pools else "the course's pool (8 + 0)"
    return race_pools(
        pg,
        held_views,
        _held_paths(pg, 0),
        pools,
        concurrency=CLIENTS,
        requests=requests,
        naive="NullPool (a connection per request)",
        best=best,
        prediction=prediction,
    )


# ---------------------------------------------------------------------- q2: the request that leaks
def _check_q2(course: Course, answer: Any) -> str:
    if not isinstance(answer, str) or not answer.startswith("/"):
        raise Incorrect(f"answer with the path of a request, such as '/customers/1/badge', not {answer!r:.40}")
    app = course.app(views=partner_views)
    engine = app.extensions["engine"]
    try:
        adapter = app.url_map.bind("localhost")
        try:
            endpoint, _ = adapter.match(answer.split("?")[0])
        except Exception:
            raise Incorrect(
                f"{answer} is none of the partner's endpoints (/customers/<id>/badge, /spent, /recent)"
            ) from None
        with gc_paused():
            status = app.test_client().get(answer).status_code
            left = checked_out(engine)
        if not left:
            raise Incorrect(
                f"GET {answer} answered {status} and gave its connection back: it does not leak; measure other "
                "customers, on each endpoint"
            )
    finally:
        gc.collect()
        engine.dispose()
    return (
        f"GET {answer} left {left} connection checked out after it answered: {endpoint.split('.')[-1]} returns "
        "early, before session.close(), for a customer without orders."
    )


Q2 = Question(
    title="The request that leaks",
    starter=_STARTER_Q2,
    check=_check_q2,
    hints=(
        "A leak is a connection still checked out after its request has answered. It may hide on one endpoint, "
        "and on some requests only (some customers): measure each endpoint with several customers, with the "
        "collector paused so that a leak shows every time.",
        "pg.app(views=pooling.partner_views) gives an app whose .test_client() sends requests; gc_paused() and "
        "checked_out(app.extensions['engine']) are the lesson's instruments.",
    ),
    solution=_SOLUTION_Q2,
)


# ---------------------------------------------------------------------- q3: give the connection back early
def shipping_quote(city: str) -> float:
    """The carrier's price for shipping to `city`: a slow call to another service (it takes 20 ms).

    It notes how many connections the app's pool had checked out while it waited, for lesson 07's check.
    """
    current_app.extensions.setdefault("shipping_quotes", []).append(checked_out(get_engine()))
    time.sleep(_CARRIER_DELAY_S)
    return round(4.9 + 0.1 * len(city), 2)


shipping = Blueprint("q3_reference", __name__)


@shipping.get("/customers/<int:customer_id>/shipping")
def shipping_page(customer_id: int) -> dict[str, Any]:
    session = get_session()
    city = session.scalar(select(Customer.city).where(Customer.id == customer_id))
    if city is None:
        abort(404, description=f"no customer with id {customer_id}")
    session.close()  # the connection goes back to the pool now: the carrier does not need it
    return {"id": customer_id, "city": city, "quote": shipping_quote(city)}


@functools.lru_cache(maxsize=16)
def _busiest_customer(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            busiest = conn.scalar(
                select(Order.customer_id).group_by(Order.customer_id).order_by(func.count().desc()).limit(1)
            )
    finally:
        engine.dispose()
    return int(busiest or 2)


def _ids(course: Course) -> list[int]:
    """Customer 1, the busiest customer, and one that does not exist."""
    return [1, _busiest_customer(course.url.render_as_string(hide_password=False)), _MISSING]


@contextmanager
def _apps(course: Course, views: Any, reference: Blueprint, rule: str) -> Iterator[tuple[Flask, Flask]]:
    """The learner's app and the reference app on one database; engines disposed on exit."""
    if not isinstance(views, Blueprint):
        raise Incorrect(f"pass your Blueprint (the object whose .get(...) decorates your view), not {type(views)}")
    mine, theirs = course.app(views=views), course.app(views=reference)
    try:
        if not any(r.rule == rule for r in mine.url_map.iter_rules()):
            raise Incorrect(f"your blueprint does not serve GET {rule}: decorate your view with that rule")
        yield mine, theirs
    finally:
        # Leaked sessions give their connections back when collected: collect first, so that dispose()
        # closes them rather than leaving them to the interpreter's exit.
        gc.collect()
        for app in (mine, theirs):
            app.extensions["engine"].dispose()


def _answer(app: Flask, url: str) -> tuple[int, Any]:
    response = app.test_client().get(url)
    return response.status_code, response.get_json(silent=True)


def _same_answer(url: str, got: tuple[int, Any], expected: tuple[int, Any]) -> None:
    if got[0] != expected[0]:
        message = (got[1] or {}).get("message", "") if isinstance(got[1], dict) else ""
        raise Incorrect(
            f"GET {url} answered {got[0]}, expected {expected[0]}" + (f" ({message})" if message else "")
        )
    if got[1] != expected[1]:
        raise Incorrect(f"GET {url} answered {got[1]!r:.120}, expected {expected[1]!r:.120}")


def _no_leak(engine: Engine, url: str, status: int) -> None:
    left = checked_out(engine)
    if left:
        raise Incorrect(
            f"after GET {url} ({status}), {left} connection{'s were' if left > 1 else ' was'} still checked out: "
            "a session that is never closed keeps its connection (close it on every path, or use get_session())"
        )


def _quoted_without_a_connection(mine: Flask, url: str, expected: tuple[int, Any]) -> None:
    """GET `url`: the reference's answer, nothing left checked out, the carrier asked once, with no connection
    held while it answered."""
    quotes: list[int] = mine.extensions.setdefault("shipping_quotes", [])
    quotes.clear()
    got = _answer(mine, url)
    _same_answer(url, got, expected)
    _no_leak(mine.extensions["engine"], url, got[0])
    if got[0] == 200 and len(quotes) != 1:
        raise Incorrect(f"GET {url} asked the carrier {len(quotes)} times: ask shipping_quote(city) once")
    if quotes and quotes[0]:
        raise Incorrect(
            f"GET {url} held {quotes[0]} connection while it waited for the carrier: give it back to the pool "
            "first, then call shipping_quote"
        )


def _check_q3(course: Course, answer: Any) -> str:
    urls = [f"/customers/{i}/shipping" for i in _ids(course)]
    with _apps(course, answer, shipping, "/customers/<int:customer_id>/shipping") as (mine, reference):
        expected = {url: _answer(reference, url) for url in urls}
        with gc_paused():
            for url in urls:
                _quoted_without_a_connection(mine, url, expected[url])
    return (
        f"{len(urls)} requests; while each waited {_CARRIER_DELAY_S * 1000:.0f} ms for the carrier, it held no "
        "connection: another request could use it."
    )


Q3 = Question(
    title="Give the connection back before a slow call",
    starter=_STARTER_Q3,
    check=_check_q3,
    hints=(
        "A session keeps its connection from its first statement until its transaction ends. Read what you need, "
        "end the transaction, then call the carrier: the connection is back in the pool while it answers.",
        "get_session() for the request's session; session.close() (or commit()) hands the connection back and "
        "the session can still be used; abort(404, ...) for a missing customer.",
    ),
    solution=_solution_q3(),
)


# ---------------------------------------------------------------------- improve the app: your app's pool
IMPROVE_HINTS = (
    "Your app's server runs 8 threads, each request on one connection, and the database gives your app 8: the "
    "most at once is both what no thread waits beyond and what the database allows. When the pool is exhausted "
    "anyway, a quick 503 beats a hang, and a database restart should cost no failed request.",
    "pool_size + max_overflow is the ceiling; pool_timeout (seconds) how long a checkout waits; pool_pre_ping "
    "tests a connection at checkout; they are create_engine keywords.",
)


def _improve_problem(settings: Mapping[str, Any]) -> str | None:
    """Why a pool read back from your app's engine does not fit its server and its database, or None."""
    if settings.get("pool") != "QueuePool":
        return f"the app runs on a {settings.get('pool')}: keep the default QueuePool, and size it"
    size, overflow, timeout = settings["pool_size"], settings["max_overflow"], settings["pool_timeout"]
    if overflow < 0:
        return (
            f"max_overflow={overflow} removes the ceiling: a leak in any view would open connections until the "
            f"database refuses everyone's; the database gives your app {_APP_THREADS}"
        )
    if size + overflow > _APP_THREADS:
        return (
            f"pool_size + max_overflow = {size + overflow}: over the {_APP_THREADS} connections the database "
            f"gives your app (and more than its {_APP_THREADS} threads can use)"
        )
    if size + overflow < _APP_THREADS:
        return (
            f"pool_size + max_overflow = {size + overflow}: with {_APP_THREADS} threads, "
            f"{_APP_THREADS - size - overflow} requests at a time would wait for a connection"
        )
    if not 0 < timeout <= _APP_TIMEOUT_S:
        return (
            f"pool_timeout = {timeout:g} s: an exhausted pool would make a request wait that long for its 503; "
            f"allow {_APP_TIMEOUT_S:g} s at most"
        )
    if not settings["pool_pre_ping"]:
        return "without pool_pre_ping, the first requests after a database restart fail: set pool_pre_ping=True"
    return None


def _your_app_views() -> tuple[Any, str]:
    """Your app's views (the endpoints you saved, the course's for the rest) and where they come from."""
    if not saved_files():
        return optimized.bp, "the course's views: you have saved none of your own yet"
    try:
        return assemble(optimized.bp)[0], f"your saved endpoints ({', '.join(saved_files())}) and the course's"
    except CourseError as exc:
        return optimized.bp, f"the course's views ({exc})"


def _check_improve(course: Course, answer: Any) -> str:
    options = _options(answer, "ENGINE_OPTIONS")
    views, which = _your_app_views()
    app = _app(course, views, options)
    engine = app.extensions["engine"]
    try:
        settings = pool_settings(engine)
        if problem := _improve_problem(settings):
            raise Incorrect(problem)
        ceiling, waited = exhaustion(engine, most=_APP_THREADS + 4)
        paths = [f"/customers/{i}" for i in _ids(course)[:2]]
        result, watch = watched_load(
            app, paths, threads=_APP_THREADS, concurrency=_APP_THREADS, requests=5 * _APP_THREADS
        )
        if result.failed:
            raise Incorrect(
                f"under {_APP_THREADS} clients {result.failed} of {result.requests} requests failed "
                f"({dict(result.statuses)}): a view of your app is the cause"
            )
        if not wait_until(lambda: checked_out(engine) == 0, timeout_s=2):
            raise Incorrect(
                f"after the load {checked_out(engine)} connections were still checked out: a view leaks"
            )
    finally:
        gc.collect()
        engine.dispose()
    saved = save_engine_options(options)
    summary = watch.summary()
    return (
        f"Your app ({which}) on your pool: lending connections out, the {ceiling + 1}th waited "
        f"{waited or 0:.2f} s and was refused; {_APP_THREADS} clients on waitress got {result.requests} answers "
        f"with no error, at most {summary['peak_checked_out']} connections at once, nothing left checked out. "
        f"Kept as data/my_app/{saved.name}: your app runs on it in the capstone and under make app VIEWS=mine."
    )


@dataclass(frozen=True)
class PoolTask:
    """Improve the app: the pool your app runs with, checked on your app under load and kept for the capstone."""

    course: Course

    def check(self, engine_options: Any) -> CheckResult:
        passed, detail = judge(engine_options, functools.partial(_check_improve, self.course))
        if passed:
            say(f"Correct! {detail}", "#1b7a2b")
        return CheckResult(passed)

    def hint(self, level: int = 1) -> None:
        say(hint_text(IMPROVE_HINTS, level), "#3a6fb0")

    def solution(self) -> None:
        show_code(_SOLUTION_IMPROVE)


# ---------------------------------------------------------------------- the lesson's exercises
@dataclass(frozen=True)
class Lesson07Exercises:
    """Lesson 07's exercises: three questions and the improve-the-app task (your app's pool)."""

    q1: Exercise
    q2: Exercise
    q3: Exercise
    improve: PoolTask


def exercises(course: Course) -> Lesson07Exercises:
    """The lesson's exercises, bound to its database."""
    return Lesson07Exercises(Q1.bind(course), Q2.bind(course), Q3.bind(course), PoolTask(course))

"""Exercises for lesson 07 · Connection pooling: size a pool, fix a leak, give a connection back early.

The checks read the pool back from the engine the learner's settings built, and watch the pool while the
learner's views answer requests: connections left checked out after a request (a leak, shown every time
because the cycle collector is paused while the check runs), new connections opened, and connections held
while a view waits for something that is not the database. The improve-the-app task serves the learner's
customer page in a thread with the pool they configured and loads it with concurrent clients.

What the learner configured is kept for the capstone: the view cell (with its ENGINE_OPTIONS) as
data/my_app/07_customer_page.py, and the options alone as data/my_app/07_engine_options.json
(`helpers.exercises.saved_views.saved_engine_options()` reads them back).
"""

from __future__ import annotations

import functools
import gc
import inspect
import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Flask, abort, current_app
from sqlalchemy import Engine, func, select
from sqlalchemy.pool import QueuePool

from ..course import Course
from ..db import make_engine
from ..measure.display import say, show_code
from ..measure.harness import Comparison
from ..servers.wsgi import wait_until
from ..shop import optimized
from ..shop.db import get_engine, get_session
from ..shop.models import Customer, Order
from ..topics.pooling import ConnectionEvents, checked_out, gc_paused, pool_settings, watched_load
from .app_task import AppTask, Call
from .core import CheckResult, Exercise, Incorrect, NotAnswered, Question, contains_blank, judge
from .saved_views import save_engine_options

__all__ = [
    "Q1",
    "Q2",
    "Q3",
    "STARTER_Q1",
    "STARTER_Q2",
    "STARTER_Q3",
    "THREADS",
    "Lesson07Exercises",
    "PoolTask",
    "counts",
    "exercises",
    "order_count",
    "pool_for_six_threads",
    "requirement_problem",
    "shipping",
    "shipping_page",
    "shipping_quote",
]

# q1: the server the pool is sized for.
_Q1_THREADS = 6
_Q1_IDLE = 4
_Q1_TIMEOUT_S = 2.0
# The improve-the-app task: the shop's server (waitress, as `make app` and the capstone run it).
THREADS = 8
_MAX_TIMEOUT_S = 2.0
_CARRIER_DELAY_S = 0.02  # q3: what the carrier's API takes to answer
_MISSING = 999_999_999  # a customer id no dataset has: the 404 path


# ---------------------------------------------------------------------- the starter cells, verbatim
STARTER_Q1 = """\
pool_for_six_threads = {
    "pool_size": ____,
    "max_overflow": ____,
    "pool_timeout": ____,
}

ex.q1.check(pool_for_six_threads)"""

STARTER_Q2 = """\
fixed_count = Blueprint("fixed_count", __name__)


@fixed_count.get("/customers/<int:customer_id>/orders/count")
def order_count(customer_id):
    session = ____
    customer = session.get(Customer, customer_id)
    if customer is None:
        abort(404, description=f"no customer with id {customer_id}")
    orders = session.scalar(select(func.count(Order.id)).where(Order.customer_id == customer_id))
    return {"id": customer_id, "name": customer.name, "orders": orders}


ex.q2.check(fixed_count)"""

STARTER_Q3 = """\
quick_shipping = Blueprint("quick_shipping", __name__)


@quick_shipping.get("/customers/<int:customer_id>/shipping")
def shipping_page(customer_id):
    session = get_session()
    city = session.scalar(select(Customer.city).where(Customer.id == customer_id))
    if city is None:
        abort(404, description=f"no customer with id {customer_id}")
    ____
    return {"id": customer_id, "city": city, "quote": shipping_quote(city)}


ex.q3.check(quick_shipping)"""


# ---------------------------------------------------------------------- reference answers
def pool_for_six_threads() -> dict[str, Any]:
    """Reference for q1: 4 connections kept, 2 more in a burst (6 threads), a 503 after 2 s at most."""
    return {"pool_size": 4, "max_overflow": 2, "pool_timeout": 2}


def _q1_solution() -> str:
    """The reference for q1 as the learner writes it: a dict, with why each number."""
    why = {
        "pool_size": "stay open when the shop is quiet",
        "max_overflow": f"more in a burst: {_Q1_THREADS} at most, one per thread",
        "pool_timeout": "seconds to wait for a free connection before TimeoutError (the shop's 503)",
    }
    lines = "".join(f'    "{key}": {value!r},  # {why[key]}\n' for key, value in pool_for_six_threads().items())
    return f"pool_for_six_threads = {{\n{lines}}}\n"


counts = Blueprint("q2_reference", __name__)


@counts.get("/customers/<int:customer_id>/orders/count")
def order_count(customer_id: int) -> dict[str, Any]:
    # The request's session: closed at teardown whatever happens, on the 404 path too.
    session = get_session()
    customer = session.get(Customer, customer_id)
    if customer is None:
        abort(404, description=f"no customer with id {customer_id}")
    orders = session.scalar(select(func.count(Order.id)).where(Order.customer_id == customer_id))
    return {"id": customer_id, "name": customer.name, "orders": orders}


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


# ---------------------------------------------------------------------- the customers the checks ask for
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


# ---------------------------------------------------------------------- checking views
def _blueprint(answer: Any) -> Blueprint:
    if not isinstance(answer, Blueprint):
        raise Incorrect(
            f"pass your Blueprint (the object whose .get(...) decorates your view), not {type(answer).__name__}"
        )
    return answer


@contextmanager
def _apps(course: Course, views: Blueprint, reference: Blueprint, rule: str) -> Iterator[tuple[Flask, Flask]]:
    """The learner's app and the reference app on one database; engines disposed on exit."""
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


# ---------------------------------------------------------------------- q1: size a pool
def _q1_problem(settings: Mapping[str, Any]) -> str | None:
    """Why a pool read back from an engine does not fit q1's six threads, or None if it does."""
    if settings["pool"] != "QueuePool":
        return f"that builds a {settings['pool']}: keep the default QueuePool, and size it"
    size, overflow, timeout = settings["pool_size"], settings["max_overflow"], settings["pool_timeout"]
    limit = size + overflow if overflow >= 0 else None
    if size != _Q1_IDLE:
        return f"{size} connections stay open when the shop is quiet (pool_size); it should keep {_Q1_IDLE}"
    if limit is None or limit > _Q1_THREADS:
        most = "any number of" if limit is None else str(limit)
        return (
            f"the pool opens up to {most} connections at once (pool_size + max_overflow), but "
            f"{_Q1_THREADS} threads never need more than {_Q1_THREADS}"
        )
    if limit < _Q1_THREADS:
        return (
            f"pool_size + max_overflow = {limit}: with {_Q1_THREADS} threads, {_Q1_THREADS - limit} "
            "requests would wait for a connection another thread holds"
        )
    if not 0 < timeout <= _Q1_TIMEOUT_S:
        return (
            f"a request that finds no free connection waits pool_timeout = {timeout:g} s before its 503; "
            f"the shop wants its answer within {_Q1_TIMEOUT_S:g} s"
        )
    return None


def _engine_from(course: Course, options: Mapping[str, Any], refused: str) -> Engine:
    """The engine course.app() builds with these ENGINE_OPTIONS; Incorrect (after `refused`) if it cannot."""
    try:
        engine: Engine = course.app(ENGINE_OPTIONS=dict(options)).extensions["engine"]
    except TypeError as exc:
        raise Incorrect(f"{refused}: {str(exc).split(' sent to ')[0]}") from None
    return engine


def _check_q1(course: Course, answer: Any) -> str:
    if isinstance(answer, Mapping) and contains_blank(list(answer.values())):
        raise NotAnswered("replace each ____ with a number, then run this cell again")
    if not isinstance(answer, Mapping):
        raise Incorrect(
            f"answer with a dict of create_engine options, like {{'pool_size': 3}}, not {type(answer).__name__}"
        )
    try:
        engine = _engine_from(course, answer, "create_engine refused it")
    except Incorrect as exc:
        raise Incorrect(
            f"{exc}. Engine options are create_engine's keywords (pool_size, max_overflow, pool_timeout, ...), "
            "not Flask-SQLAlchemy config keys"
        ) from None
    try:
        if problem := _q1_problem(pool_settings(engine)):
            raise Incorrect(problem)
        # Now the behaviour: a burst of six at once, none waiting; then back to four open connections.
        with ConnectionEvents(engine) as seen:
            burst = [engine.connect() for _ in range(_Q1_THREADS)]
            for conn in burst:
                conn.close()
        kept = engine.pool.checkedin() if isinstance(engine.pool, QueuePool) else 0
    finally:
        engine.dispose()
    return (
        f"{seen.most_at_once} connections checked out at once without waiting; when they came back, the "
        f"pool closed the {seen.connects - kept} overflow connections and kept {kept} open."
    )


Q1 = Question(
    title="Size a pool for six threads",
    starter=STARTER_Q1,
    check=_check_q1,
    hints=(
        "pool_size is what stays open when idle; pool_size + max_overflow is the most at once; pool_timeout "
        "is how long a request waits for a free connection before TimeoutError (a 503 in the shop).",
    ),
    solution=_q1_solution(),
)


# ---------------------------------------------------------------------- q2: fix a leak
def _check_q2(course: Course, answer: Any) -> str:
    views = _blueprint(answer)
    urls = [f"/customers/{i}/orders/count" for i in (*_ids(course), 1)]
    with _apps(course, views, counts, "/customers/<int:customer_id>/orders/count") as (mine, reference):
        expected = {url: _answer(reference, url) for url in urls}
        engine = mine.extensions["engine"]
        with gc_paused(), ConnectionEvents() as seen:
            for url in urls:
                got = _answer(mine, url)
                _same_answer(url, got, expected[url])
                _no_leak(engine, url, got[0])
        if seen.connects > 1:
            raise Incorrect(
                f"the right answers, but {seen.connects} new database connections for {len(urls)} requests: "
                "a pool only helps if every request borrows from the same engine's pool (get_engine())"
            )
    return (
        f"{len(urls)} requests, 404 included, each gave its connection back; "
        f"{seen.connects} new connection{'s' if seen.connects != 1 else ''} opened in all."
    )


Q2 = Question(
    title="Fix the leaking order count",
    starter=STARTER_Q2,
    check=_check_q2,
    hints=(
        "Every path out of the view must give the connection back, the 404 too. get_session() is closed at "
        "teardown whatever happens; `with Session(get_engine()) as session:` closes on leaving the block.",
    ),
    solution=order_count,
)


# ---------------------------------------------------------------------- q3: give the connection back early
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
            "first (session.close(), or commit), then call shipping_quote"
        )


def _check_q3(course: Course, answer: Any) -> str:
    views = _blueprint(answer)
    urls = [f"/customers/{i}/shipping" for i in _ids(course)]
    with _apps(course, views, shipping, "/customers/<int:customer_id>/shipping") as (mine, reference):
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
    starter=STARTER_Q3,
    check=_check_q3,
    hints=(
        "Read what you need from the database, then end the session's use of its connection (session.close() "
        "returns it to the pool; the session can still be used afterwards), then call shipping_quote.",
    ),
    solution=shipping_page,
)


# ---------------------------------------------------------------------- improve the app: the pool under load
_REQUIREMENTS = (
    f"the shop runs on waitress with {THREADS} threads, one request per thread, one connection per request: "
    f"pool_size + max_overflow ≥ {THREADS} (no request waits for a connection), pool_size ≤ {THREADS} (no idle "
    f"connection no thread can use), 0 < pool_timeout ≤ {_MAX_TIMEOUT_S:g} (a 503 within {_MAX_TIMEOUT_S:g} s "
    "when the pool is exhausted anyway), pool_pre_ping=True (survive a database restart)"
)
_HINT = (
    "Two things. The view: take the request's session from get_session() (closed at teardown) instead of "
    "opening Session(get_engine()) and never closing it. The pool: " + _REQUIREMENTS + "."
)


def requirement_problem(settings: Mapping[str, Any]) -> str | None:
    """Why a pool read back from an engine does not fit the improve task's server, or None if it does."""
    if settings.get("pool") != "QueuePool":
        return f"the app runs on a {settings.get('pool')}: keep the default QueuePool, and size it"
    size, overflow, timeout = settings["pool_size"], settings["max_overflow"], settings["pool_timeout"]
    if overflow >= 0 and size + overflow < THREADS:
        return (
            f"pool_size + max_overflow = {size + overflow}: with {THREADS} threads, {THREADS - size - overflow} "
            "requests at a time would wait for a connection"
        )
    if size > THREADS:
        return f"pool_size = {size} keeps {size - THREADS} idle connections that none of {THREADS} threads can use"
    if not 0 < timeout <= _MAX_TIMEOUT_S:
        return (
            f"pool_timeout = {timeout:g} s: a request would wait that long for its 503; "
            f"allow {_MAX_TIMEOUT_S:g} s at most"
        )
    if not settings["pool_pre_ping"]:
        return "without pool_pre_ping, the first requests after a database restart fail: set pool_pre_ping=True"
    return None


def _engine_options(options: Any) -> dict[str, Any]:
    """The learner's ENGINE_OPTIONS as a plain dict, or NotAnswered / Incorrect saying what is wrong with it."""
    if contains_blank(list(options.values()) if isinstance(options, Mapping) else options):
        raise NotAnswered("replace ____ in ENGINE_OPTIONS with your settings, then run this cell again")
    if not isinstance(options, Mapping):
        raise Incorrect(f"pass your ENGINE_OPTIONS dict as the second argument, not {type(options).__name__}")
    try:
        json.dumps(dict(options))
    except (TypeError, ValueError):
        raise Incorrect("keep ENGINE_OPTIONS to pool_* settings with numbers and True/False") from None
    return dict(options)


def _usable(course: Course, options: Any) -> None:
    """Raise if `create_engine` cannot build a pool from the learner's options."""
    _engine_from(course, _engine_options(options), "create_engine refused ENGINE_OPTIONS").dispose()


def _pool_as_asked(settings: Mapping[str, Any], options: Mapping[str, Any]) -> None:
    if problem := requirement_problem(settings):
        raise Incorrect(problem)
    if settings["pool_size"] != options.get("pool_size", settings["pool_size"]):
        raise Incorrect(f"you asked for pool_size {options['pool_size']}, the engine has {settings['pool_size']}")


def _loaded_without_leaks(app: Flask, ids: list[int]) -> tuple[Any, dict[str, Any]]:
    """Each customer page once with the collector paused (nothing left checked out), then THREADS concurrent
    clients on a real server (no failure, every connection back after): the load's result and the watch's
    summary."""
    engine = app.extensions["engine"]
    gc.collect()  # what the answers' check left to the collector goes back first
    with gc_paused():
        for i in ids:
            status, _ = _answer(app, f"/customers/{i}")
            _no_leak(engine, f"/customers/{i}", status)
    paths = [f"/customers/{i}" for i in ids[:2]]
    result, watch = watched_load(app, paths, threads=THREADS, concurrency=THREADS, requests=5 * THREADS)
    if result.failed:
        raise Incorrect(
            f"under {THREADS} concurrent clients, {result.failed} of {result.requests} requests failed "
            f"(statuses {dict(result.statuses)})"
        )
    if not wait_until(lambda: checked_out(engine) == 0, timeout_s=2):
        raise Incorrect(f"after the load, {checked_out(engine)} connections were still checked out")
    return result, watch.summary()


def _under_load(ids: list[int], options: Mapping[str, Any], app: Flask) -> str:
    """The improve task's pool metric: the pool read back as asked and fit for the server, no leak, no failure."""
    settings = pool_settings(app.extensions["engine"])
    try:
        _pool_as_asked(settings, options)
        result, summary = _loaded_without_leaks(app, ids)
    finally:
        gc.collect()  # leaked sessions give their connections back before the engine is disposed
    saved = save_engine_options(options)
    return (
        f"Your customer page gives the baseline's answers with at most 2 statements, leaks nothing, and under "
        f"{THREADS} concurrent clients answered {result.requests} requests with no error; at most "
        f"{summary['peak_checked_out']} connections were checked out at once, {summary['waited']} requests "
        f"waited more than 1 ms for one. Pool read back: pool_size {settings['pool_size']}, max_overflow "
        f"{settings['max_overflow']}, pool_timeout {settings['pool_timeout']:g} s, pre-ping on "
        f"(kept in data/my_app/{saved.name})."
    )


@dataclass(repr=False)
class _PooledCourse(Course):
    """The course, with its apps built on the learner's ENGINE_OPTIONS (what AppTask serves and races)."""

    engine_options: dict[str, Any] = field(default_factory=dict)

    def app(self, *, views: Any = None, **config: Any) -> Flask:
        config.setdefault("ENGINE_OPTIONS", self.engine_options)
        return super().app(views=views, **config)


@dataclass
class PoolTask:
    """Improve the app: the customer page, without a leak, on a pool sized for the shop's server.

    Like an `AppTask`, with the learner's ENGINE_OPTIONS as a second argument: `check(views, options)`,
    `race(views, options)`, `hint()`, `solution()`.
    """

    course: Course

    def check(self, views: Any, engine_options: Any = None) -> CheckResult:
        """Check the view and the pool; if both are right, keep them for the capstone and race the view."""
        if not judge(engine_options, functools.partial(_usable, self.course))[0]:
            return CheckResult(False)
        return self._task(_engine_options(engine_options)).check(views)

    def hint(self) -> None:
        say(f"Hint: {_HINT}", "#3a6fb0")

    def solution(self) -> None:
        """The course's reference: its pool settings and its customer page."""
        options = "".join(f'    "{key}": {value!r},\n' for key, value in optimized.ENGINE_OPTIONS.items())
        show_code(f"ENGINE_OPTIONS = {{\n{options}}}\n\n\n" + inspect.getsource(optimized.customer_page))

    def race(self, views: Blueprint, engine_options: Any = None, *, reference: bool = False) -> Comparison:
        """Lesson 01's baseline against your customer page on your pool (and the reference), side by side."""
        answered = engine_options is not None and not contains_blank(list(dict(engine_options).values()))
        # Until the task is answered the race shows the baseline and the course's version, on its pool.
        options = _engine_options(engine_options if answered else optimized.ENGINE_OPTIONS)
        return self._task(options).race(views, reference=reference)

    def _task(self, options: Mapping[str, Any]) -> AppTask:
        """The AppTask that checks and races the customer page on a course whose apps use `options`."""
        c = self.course
        ids = _ids(c)
        return AppTask(
            lesson="07",
            endpoint="customer_page",
            rule="/customers/<int(max=2147483647):customer_id>",
            calls=[Call(f"/customers/{i}") for i in ids],
            timed=Call(f"/customers/{ids[1]}"),
            budget=2,
            hint_text=_HINT,
            course=_PooledCourse(c.lesson, c.settings, c.url, c.engine, c.info, engine_options=dict(options)),
            baseline_course=c,
            extra=functools.partial(_under_load, ids, options),
        )


# ---------------------------------------------------------------------- the lesson's exercises
@dataclass(frozen=True)
class Lesson07Exercises:
    """Lesson 07's exercises: three questions and the improve-the-app task (a view and its pool)."""

    q1: Exercise
    q2: Exercise
    q3: Exercise
    improve: PoolTask


def exercises(course: Course) -> Lesson07Exercises:
    """The lesson's exercises, bound to its database."""
    return Lesson07Exercises(Q1.bind(course), Q2.bind(course), Q3.bind(course), PoolTask(course))

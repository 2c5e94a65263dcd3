"""Exercises for lesson 01 · The baseline app: the learner wires a session per request, the factory, one endpoint.

Each check runs what the learner wrote: it builds a Flask app around their functions, calls it with the test
client, and reads the connection pool afterwards. A session left open keeps its connection checked out of the
pool, so `pool.checkedout()` after a request says whether the teardown did its job.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, abort, current_app, g
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from ..course import Course
from ..db import make_engine
from ..measure.harness import first_difference
from ..measure.recorder import QueryRecorder, record, rows_fetched
from ..shop import db as shop_db
from ..shop.models import Customer, Product
from ..shop.params import ID, MAX_ID
from .core import Exercise, Incorrect, Question

if TYPE_CHECKING:
    from flask.testing import FlaskClient

__all__ = [
    "Q1",
    "Q2",
    "Q3",
    "STARTER_Q1",
    "STARTER_Q2",
    "STARTER_Q3",
    "Lesson01Exercises",
    "close_session",
    "create_app",
    "exercises",
    "get_session",
    "product_page",
    "products",
]


# ---------------------------------------------------------------- references
def get_session() -> Session:
    """Reference for q1: the request's session, opened on first use and kept on `g` for the request."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["sessionmaker"]()
    session: Session = g.db_session
    return session


def close_session(exc: BaseException | None = None) -> None:
    """Reference for q1: at teardown, close the request's session (if it opened one), whatever happened."""
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


def create_app(config: dict[str, Any], views: Blueprint) -> Flask:
    """Reference for q2: one engine per app, a session per request closed at teardown, the views registered."""
    app = Flask("my_shop")
    app.config.from_mapping(config)
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["engine"] = engine
    app.extensions["sessionmaker"] = sessionmaker(engine, expire_on_commit=False)
    app.teardown_appcontext(close_session)
    app.register_blueprint(views)
    return app


products = Blueprint("products", __name__)


@products.get(f"/products/<{ID}:product_id>")
def product_page(product_id: int) -> dict[str, Any]:
    """Reference for q3: a product's id, name, category and price; 404 when there is none."""
    product = shop_db.get_session().get(Product, product_id)
    if product is None:
        abort(404, description=f"no product with id {product_id}")
    return {"id": product.id, "name": product.name, "category": product.category, "price": product.price}


# ---------------------------------------------------------------- what the checks run
class _ViewFailed(Exception):
    """Raised by a probe view on purpose: the check's stand-in for a bug in a view."""


@contextmanager
def _probe_engine(course: Course) -> Iterator[tuple[Engine, list[Session]]]:
    """An engine of its own (its pool is what the check reads) and every session opened on it, closed after."""
    engine = make_engine(course.url)
    opened: list[Session] = []  # kept referenced: a session dropped unclosed must still show in the pool
    try:
        yield engine, opened
    finally:
        for session in opened:
            session.close()
        engine.dispose()


def _expect_connections_returned(engine: Engine, why: str) -> None:
    """Raise Incorrect(why) while a connection is still checked out of the engine's pool."""
    checked_out: int = engine.pool.checkedout()  # type: ignore[attr-defined]
    if checked_out:
        raise Incorrect(why)


def _call(app: Flask, url: str) -> tuple[int | None, Any, BaseException | None]:
    """GET `url` on a testing app (exceptions propagate): status, JSON, and the exception raised, if any."""
    try:
        response = app.test_client().get(url)
    except Exception as exc:
        return None, None, exc
    return response.status_code, response.get_json(silent=True), None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:160] if text else ""


def _raised(url: str, error: BaseException) -> Incorrect:
    return Incorrect(f"GET {url} raised {type(error).__name__}: {_first_line(error)}")


def _expect_view_error_passed_on(app: Flask, engine: Engine, url: str, *, instead: str, leaked: str) -> None:
    """GET `url`, whose view raises _ViewFailed: the error reaches the caller, and the session is closed anyway.

    `instead` says what happened otherwise (it may name the `{outcome}`, "raised ..." or "answered <status>", and
    the `{status}`); `leaked` says why the session stayed open.
    """
    status, _, error = _call(app, url)
    if not isinstance(error, _ViewFailed):
        outcome = f"raised {type(error).__name__}: {_first_line(error)}" if error else f"answered {status}"
        raise Incorrect(instead.format(outcome=outcome, status=status))
    _expect_connections_returned(engine, leaked)


def _customer_name(session: Session) -> dict[str, Any]:
    """What a probe view answers: the name of customer 1, read through the request's session."""
    return {"name": session.scalar(select(Customer.name).where(Customer.id == 1))}


def _use_then_fail(session: Session) -> dict[str, Any]:
    """A probe view's body that uses the request's session, then fails as a buggy view would."""
    session.execute(select(Customer.id).limit(1))
    raise _ViewFailed("the view failed after using the session")


# ---------------------------------------------------------------- q1: a session per request
def _session_probe(
    engine: Engine, opened: list[Session], get_session: Callable[[], Session], close_session: Callable[..., Any]
) -> Flask:
    """A small app around the learner's two functions: a read, two calls in one request, none, a failing view."""

    def new_session() -> Session:
        session = Session(engine, expire_on_commit=False)
        opened.append(session)
        return session

    app = Flask("q1_probe")
    app.testing = True  # a view's exception reaches the check, after the teardown has run
    app.extensions["sessionmaker"] = new_session
    app.teardown_appcontext(close_session)

    @app.get("/one")
    def one() -> dict[str, Any]:
        return _customer_name(get_session())

    @app.get("/twice")
    def twice() -> dict[str, Any]:
        first, second = get_session(), get_session()
        return {"same": first is second}

    @app.get("/nothing")
    def nothing() -> dict[str, Any]:
        return {"database": "not used"}

    @app.get("/boom")
    def boom() -> dict[str, Any]:
        return _use_then_fail(get_session())

    return app


def _expect_one_session_per_request(app: Flask, opened: list[Session]) -> None:
    """GET /twice: get_session() opens a session with the app's sessionmaker, and gives that one again."""
    _, body, error = _call(app, "/twice")
    if error is not None:
        raise _raised("/twice", error)
    if not opened:
        raise Incorrect("get_session() did not open a session with current_app.extensions['sessionmaker']()")
    if not (body or {}).get("same"):
        raise Incorrect(
            "get_session() returned a new session on its second call in the same request: keep the first on g"
        )


def _expect_closed_after_a_request(app: Flask, engine: Engine) -> None:
    """GET /one: once the request is over, its connection is back in the pool."""
    _, _, error = _call(app, "/one")
    if error is not None:
        raise _raised("/one", error)
    _expect_connections_returned(
        engine,
        "after a request, its connection was still checked out of the pool: "
        "close_session must close the session it takes off g",
    )


def _expect_teardown_without_a_session(app: Flask) -> None:
    """GET /nothing: the teardown copes with a request that never asked for a session."""
    _, _, error = _call(app, "/nothing")
    if error is not None:
        raise Incorrect(
            f"a request that never asked for a session failed at teardown ({type(error).__name__}: "
            f"{_first_line(error)}): close a session only if the request opened one"
        )


def _check_session_functions(course: Course, answer: Any) -> str:
    if not (isinstance(answer, tuple) and len(answer) == 2 and all(callable(f) for f in answer)):
        raise Incorrect("pass both functions as a pair: ex.q1.check((get_session, close_session))")
    with _probe_engine(course) as (engine, opened):
        app = _session_probe(engine, opened, *answer)
        _expect_one_session_per_request(app, opened)
        _expect_closed_after_a_request(app, engine)
        _expect_teardown_without_a_session(app)
        _expect_view_error_passed_on(
            app,
            engine,
            "/boom",
            instead="GET /boom (a view that raises) {outcome} instead of passing the view's error on",
            leaked="when the view raised, the session stayed open: close_session runs with the exception as "
            "`exc`, and must close the session then too",
        )
        sessions = len(opened)
    return (
        f"4 requests, {sessions} sessions opened and every one closed at teardown: after a normal request, after "
        "a view that raised and after a request that never used the database, no connection stayed checked out."
    )


# ---------------------------------------------------------------- q2: the factory
def _probe_views() -> Blueprint:
    """A blueprint the q2 check hands to the learner's factory: one read, one view that fails."""
    probe = Blueprint("probe", __name__)

    @probe.get("/probe/customer")
    def customer() -> dict[str, Any]:
        return _customer_name(shop_db.get_session())

    @probe.get("/probe/boom")
    def boom() -> dict[str, Any]:
        return _use_then_fail(shop_db.get_session())

    return probe


def _checked_engine(course: Course, app: Flask) -> Engine:
    """The factory's engine: kept in app.extensions, on the configured database, beside a sessionmaker."""
    engine = app.extensions.get("engine")
    if not isinstance(engine, Engine):
        raise Incorrect("app.extensions['engine'] is not the app's engine: make it with make_engine(...)")
    if engine.url.database != course.url.database:
        raise Incorrect(f"the app's engine points at {engine.url.database}: use config['DATABASE_URL']")
    if not callable(app.extensions.get("sessionmaker")):
        raise Incorrect("app.extensions['sessionmaker'] is missing: the views' get_session() needs it")
    return engine


def _keep_sessions(app: Flask, opened: list[Session]) -> None:
    """Wrap the app's sessionmaker so that every session it makes is kept in `opened` (closed by the check)."""
    maker = app.extensions["sessionmaker"]

    def recording_maker() -> Any:
        session = maker()
        opened.append(session)
        return session

    app.extensions["sessionmaker"] = recording_maker


def _expect_probe_answers(app: Flask, engine: Engine, expected: Any) -> None:
    """GET /probe/customer answers customer 1's name, and gives its connection back to the pool."""
    status, body, error = _call(app, "/probe/customer")
    if error is not None:
        raise Incorrect(f"a request raised {type(error).__name__}: {_first_line(error)}")
    if status == 404:
        raise Incorrect("your app does not serve the views it was given: register the blueprint `views`")
    difference = first_difference({"name": expected}, body, "JSON")
    if status != 200 or difference is not None:
        raise Incorrect(f"GET /probe/customer answered {status}: {difference or body}")
    _expect_connections_returned(
        engine,
        "after a request its connection was still checked out of the pool: register close_session "
        "with app.teardown_appcontext(...), so every request's session is closed",
    )


def _check_factory(course: Course, answer: Any) -> str:
    if not callable(answer):
        raise Incorrect("pass your factory function itself: ex.q2.check(create_app)")
    with course.session() as session:
        expected = session.scalar(select(Customer.name).where(Customer.id == 1))
    app = answer({"DATABASE_URL": course.url}, _probe_views())
    if not isinstance(app, Flask):
        raise Incorrect(f"create_app returned {type(app).__name__}, not the Flask app: end with `return app`")
    engine = app.extensions.get("engine")
    opened: list[Session] = []  # kept referenced: a session dropped unclosed must still show in the pool
    try:
        engine = _checked_engine(course, app)
        _keep_sessions(app, opened)
        app.testing = True
        _expect_probe_answers(app, engine, expected)
        _expect_view_error_passed_on(
            app,
            engine,
            "/probe/boom",
            instead="GET /probe/boom (a view that raises) answered {status} instead of raising",
            leaked="when a view raised, its session stayed open: close sessions in a teardown "
            "(teardown_appcontext runs whatever happened), not in after_request",
        )
    finally:
        for session in opened:
            session.close()
        if isinstance(engine, Engine):
            engine.dispose()
    return (
        "Your factory made one engine, registered the views and a teardown that closed the session after a "
        "normal request and after a failing one."
    )


# ---------------------------------------------------------------- q3: one endpoint
def _request_product(url: str, client: FlaskClient, engine: Engine) -> tuple[Any, QueryRecorder]:
    """GET `url` on the learner's app, recording its statements; a view that raises is said in one line."""
    with record(engine) as rec:
        try:
            return client.get(url), rec
        except Exception as exc:
            hint = " (answer 404 with abort(404, ...) when there is no such product)" if "None" in str(exc) else ""
            raise Incorrect(f"GET {url} raised {type(exc).__name__}: {_first_line(exc)}{hint}") from None


def _expect_product_answer(url: str, client: FlaskClient, expected: Any, engine: Engine) -> None:
    """The learner's answer to `url` is the reference's, in one statement that fetched one row at most."""
    got, rec = _request_product(url, client, engine)
    if got.status_code != expected.status_code:
        raise Incorrect(f"GET {url} answered {got.status_code}, expected {expected.status_code}")
    if expected.status_code != 200:
        return
    difference = first_difference(expected.get_json(), got.get_json(silent=True), "JSON")
    if difference is not None:
        money = isinstance((got.get_json(silent=True) or {}).get("price"), float)
        raise Incorrect(
            f"GET {url}: {difference}"
            + ("; money stays a Decimal (Flask writes it as a string), never a float" if money else "")
        )
    if rec.count > 1:
        raise Incorrect(f"GET {url} ran {rec.count} statements; one lookup by primary key is enough")
    fetched = rows_fetched(engine, rec)
    if fetched > 1:
        raise Incorrect(
            f"GET {url} fetched {fetched} rows to show one product: let the database find it "
            "(session.get(Product, product_id))"
        )


def _check_product_page(course: Course, answer: Any) -> str:
    if not isinstance(answer, Blueprint):
        raise Incorrect(f"pass your Blueprint (the object that decorates your view), not {type(answer).__name__}")
    last = course.info.rows["products"]
    ids = [1, last // 2, last]
    missing = [last + 1, MAX_ID, 10**10]  # the last one is larger than the route's ID allows: 404 before any SQL
    urls = [f"/products/{i}" for i in ids + missing]
    mine, reference = course.app(views=answer), course.app(views=products)
    mine.testing = True  # a view's exception reaches the check instead of becoming a logged 500
    try:
        client, expected_client = mine.test_client(), reference.test_client()
        for url in urls:
            _expect_product_answer(url, client, expected_client.get(url), mine.extensions["engine"])
    finally:
        for app in (mine, reference):
            app.extensions["engine"].dispose()
    return f"{len(urls)} requests answered like the reference, each in one statement that fetched one row at most."


# ---------------------------------------------------------------- the exercises
STARTER_Q1 = '''\
def get_session():
    """The request's session: opened on first use, then kept on g for the rest of the request."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["sessionmaker"]()
    return g.db_session


def close_session(exc=None):
    """Teardown, called by Flask after every request; `exc` is the exception the view raised, or None."""
    ____  # take the request's session off g, if it opened one, and close it


ex.q1.check((get_session, close_session))'''

STARTER_Q2 = '''\
def create_app(config, views):
    """One app: one engine and its pool, a session per request closed at teardown, the endpoints in `views`."""
    app = Flask("my_shop")
    app.config.from_mapping(config)
    engine = make_engine(____)  # make_engine is create_engine with the course's defaults
    app.extensions["engine"] = engine
    app.extensions["sessionmaker"] = sessionmaker(engine, expire_on_commit=False)
    ____  # register close_session so that Flask calls it after every request
    app.register_blueprint(views)
    return app


ex.q2.check(create_app)'''

STARTER_Q3 = '''\
my_views = Blueprint("my_views", __name__)


@my_views.get(f"/products/<{ID}:product_id>")
def product_page(product_id):
    """A product's id, name, category and price."""
    product = ____  # one lookup by primary key, through get_session()
    if product is None:
        abort(____)  # 404, with a description that says which id was not found
    return ____  # a dict with the id, name, category and price


ex.q3.check(my_views)'''

Q1 = Question(
    title="A session per request: the teardown",
    starter=STARTER_Q1,
    check=_check_session_functions,
    hints=(
        "session = g.pop('db_session', None) takes the session off g (None when the request never asked for "
        "one); if there is one, session.close() rolls back anything uncommitted and returns its connection to "
        "the pool. Close it whatever `exc` is: a view that raised needs its connection back too.",
    ),
    solution="\n\n".join(inspect.getsource(reference) for reference in (get_session, close_session)),
)

Q2 = Question(
    title="The app factory",
    starter=STARTER_Q2,
    check=_check_factory,
    hints=(
        "engine = make_engine(app.config['DATABASE_URL']); register the teardown with "
        "app.teardown_appcontext(close_session): Flask calls it after every request, even one whose view "
        "raised.",
    ),
    solution=create_app,
)

Q3 = Question(
    title="One endpoint: the product page",
    starter=STARTER_Q3,
    check=_check_product_page,
    hints=(
        "product = get_session().get(Product, product_id) is one lookup by primary key; when it is None, "
        "abort(404, description=...). Return a dict with id, name, category and price, the price as it comes "
        "(a Decimal).",
    ),
    solution=product_page,
)


@dataclass(frozen=True)
class Lesson01Exercises:
    """Lesson 01's exercises, bound to its database: `ex.q1.check(...)`, `ex.q1.hint()`, `ex.q1.solution()`."""

    q1: Exercise
    q2: Exercise
    q3: Exercise


def exercises(course: Course) -> Lesson01Exercises:
    """The lesson's exercises, bound to its database."""
    return Lesson01Exercises(Q1.bind(course), Q2.bind(course), Q3.bind(course))

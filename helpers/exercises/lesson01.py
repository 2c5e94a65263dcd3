"""Exercises for lesson 01 · The baseline app: the learner writes the session-per-request teardown, the app
factory and one endpoint, then reads the baseline table they measured.

Each check runs what the learner wrote: it builds a Flask app around their functions, calls it with the test
client, and then reads what the request left behind. A session left open keeps its connection checked out of the
pool (`pool.checkedout()`) and keeps the objects it loaded (its identity map); a teardown that commits instead of
closing keeps a failed request's change. The checks never let such a change reach the shared dataset: a commit
after a failed request is noted and stopped before anything is written.
"""

from __future__ import annotations

import inspect
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, abort
from sqlalchemy import Engine, event, select, text
from sqlalchemy.orm import Session, sessionmaker

from ..course import Course
from ..db import make_engine
from ..measure.harness import Comparison, first_difference
from ..measure.recorder import QueryRecorder, record, rows_fetched
from ..shop import baseline
from ..shop import db as shop_db
from ..shop.db import close_session, get_session  # q1's references: the shop's own session per request
from ..shop.models import Customer, Product
from ..shop.params import ID, MAX_ID
from .app_task import ENDPOINT_NAMES
from .core import Exercise, Incorrect, Question

if TYPE_CHECKING:
    from flask.testing import FlaskClient

__all__ = [
    "Q1",
    "Q2",
    "Q3",
    "Q4",
    "Lesson01Exercises",
    "chattiest",
    "create_app",
    "exercises",
    "product_page",
    "products",
    "statements_per_endpoint",
]


# ---------------------------------------------------------------- references
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


def chattiest(baseline_table: Comparison) -> tuple[str, int]:
    """Reference for q4: the baseline table's endpoint that ran the most statements per request, and how many."""
    statements = baseline_table.frame["statements"]
    return str(statements.idxmax()), int(statements.max())


# ---------------------------------------------------------------- what the checks share
class _ViewFailed(Exception):
    """Raised by a probe view on purpose: the check's stand-in for a bug in a view."""


class _CommitStopped(Exception):
    """Raised by the check when a failed request's session is committed: the change never reaches the data."""


_FAILED = "probe: the view failed"  # Session.info key: this session's request failed
_COMMITTED = "probe: committed after the failure"  # Session.info key: and it was committed anyway


def _stop_commit_after_failure(session: Session) -> None:
    """before_commit on a probe session: a failed request's change must not be kept; note it and stop it."""
    if session.info.get(_FAILED):
        session.info[_COMMITTED] = True
        raise _CommitStopped("the check stopped a commit of a failed request's session")


@contextmanager
def _probe_engine(url: Any) -> Iterator[tuple[Engine, list[Session]]]:
    """An engine of its own (its pool is what the check reads) and every session opened on it, closed after."""
    engine = make_engine(url)
    opened: list[Session] = []  # kept referenced: a session dropped unclosed must still show in the pool
    try:
        yield engine, opened
    finally:
        _close_all(opened, engine)


def _close_all(opened: list[Session], engine: Any) -> None:
    for session in opened:
        session.close()
    if isinstance(engine, Engine):
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


def _outcome(status: int | None, error: BaseException | None) -> str:
    return f"raised {type(error).__name__}: {_first_line(error)}" if error else f"answered {status}"


def _customer(session: Session, handed_on: list[Any]) -> dict[str, Any]:
    """What the q1 probe answers: customer 1's name, loaded as an object and handed on (kept referenced, as a
    cache or a log might keep it), so a session that is not closed still holds it afterwards."""
    customer = session.get(Customer, 1)
    handed_on.append(customer)
    return {"name": customer.name if customer is not None else None}


def _customer_name(session: Session) -> dict[str, Any]:
    """What the q2 probe answers: customer 1's name alone (the second config's table has no other columns)."""
    return {"name": session.scalar(select(Customer.name).where(Customer.id == 1))}


def _change_then_fail(session: Session, handed_on: list[Any] | None = None) -> dict[str, Any]:
    """A probe view's body that changes a row through the request's session, then fails as a buggy view would."""
    customer = session.get(Customer, 1)
    if handed_on is not None:
        handed_on.append(customer)
    if customer is not None:
        customer.name = "changed by a request that failed"
    session.info[_FAILED] = True
    raise _ViewFailed("the view failed after changing a row")


# ---------------------------------------------------------------- q1: a session per request
def _session_probe(
    engine: Engine, opened: list[Session], get_session: Callable[[], Session], close_session: Callable[..., Any]
) -> Flask:
    """A small app around the learner's two functions: a read, two calls in one request, none, a failing view."""

    def new_session() -> Session:
        session = Session(engine, expire_on_commit=False)
        event.listen(session, "before_commit", _stop_commit_after_failure)
        opened.append(session)
        return session

    handed_on: list[Any] = []  # what the views loaded, kept referenced while the check runs
    app = Flask("q1_probe")
    app.testing = True  # a view's exception reaches the check, after the teardown has run
    app.extensions["sessionmaker"] = new_session
    app.teardown_appcontext(close_session)

    @app.get("/one")
    def one() -> dict[str, Any]:
        return _customer(get_session(), handed_on)

    @app.get("/twice")
    def twice() -> dict[str, Any]:
        first, second = get_session(), get_session()
        return {"same": first is second}

    @app.get("/nothing")
    def nothing() -> dict[str, Any]:
        return {"database": "not used"}

    @app.get("/boom")
    def boom() -> dict[str, Any]:
        return _change_then_fail(get_session(), handed_on)

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


def _expect_teardown_without_a_session(app: Flask) -> None:
    """GET /nothing: the teardown copes with a request that never asked for a session."""
    _, _, error = _call(app, "/nothing")
    if error is not None:
        raise Incorrect(
            f"a request that never asked for a session failed at teardown ({type(error).__name__}: "
            f"{_first_line(error)}): close a session only if the request opened one"
        )


def _expect_closed(engine: Engine, opened: list[Session], after: str) -> None:
    """After a request: its connection is back in the pool, and its session holds nothing (it was closed)."""
    _expect_connections_returned(
        engine,
        f"{after}, its connection was still checked out of the pool: close_session must close the session it "
        "takes off g",
    )
    held = sum(len(session.identity_map) + len(session.new) for session in opened)
    if held:
        raise Incorrect(
            f"{after}, the session still held {held} object{'s' * (held != 1)} its view loaded: a commit or a "
            "rollback ends the transaction but keeps them; close_session must close the session, which empties it"
        )


def _expect_failure_passed_on(app: Flask, url: str, opened: list[Session]) -> None:
    """GET `url`, whose view changes a row and raises: the error reaches the caller, the change is not kept."""
    status, _, error = _call(app, url)
    if any(session.info.get(_COMMITTED) for session in opened):
        raise Incorrect(
            "the failed request's change was committed at teardown (the check stopped it before it was written): "
            "a request that failed must keep nothing; closing the session rolls back what it did not commit"
        )
    if not isinstance(error, _ViewFailed):
        raise Incorrect(
            f"GET {url} (a view that raises) {_outcome(status, error)} instead of passing its error on"
        )


def _expect_failed_request_undone(app: Flask, engine: Engine, opened: list[Session]) -> None:
    """GET /boom: the view's error passes on, its change is not kept, and the session is closed all the same."""
    _expect_failure_passed_on(app, "/boom", opened)
    _expect_closed(
        engine,
        opened,
        "when the view raised (close_session runs with the exception as `exc`, and closes the session then too)",
    )


def _check_session_functions(course: Course, answer: Any) -> str:
    if not (isinstance(answer, tuple) and len(answer) == 2 and all(callable(f) for f in answer)):
        raise Incorrect("pass both functions as a pair: ex.q1.check((get_session, close_session))")
    with _probe_engine(course.url) as (engine, opened):
        app = _session_probe(engine, opened, *answer)
        _expect_one_session_per_request(app, opened)
        _expect_teardown_without_a_session(app)
        _, _, error = _call(app, "/one")
        if error is not None:
            raise _raised("/one", error)
        _expect_closed(engine, opened, "after a request")
        _expect_failed_request_undone(app, engine, opened)
        sessions = len(opened)
    return (
        f"4 requests, {sessions} sessions opened, each closed at teardown: after a normal request, after one that "
        "never used the database and after a failing one, no connection stayed checked out, no session kept what "
        "it loaded, and the failed request's change was rolled back, not committed."
    )


# ---------------------------------------------------------------- q2: the factory
_SECOND_CUSTOMER = "Customer 1 of the second config's database"


@contextmanager
def _second_database() -> Iterator[str]:
    """The URL of a second database for the factory's second config: a SQLite file of one customers table, whose
    customer 1 has a name of its own (an app that reads its config answers it; one that ignores it does not)."""
    with tempfile.TemporaryDirectory(prefix="lesson01-second-config-") as folder:
        url = f"sqlite:///{Path(folder) / 'second.sqlite'}"
        engine = make_engine(url)
        try:
            with engine.begin() as conn:
                conn.execute(text("CREATE TABLE customers (id INTEGER PRIMARY KEY, name VARCHAR(100))"))
                conn.execute(
                    text("INSERT INTO customers (id, name) VALUES (1, :name)"), {"name": _SECOND_CUSTOMER}
                )
        finally:
            engine.dispose()
        yield url


def _probe_views() -> Blueprint:
    """A blueprint the q2 check hands to the learner's factory: one read, one view that fails."""
    probe = Blueprint("probe", __name__)

    @probe.get("/probe/customer")
    def customer() -> dict[str, Any]:
        return _customer_name(shop_db.get_session())

    @probe.get("/probe/boom")
    def boom() -> dict[str, Any]:
        return _change_then_fail(shop_db.get_session())

    return probe


@dataclass
class _Built:
    """An app the learner's factory built for one config, with the sessions it opened (closed by the check)."""

    app: Flask
    engine: Engine
    opened: list[Session]


def _build(factory: Callable[..., Any], url: Any, built: list[_Built]) -> _Built:
    """Call the factory with a config naming `url`; its app, engine and sessionmaker as the course uses them."""
    app = factory({"DATABASE_URL": url}, _probe_views())
    if not isinstance(app, Flask):
        raise Incorrect(f"create_app returned {type(app).__name__}, not the Flask app: end with `return app`")
    engine = app.extensions.get("engine")
    if not isinstance(engine, Engine):
        raise Incorrect("app.extensions['engine'] is not the app's engine: keep the engine you made there")
    maker = app.extensions.get("sessionmaker")
    if not callable(maker):
        raise Incorrect("app.extensions['sessionmaker'] is missing: the views' get_session() needs it")
    one = _Built(app, engine, [])
    built.append(one)

    def recording_maker() -> Any:  # every session the app opens is kept, so the check can close it
        session = maker()
        one.opened.append(session)
        event.listen(session, "before_commit", _stop_commit_after_failure)
        return session

    app.extensions["sessionmaker"] = recording_maker
    app.testing = True
    return one


def _expect_probe_answer(one: _Built, expected: Any, config: str) -> None:
    """GET /probe/customer answers customer 1's name from the configured database, and closes its session."""
    status, body, error = _call(one.app, "/probe/customer")
    if error is not None:
        raise Incorrect(f"with the {config}, a request raised {type(error).__name__}: {_first_line(error)}")
    if status == 404:
        raise Incorrect("your app does not serve the views it was given: register the blueprint `views`")
    got = (body or {}).get("name")
    if status == 200 and got != expected and expected == _SECOND_CUSTOMER:
        raise Incorrect(
            "create_app ignores the config it was given: an app made with a second config (another DATABASE_URL) "
            "answered from the course's database; make the engine from the config's DATABASE_URL"
        )
    difference = first_difference({"name": expected}, body, "JSON")
    if status != 200 or difference is not None:
        raise Incorrect(f"with the {config}, GET /probe/customer answered {status}: {difference or body}")
    _expect_connections_returned(
        one.engine,
        "after a request its connection was still checked out of the pool: register close_session as a teardown "
        "of the app, so that every request's session is closed",
    )


def _check_factory(course: Course, answer: Any) -> str:
    if not callable(answer):
        raise Incorrect("pass your factory function itself: ex.q2.check(create_app)")
    with course.session() as session:
        expected = session.scalar(select(Customer.name).where(Customer.id == 1))
    built: list[_Built] = []
    try:
        with _second_database() as second_url:
            first, second = _build(answer, course.url, built), _build(answer, second_url, built)
            if first.engine is second.engine:
                raise Incorrect(
                    "two apps made from two configs share one engine: make the engine inside create_app, from the "
                    "config it was given"
                )
            _expect_probe_answer(first, expected, "course's config")
            _expect_probe_answer(second, _SECOND_CUSTOMER, "second config")
            _expect_failure_passed_on(first.app, "/probe/boom", first.opened)
            _expect_connections_returned(
                first.engine,
                "when a view raised, its session stayed open: close sessions in a teardown (teardown_appcontext "
                "runs whatever happened), not in after_request",
            )
    finally:
        for one in built:
            _close_all(one.opened, one.engine)
    return (
        "Your factory made one engine per app from the config it was given (two configs, two databases, two "
        "answers), registered the views and a teardown that closed the session after a normal request and after "
        "a failing one."
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
            f"GET {url} fetched {fetched} rows to show one product: let the database find it by its primary key"
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
    return (
        f"{len(urls)} requests ({len(ids)} products, {len(missing)} missing ids) answered like the reference, "
        "each in one statement that fetched one row at most."
    )


# ---------------------------------------------------------------- q4: read the baseline table
def statements_per_endpoint(course: Course) -> dict[str, int]:
    """The statements each baseline endpoint runs for its example URL, by the baseline table's names."""
    app = course.app()
    try:
        client = app.test_client()
        return {
            name: int(client.get(getattr(baseline, view).example).headers["X-Statements"])
            for view, name in ENDPOINT_NAMES.items()
        }
    finally:
        app.extensions["engine"].dispose()


def _whole_number(value: Any) -> int | None:
    """A count as a learner may write it: 40, numpy's int64, 40.0; None for anything else (True, '40', 40.5)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _check_chattiest(course: Course, answer: Any) -> str:
    if not (isinstance(answer, tuple | list) and len(answer) == 2):
        raise Incorrect(
            "answer with a pair: (the endpoint's name as the table writes it, its statements per request)"
        )
    name, count = answer
    counts = statements_per_endpoint(course)
    named = str(name).strip().lower()
    if named not in counts:
        raise Incorrect(f"{name!r} is not a row of the baseline table: its endpoints are {', '.join(counts)}")
    number = _whole_number(count)
    if number is None:
        raise Incorrect(f"{count!r} is not a number of statements: give a whole number, as the table shows it")
    most = max(counts.values())
    if counts[named] != most:
        raise Incorrect(f"{named!r} did not run the most statements per request: compare the statements column")
    if number != most:
        raise Incorrect(f"{named!r} is the one, but it did not run {number} statements per request: read its row")
    return (
        f"{named!r} ran {most} statements per request ({course.backend}, size {course.size}). Statements are "
        "counted, not timed: the same on every run and every machine, for this dataset."
    )


# ---------------------------------------------------------------- the exercises
_STARTER_Q1 = '''\
def get_session():
    """The request's session: opened on first use, then kept on g for the rest of the request."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["sessionmaker"]()
    return g.db_session


def close_session(exc=None):
    """Teardown, called by Flask after every request; `exc` is the exception the view raised, or None.

    Take the request's session off g, if the request opened one, and end it, whatever happened.
    """
    ____


ex.q1.check((get_session, close_session))'''

_STARTER_Q2 = '''\
def create_app(config, views):
    """One app built from `config`: one engine (with its pool) on config["DATABASE_URL"], a sessionmaker bound to
    it, your close_session called after every request, and the endpoints of the blueprint `views`.

    get_session() opens sessions with app.extensions["sessionmaker"]; keep the engine in app.extensions["engine"].
    """
    app = Flask("my_shop")
    app.config.from_mapping(config)
    ____
    return app


ex.q2.check(create_app)'''

_STARTER_Q3 = '''\
my_views = Blueprint("my_views", __name__)


@my_views.get(f"/products/<{ID}:product_id>")
def product_page(product_id):
    """The product's id, name, category and price (the Decimal as it comes); 404, saying which id, when none."""
    ____


ex.q3.check(my_views)'''

_STARTER_Q4 = """\
finding = (____, ____)  # (the endpoint's name as the table writes it, its statements per request)

ex.q4.check(finding)"""

_HINTS_Q1 = (
    "A request may or may not have opened a session, and it may have failed. Whatever happened, the teardown ends "
    "the session: closing it throws away what the request did not commit, forgets the objects it loaded and hands "
    "its connection back to the pool. Committing here would keep a failed request's half-done change.",
    "g.pop(name, default) takes a value off Flask's g (the default when it is not there); Session.close() in "
    "SQLAlchemy's session basics (the section on closing).",
)
_HINTS_Q2 = (
    "Build everything from what create_app was given: the database URL comes from `config`, never from the course "
    "or a global, so two configs give two apps on two databases. Keep the engine and a sessionmaker where "
    "get_session() and the checks look for them, have Flask call your teardown after every request (even one "
    "that failed), and register the views.",
    "make_engine(url) (or sqlalchemy.create_engine); sessionmaker(engine, expire_on_commit=False); the dict "
    "app.extensions; app.teardown_appcontext(function), not after_request, which a failing view skips; "
    "app.register_blueprint(blueprint).",
)
_HINTS_Q3 = (
    "Ask the database for exactly one row, by its primary key, through the request's session: not every product, "
    "filtered in Python. When there is none, answer 404 instead of failing on None; return a dict, and leave the "
    "price the Decimal it is.",
    "get_session() from exercise 1; Session.get(Model, primary_key) returns the object or None; "
    "flask.abort(404, description=...).",
)
_HINTS_Q4 = (
    "Statements are counted, not timed: the table's statements column holds, for each endpoint, how many "
    "statements its example request ran. Find the largest; name its endpoint as the table writes it.",
    "baseline_table.frame is a pandas DataFrame indexed by endpoint: its 'statements' column, and a Series' "
    "idxmax() and max().",
)

Q1 = Question("A session per request: the teardown", _STARTER_Q1, _check_session_functions, _HINTS_Q1, solution=(
    "\n\n".join(inspect.getsource(reference) for reference in (get_session, close_session))
))  # fmt: skip
Q2 = Question("The app factory", _STARTER_Q2, _check_factory, _HINTS_Q2, solution=create_app)
Q3 = Question("One endpoint: the product page", _STARTER_Q3, _check_product_page, _HINTS_Q3, solution=product_page)
Q4 = Question("Read the baseline table", _STARTER_Q4, _check_chattiest, _HINTS_Q4, solution=chattiest)


@dataclass(frozen=True)
class Lesson01Exercises:
    """Lesson 01's exercises, bound to its database: `ex.q1.check(...)`, `ex.q1.hint()`, `ex.q1.solution()`."""

    q1: Exercise
    q2: Exercise
    q3: Exercise
    q4: Exercise


def exercises(course: Course) -> Lesson01Exercises:
    """The lesson's exercises, bound to its database."""
    return Lesson01Exercises(Q1.bind(course), Q2.bind(course), Q3.bind(course), Q4.bind(course))

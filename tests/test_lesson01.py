"""Lesson 01 · The baseline app: each check passes right answers written in different ways and turns down plausible
wrong ones for the reason it names, with the same verdict on SQLite and PostgreSQL (the `course` fixture)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask import Blueprint, Flask, Response, abort, current_app, g
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session, sessionmaker

from helpers.course import Course
from helpers.db import make_engine
from helpers.exercises import ____
from helpers.exercises.app_task import ENDPOINT_NAMES
from helpers.exercises.lesson01 import (
    Q1,
    Q2,
    Q3,
    Q4,
    Lesson01Exercises,
    chattiest,
    create_app,
    exercises,
    products,
    statements_per_endpoint,
)
from helpers.measure.harness import Comparison
from helpers.shop import baseline
from helpers.shop.db import close_session, get_session
from helpers.shop.models import Customer, Product
from helpers.shop.params import ID
from tests.cells import run_cell
from tests.proving import prove, verdict

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "01_baseline_app.ipynb"
QUESTIONS = (Q1, Q2, Q3, Q4)


def test_the_lessons_exercises_are_its_questions_bound_to_its_course(course: Course) -> None:
    ex = exercises(course)
    assert isinstance(ex, Lesson01Exercises)
    assert [e.question for e in (ex.q1, ex.q2, ex.q3, ex.q4)] == list(QUESTIONS)
    assert all(e.course is course for e in (ex.q1, ex.q2, ex.q3, ex.q4))


def test_the_notebook_holds_each_starter_verbatim() -> None:
    cells = ["".join(cell["source"]) for cell in json.loads(NOTEBOOK.read_text())["cells"]]
    assert all(question.starter in cells for question in QUESTIONS)


def test_hints_name_the_idea_then_the_api_and_no_code() -> None:
    for question in QUESTIONS:
        assert len(question.hints) >= 2, question.title
        for hint in question.hints:
            assert " = " not in hint and "\n" not in hint, (question.title, hint)  # no assignment, no code block


@pytest.mark.parametrize("question", QUESTIONS, ids=lambda q: q.title)
def test_a_starter_is_not_answered_yet(course: Course, question: Any) -> None:
    blank: dict[Any, Any] = {
        Q1: (get_session, starter_close),
        Q2: starter_factory,
        Q3: starter_views,
        Q4: (____, ____),
    }
    passed, said = verdict(question.bind(course).check, blank[question])
    assert not passed and said.startswith("Not answered yet")


def starter_close(exc: BaseException | None = None) -> None:
    ____  # noqa: B018


def starter_factory(config: dict[str, Any], views: Blueprint) -> Flask:
    app = Flask("my_shop")
    app.config.from_mapping(config)
    ____  # noqa: B018
    return app


starter_views = Blueprint("starter_views", __name__)


@starter_views.get(f"/products/<{ID}:product_id>")
def starter_product_page(product_id: int) -> Any:
    ____  # noqa: B018


def filled(starter: str, *lines: str) -> str:
    """A starter with its `____` line replaced by the learner's lines (indented as the blank was)."""
    blank = next(line for line in starter.splitlines() if line.strip().startswith("____"))
    indent = blank[: len(blank) - len(blank.lstrip())]
    return starter.replace(blank, "\n".join(indent + line for line in lines), 1)


def test_the_starters_filled_in_as_a_learner_would_pass(course: Course, baseline_table: Comparison) -> None:
    """The starters' given parts work: each, with its blank filled in, passes, building on the cells before it."""
    q1 = run_cell(
        filled(Q1.starter, 'session = g.pop("db_session", None)', "if session:", "    session.close()"),
        "q1", g=g, current_app=current_app,
    )  # fmt: skip
    q2 = run_cell(
        filled(
            Q2.starter,
            'engine = make_engine(config["DATABASE_URL"])',
            'app.extensions["engine"] = engine',
            'app.extensions["sessionmaker"] = sessionmaker(engine, expire_on_commit=False)',
            "app.teardown_appcontext(close_session)",
            "app.register_blueprint(views)",
        ),
        "q2", Flask=Flask, make_engine=make_engine, sessionmaker=sessionmaker, close_session=q1["close_session"],
    )  # fmt: skip
    q3 = run_cell(
        filled(
            Q3.starter,
            "product = get_session().get(Product, product_id)",
            "if product is None:",
            '    abort(404, description=f"no product with id {product_id}")',
            'return {"id": product.id, "name": product.name, "category": product.category,',
            '        "price": product.price}',
        ),
        "q3", get_session=q1["get_session"],
    )  # fmt: skip
    q4 = run_cell(
        'statements = baseline_table.frame["statements"]\n'
        + Q4.starter.replace("(____, ____)", "(statements.idxmax(), statements.max())"),
        "q4", baseline_table=baseline_table,
    )  # fmt: skip
    answers = {Q1: (q1["get_session"], q1["close_session"]), Q2: q2["create_app"], Q3: q3["my_views"]}
    answers[Q4] = q4["finding"]
    for question, answer in answers.items():
        assert verdict(question.bind(course).check, answer)[0], question.title


# ---------------------------------------------------------------- q1: a session per request
def close_if_there(exc: BaseException | None = None) -> None:
    if "db_session" in g:
        g.db_session.close()


def commit_on_success_then_close(exc: BaseException | None = None) -> None:
    session = g.pop("db_session", None)
    if session is None:
        return
    try:
        if exc is None:
            session.commit()
    finally:
        session.close()


def teardown(*steps: str, only_after_success: bool = False) -> Callable[..., None]:
    """A close_session that takes the session off g and calls `steps` on it (e.g. "commit", "close")."""

    def close(exc: BaseException | None = None) -> None:
        session = g.pop("db_session", None)
        if session is not None and (exc is None or not only_after_success):
            for step in steps:
                getattr(session, step)()

    return close


rollback_then_close = teardown("rollback", "close")
commit_instead_of_closing = teardown("commit")
commit_then_close = teardown("commit", "close")
rollback_instead_of_closing = teardown("rollback")
close_without_closing = teardown()  # dropped, not closed: its connection stays checked out
close_only_after_success = teardown("close", only_after_success=True)
remove_as_with_flask_sqlalchemy = teardown("remove")  # a scoped_session's method, which a Session does not have


def close_assuming_a_session(exc: BaseException | None = None) -> None:
    g.db_session.close()


def new_session_every_call() -> Session:
    g.db_session = current_app.extensions["sessionmaker"]()
    session: Session = g.db_session
    return session


def test_q1_is_proven(course: Course) -> None:
    prove(
        Q1.bind(course).check,
        right=[
            (get_session, close_session),
            (get_session, close_if_there),
            (get_session, commit_on_success_then_close),
            (get_session, rollback_then_close),
        ],
        wrong=[
            ((get_session, commit_instead_of_closing), "the session still held 1 object"),
            ((get_session, commit_then_close), "the failed request's change was committed"),
            ((get_session, close_without_closing), "after a request, its connection was still checked out"),
            ((get_session, close_only_after_success), "when the view raised"),
            ((get_session, rollback_instead_of_closing), "a commit or a rollback ends the transaction but keeps"),
            ((get_session, close_assuming_a_session), "never asked for a session failed at teardown"),
            ((get_session, remove_as_with_flask_sqlalchemy), "raised AttributeError"),
            ((new_session_every_call, close_session), "a new session on its second call"),
            (get_session, "pass both functions as a pair"),
        ],
    )


def test_q1_never_lets_a_failed_requests_change_reach_the_data(course: Course) -> None:
    def name_of_customer_1() -> str | None:
        with course.session() as session:
            return session.scalar(select(Customer.name).where(Customer.id == 1))

    before = name_of_customer_1()
    for close in (commit_then_close, commit_instead_of_closing, close_without_closing):
        assert not verdict(Q1.bind(course).check, (get_session, close))[0]
    assert name_of_customer_1() == before


# ---------------------------------------------------------------- q2: the factory
def factory(
    *,
    url: Callable[[dict[str, Any]], Any] = lambda config: config["DATABASE_URL"],
    teardown: str = "teardown_appcontext",
    register: bool = True,
    keep_engine: bool = True,
    close: Callable[..., None] = close_session,
) -> Callable[[dict[str, Any], Blueprint], Flask]:
    """The reference factory with one part changed."""

    def create(config: dict[str, Any], views: Blueprint) -> Flask:
        app = Flask("my_shop")
        app.config.from_mapping(config)
        engine = make_engine(url(config))
        if keep_engine:
            app.extensions["engine"] = engine
        app.extensions["sessionmaker"] = sessionmaker(engine, expire_on_commit=False)
        if teardown == "teardown_appcontext":
            app.teardown_appcontext(close)
        elif teardown == "after_request":

            @app.after_request
            def end_session(response: Response) -> Response:
                close()
                return response

        if register:
            app.register_blueprint(views)
        return app

    return create


def factory_written_otherwise(config: dict[str, Any], views: Blueprint) -> Flask:
    app = Flask(__name__)
    app.config.update(config)
    engine = create_engine(config["DATABASE_URL"])
    app.extensions.update(engine=engine, sessionmaker=sessionmaker(bind=engine))
    app.register_blueprint(views)

    @app.teardown_appcontext
    def end_the_session(exc: BaseException | None) -> None:
        close_session(exc)

    return app


@pytest.fixture
def shared_engine_factory(course: Course) -> Iterator[Callable[[dict[str, Any], Blueprint], Flask]]:
    """A factory whose engine is made once, at import time, on the course's database: every app shares it."""
    engine = make_engine(course.url)

    def create(config: dict[str, Any], views: Blueprint) -> Flask:
        app = Flask("my_shop")
        app.config.from_mapping(config)
        app.extensions["engine"] = engine
        app.extensions["sessionmaker"] = sessionmaker(engine, expire_on_commit=False)
        app.teardown_appcontext(close_session)
        app.register_blueprint(views)
        return app

    yield create
    engine.dispose()


def test_q2_is_proven(course: Course, shared_engine_factory: Any) -> None:
    prove(
        Q2.bind(course).check,
        right=[create_app, factory_written_otherwise],
        wrong=[
            (factory(url=lambda config: course.url), "create_app ignores the config it was given"),
            (shared_engine_factory, "two apps made from two configs share one engine"),
            (factory(teardown="none"), "register close_session as a teardown"),
            (factory(teardown="after_request"), "not in after_request"),
            (factory(register=False), "does not serve the views it was given"),
            (factory(keep_engine=False), "app.extensions['engine']"),
            (factory(close=commit_then_close), "the failed request's change was committed"),
            (lambda config, views: None, "create_app returned NoneType"),
        ],
    )


# ---------------------------------------------------------------- q3: one endpoint
def product_views(body: Callable[[Any], Any], *, lookup: str = "get", not_found: bool = True) -> Blueprint:
    """A product page built from parts, on the shop's get_session (q1's reference), as in the notebook."""
    views = Blueprint(f"views_{id(body)}_{lookup}_{not_found}", __name__)

    @views.get(f"/products/<{ID}:product_id>")
    def product_page(product_id: int) -> Any:
        session = get_session()
        if lookup == "get":
            product = session.get(Product, product_id)
        elif lookup == "first":
            product = session.get(Product, 1)
        else:  # every product, then the one asked for, in Python
            product = next((p for p in session.scalars(select(Product)) if p.id == product_id), None)
        if product is None and not_found:
            abort(404, description=f"no product with id {product_id}")
        return body(product)

    return views


def right(p: Any) -> dict[str, Any]:
    return {"id": p.id, "name": p.name, "category": p.category, "price": p.price}


written_otherwise = Blueprint("written_otherwise", __name__)


@written_otherwise.get(f"/products/<{ID}:product_id>")
def product_by_select(product_id: int) -> Any:
    row = (
        get_session()
        .execute(select(Product.id, Product.name, Product.category, Product.price).where(Product.id == product_id))
        .one_or_none()
    )
    if row is None:
        abort(404, f"There is no product {product_id}.")
    return row._asdict()


def test_q3_is_proven(course: Course) -> None:
    prove(
        Q3.bind(course).check,
        right=[
            products,
            written_otherwise,
            product_views(right),
        ],
        wrong=[
            (product_views(lambda p: {**right(p), "price": float(p.price)}), "never a float"),
            (product_views(right, not_found=False), "answer 404 with abort(404"),
            (product_views(right, lookup="scan"), "rows to show one product"),
            (
                product_views(right, lookup="first"),
                f"GET /products/{course.info.rows['products'] // 2}: your JSON",
            ),
            (product_views(lambda p: {"id": p.id, "name": p.name, "price": p.price}), "lacks 'category'"),
            (create_app, "pass your Blueprint"),
        ],
    )


# ---------------------------------------------------------------- q4: read the baseline table
@pytest.fixture
def baseline_table(course: Course) -> Iterator[Comparison]:
    """The baseline table as the notebook measures it (one timed run is enough: the check reads statements)."""
    app = course.app()
    client = app.test_client()
    requests = {name: getattr(baseline, view).example for view, name in ENDPOINT_NAMES.items()}
    yield course.compare(
        {name: (lambda url=url: client.get(url)) for name, url in requests.items()},
        engine=app.extensions["engine"],
        check=False,
        repeat=1,
        store=False,
    )
    app.extensions["engine"].dispose()


def test_q4_is_proven(course: Course, baseline_table: Comparison) -> None:
    counts = statements_per_endpoint(course)
    assert counts == baseline_table.frame["statements"].to_dict()  # the check counts what the table shows
    ranked = sorted(counts, key=counts.__getitem__, reverse=True)
    most, runner_up = ranked[0], ranked[1]
    assert counts[most] > counts[runner_up]  # one endpoint runs the most on the tiny data: the answer is unique
    read = baseline_table.frame["statements"]
    prove(
        Q4.bind(course).check,
        right=[
            (most, counts[most]),
            chattiest(baseline_table),
            [f" {most.title()} ", read.max()],
            (most, 1.0 * read.max()),
        ],
        wrong=[
            ((runner_up, counts[runner_up]), "did not run the most statements"),
            ((most, counts[most] - 1), "is the one, but it did not run"),
            (("orders", counts[most]), "is not a row of the baseline table"),
            ((most, str(counts[most])), "is not a number of statements"),
            (counts[most], "answer with a pair"),
        ],
    )
    assert isinstance(read.max(), np.integer)  # the table's own number, as a learner copies it, is accepted

"""Lesson 01 · The baseline app: each check passes the reference and turns down plausible wrong answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask import Blueprint, Flask, abort, current_app, g
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from helpers.course import Course
from helpers.db import make_engine
from helpers.exercises import ____
from helpers.exercises.lesson01 import (
    Q1,
    Q2,
    Q3,
    Lesson01Exercises,
    close_session,
    create_app,
    exercises,
    get_session,
    products,
)
from helpers.shop.db import get_session as course_get_session
from helpers.shop.models import Product
from helpers.shop.params import ID

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "01_baseline_app.ipynb"


def rejected(result: Any, capsys: pytest.CaptureFixture[str], reason: str) -> bool:
    """The check said no, on one line, for `reason`."""
    out = capsys.readouterr().out
    return not result and out.startswith("Not yet — ") and out.count("\n") == 1 and reason in out


def test_the_lessons_exercises_are_its_questions_bound_to_its_course(course: Course) -> None:
    ex = exercises(course)
    assert isinstance(ex, Lesson01Exercises)
    assert [e.question for e in (ex.q1, ex.q2, ex.q3)] == [Q1, Q2, Q3]
    assert all(e.course is course for e in (ex.q1, ex.q2, ex.q3))


def test_the_notebook_holds_each_starter_verbatim() -> None:
    cells = ["".join(cell["source"]) for cell in json.loads(NOTEBOOK.read_text())["cells"]]
    assert all(question.starter in cells for question in (Q1, Q2, Q3))


# ---------------------------------------------------------------- q1: a session per request
def test_q1_passes_the_reference(course: Course, capsys: pytest.CaptureFixture[str]) -> None:
    assert Q1.bind(course).check((get_session, close_session))
    assert "every one closed at teardown" in capsys.readouterr().out


def close_without_closing(exc: BaseException | None = None) -> None:
    g.pop("db_session", None)  # dropped, not closed: its connection stays checked out


def new_session_every_call() -> Session:
    g.db_session = current_app.extensions["sessionmaker"]()
    session: Session = g.db_session
    return session


def close_only_after_success(exc: BaseException | None = None) -> None:
    session = g.pop("db_session", None)
    if session is not None and exc is None:
        session.close()


def close_assuming_a_session(exc: BaseException | None = None) -> None:
    g.db_session.close()


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ((get_session, close_without_closing), "still checked out of the pool"),
        ((new_session_every_call, close_session), "a new session on its second call"),
        ((get_session, close_only_after_success), "when the view raised, the session stayed open"),
        ((get_session, close_assuming_a_session), "never asked for a session failed at teardown"),
        (get_session, "pass both functions as a pair"),
    ],
    ids=["not-closed", "not-kept-on-g", "closed-only-after-success", "no-session-no-check", "one-function"],
)
def test_q1_rejects(course: Course, capsys: pytest.CaptureFixture[str], answer: Any, reason: str) -> None:
    assert rejected(Q1.bind(course).check(answer), capsys, reason)


def test_q1_starter_is_not_answered(course: Course, capsys: pytest.CaptureFixture[str]) -> None:
    def starter_close(exc: BaseException | None = None) -> None:
        g.pop("db_session", None)
        ____  # noqa: B018

    assert not Q1.bind(course).check((get_session, starter_close))
    assert capsys.readouterr().out.startswith("Not answered yet")


# ---------------------------------------------------------------- q2: the factory
def test_q2_passes_the_reference(course: Course, capsys: pytest.CaptureFixture[str]) -> None:
    assert Q2.bind(course).check(create_app)
    assert "one engine" in capsys.readouterr().out


def factory(*, teardown: bool = True, register: bool = True, keep_engine: bool = True) -> Any:
    def create(config: dict[str, Any], views: Blueprint) -> Flask:
        app = Flask("my_shop")
        app.config.from_mapping(config)
        engine = make_engine(app.config["DATABASE_URL"])
        if keep_engine:
            app.extensions["engine"] = engine
        app.extensions["sessionmaker"] = sessionmaker(engine, expire_on_commit=False)
        if teardown:
            app.teardown_appcontext(close_session)
        if register:
            app.register_blueprint(views)
        return app

    return create


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (factory(teardown=False), "register close_session"),
        (factory(register=False), "does not serve the views it was given"),
        (factory(keep_engine=False), "app.extensions['engine']"),
    ],
    ids=["no-teardown", "views-not-registered", "engine-not-kept"],
)
def test_q2_rejects(course: Course, capsys: pytest.CaptureFixture[str], answer: Any, reason: str) -> None:
    assert rejected(Q2.bind(course).check(answer), capsys, reason)


# ---------------------------------------------------------------- q3: one endpoint
def test_q3_passes_the_reference(course: Course, capsys: pytest.CaptureFixture[str]) -> None:
    assert Q3.bind(course).check(products)
    assert "answered like the reference" in capsys.readouterr().out


def product_views(
    body: Any, *, lookup: str = "get", not_found: bool = True, session_of: Any = get_session
) -> Blueprint:
    """A product page built from parts: the learner's get_session (q1) by default, as in the notebook."""
    views = Blueprint(f"views_{id(body)}_{lookup}_{not_found}", __name__)

    @views.get(f"/products/<{ID}:product_id>")
    def product_page(product_id: int) -> Any:
        session = session_of()
        if lookup == "get":
            product = session.get(Product, product_id)
        else:  # every product, then the one asked for, in Python
            product = next((p for p in session.scalars(select(Product)) if p.id == product_id), None)
        if product is None and not_found:
            abort(404, description=f"no product with id {product_id}")
        return body(product)

    return views


def right(p: Any) -> dict[str, Any]:
    return {"id": p.id, "name": p.name, "category": p.category, "price": p.price}


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (product_views(lambda p: {**right(p), "price": float(p.price)}), "never a float"),
        (product_views(right, not_found=False), "answer 404 with abort(404"),
        (product_views(right, lookup="scan"), "rows to show one product"),
        (product_views(lambda p: {"id": p.id, "name": p.name, "price": p.price}), "lacks 'category'"),
        (create_app, "pass your Blueprint"),
    ],
    ids=["float-price", "no-404", "filtered-in-python", "missing-key", "not-a-blueprint"],
)
def test_q3_rejects(course: Course, capsys: pytest.CaptureFixture[str], answer: Any, reason: str) -> None:
    assert rejected(Q3.bind(course).check(answer), capsys, reason)


@pytest.mark.parametrize("session_of", [get_session, course_get_session], ids=["learners", "course"])
def test_q3_accepts_either_get_session(course: Course, session_of: Any) -> None:
    """The notebook's view calls the learner's get_session (q1): it shares the course app's teardown contract."""
    assert Q3.bind(course).check(product_views(right, session_of=session_of))

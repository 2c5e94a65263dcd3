"""Improve the app: a learner's blueprint is checked against the baseline, kept, and loaded back."""

from __future__ import annotations

import linecache
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Blueprint

from helpers.course import Course
from helpers.exercises import app_task, saved_views
from helpers.exercises.app_task import AppTask, Call
from helpers.shop import kit

RIGHT = """
my_views = Blueprint("my_views", __name__)
PAGE_LIMIT = 500


@my_views.get("/orders")
def order_list():
    page = int_arg("page", 1)
    per_page = int_arg("per_page", 20, high=PAGE_LIMIT)
    lines = select(func.count(OrderLine.id)).where(OrderLine.order_id == Order.id).scalar_subquery()
    rows = get_session().execute(
        select(Order.id, Customer.name, Order.status, Order.created_at, Order.total, lines)
        .join(Order.customer)
        .order_by(*NEWEST_FIRST)
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return {"page": page, "orders": [
        {"id": i, "customer": n, "status": s, "created_at": c.isoformat(), "total": t, "lines": k}
        for i, n, s, c, t, k in rows
    ]}


ex.improve.check(my_views)
"""
WRONG_ORDER = RIGHT.replace(".order_by(*NEWEST_FIRST)", ".order_by(Order.id)")
N_PLUS_ONE = RIGHT.replace(
    "lines = select(func.count(OrderLine.id)).where(OrderLine.order_id == Order.id).scalar_subquery()",
    "lines = Order.id",
).replace('"lines": k}', '"lines": len(get_session().get(Order, i).lines)}')
WRONG_ROUTE = RIGHT.replace('@my_views.get("/orders")', '@my_views.get("/order")')


def cell(source: str, number: int) -> dict[str, Any]:
    """Run `source` as IPython runs a notebook cell: its code registered in linecache under a cell file name."""
    filename = f"/tmp/ipykernel_0/cell{number}.py"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict[str, Any] = {name: getattr(kit, name) for name in kit.__all__} | {"__name__": "__main__"}
    code = source.split("\n\nex.improve")[0]  # the check call itself is not run here
    exec(compile(code, filename, "exec"), namespace)
    return namespace


@pytest.fixture
def task(course: Course, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppTask:
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    return AppTask(
        lesson="03",
        endpoint="order_list",
        rule="/orders",
        calls=[Call("/orders"), Call("/orders?page=3&per_page=7"), Call("/orders?page=abc")],
        timed=Call("/orders?page=1&per_page=20"),
        budget=1,
        hint_text="join the customer",
        course=course,
    )


def test_right_answer_passes_is_saved_and_loads_back(task: AppTask, tmp_path: Path) -> None:
    views = cell(RIGHT, 1)["my_views"]
    assert task.check(views)
    saved = tmp_path / "my_app" / "03_order_list.py"
    text = saved.read_text()
    assert text.startswith('"""Your order list (GET /orders), written in lesson 03')
    assert "from helpers.shop.kit import *" in text and "PAGE_LIMIT = 500" in text
    assert "ex.improve" not in text  # the check call stays in the notebook
    [loaded] = saved_views.my_views()
    assert isinstance(loaded, Blueprint) and loaded.name == "my_03_order_list"
    app = task.course.app(views=loaded)
    baseline = task.course.app()
    try:
        for url in ("/orders?page=2&per_page=5", "/orders"):
            assert app.test_client().get(url).get_json() == baseline.test_client().get(url).get_json()
    finally:
        for a in (app, baseline):
            a.extensions["engine"].dispose()


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (WRONG_ORDER, "your JSON['orders'][0]"),
        (N_PLUS_ONE, "the budget is 1"),
        (WRONG_ROUTE, "not GET /orders"),
    ],
    ids=["wrong-order", "n-plus-one", "wrong-route"],
)
def test_wrong_answers_say_why_and_are_not_saved(
    task: AppTask, tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str, reason: str
) -> None:
    assert not task.check(cell(source, 2)["my_views"])
    out = capsys.readouterr().out
    assert out.startswith("Not yet") and reason in out
    assert not (tmp_path / "my_app" / "03_order_list.py").exists()


def test_a_starter_with_blanks_is_not_answered(task: AppTask, capsys: pytest.CaptureFixture[str]) -> None:
    starter = RIGHT.replace("rows = get_session()", "rows = ____ or get_session()")
    namespace = cell(starter, 3) | {"____": object()}
    assert not task.check(namespace["my_views"])
    assert "Not answered yet" in capsys.readouterr().out


def test_a_later_lesson_replaces_an_earlier_version(task: AppTask, tmp_path: Path) -> None:
    folder = tmp_path / "my_app"
    folder.mkdir()
    for lesson in ("03", "04"):
        (folder / f"{lesson}_order_list.py").write_text(f"# {lesson}\n")
    assert saved_views.saved_files() == {"order_list": folder / "04_order_list.py"}


def test_the_learners_app_is_their_endpoints_plus_the_baseline_for_the_rest(task: AppTask) -> None:
    from helpers.exercises.saved_views import assemble
    from helpers.shop import baseline

    assert task.check(cell(RIGHT, 4)["my_views"])
    blueprints, borrowed = assemble(baseline.bp)
    assert sorted(borrowed) == ["customer_page", "place_order", "sales_report", "search"]
    app = task.course.app(views=blueprints)
    try:
        client = app.test_client()
        for url in ("/orders?per_page=3", "/customers/1", "/search?city=Lisbon", "/reports/sales"):
            assert client.get(url).status_code == 200
        assert int(client.get("/orders?per_page=3").headers["X-Statements"]) == 1  # yours, not the baseline's
    finally:
        app.extensions["engine"].dispose()


SLOW = RIGHT.replace(
    '    page = int_arg("page", 1)',
    "    get_session().execute(text('WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
    'SELECT count(*) FROM (SELECT x FROM c LIMIT 1000000000) AS t\')).scalar()\n    page = int_arg("page", 1)',
)
RAISES = RIGHT.replace('    page = int_arg("page", 1)', '    page = {}["page"]')


def test_a_statement_that_runs_too_long_is_stopped_with_a_reason(
    task: AppTask, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app_task, "STATEMENT_LIMIT_S", 0.5)
    started = time.monotonic()
    assert not task.check(cell(SLOW, 5)["my_views"])
    assert time.monotonic() - started < 20
    out = capsys.readouterr().out
    assert out.startswith("Not yet — a statement of yours ran longer than") and out.count("\n") == 1


def test_an_exception_in_the_view_is_one_line_not_a_logged_traceback(
    task: AppTask, capsys: pytest.CaptureFixture[str]
) -> None:
    assert not task.check(cell(RAISES, 6)["my_views"])
    captured = capsys.readouterr()
    assert captured.out == "Not yet — your code raised KeyError: 'page'\n"
    assert "Traceback" not in captured.err

"""Lesson 07 · Connection pooling: pools read back, exhaustion as a quick 503, leaks, restarts, the checks."""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from flask import Blueprint, abort
from sqlalchemy import func, select
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from helpers.course import Course
from helpers.db import make_engine
from helpers.errors import CourseError
from helpers.exercises.lesson07 import (
    Q1,
    Q2,
    Q3,
    THREADS,
    counts,
    exercises,
    pool_for_six_threads,
    requirement_problem,
    shipping,
    shipping_quote,
)
from helpers.exercises.saved_views import save_engine_options, saved_engine_options
from helpers.measure.plots import bars_side_by_side, concurrency_chart, timeline_chart
from helpers.measure.widgets import rerun_button
from helpers.servers import restart_postgres
from helpers.servers.wsgi import served
from helpers.shop import optimized
from helpers.shop.db import get_engine
from helpers.shop.models import Customer, Order
from helpers.topics.pooling import (
    ConnectionEvents,
    checked_out,
    gc_paused,
    pool_settings,
    watched_load,
)
from tests.cells import notebook_code_cells, run_cell

leaky = Blueprint("leaky", __name__)


@leaky.get("/customers/<int:customer_id>/name")
def leaky_name(customer_id: int) -> dict[str, Any]:
    session = Session(get_engine())  # never closed: the connection stays checked out until gc
    return {"id": customer_id, "name": session.scalar(select(Customer.name).where(Customer.id == customer_id))}


def dispose(*apps: Any) -> None:
    gc.collect()
    for app in apps:
        app.extensions["engine"].dispose()


# ---------------------------------------------------------------------- the pool, read back
def test_default_pool_is_a_queue_pool_of_five_plus_ten(course: Course) -> None:
    app = course.app()
    try:
        assert pool_settings(app.extensions["engine"]) == {
            "pool": "QueuePool",
            "pool_size": 5,
            "max_overflow": 10,
            "pool_timeout": 30,
            "pool_recycle": -1,
            "pool_pre_ping": False,
        }
    finally:
        dispose(app)


def test_the_blogs_setting_is_ignored_and_engine_options_are_not(course: Course) -> None:
    blog, today = course.app(SQLALCHEMY_POOL_SIZE=10), course.app(ENGINE_OPTIONS={"pool_size": 10})
    try:
        assert blog.config["SQLALCHEMY_POOL_SIZE"] == 10
        assert blog.extensions["engine"].pool.size() == 5
        assert today.extensions["engine"].pool.size() == 10
    finally:
        dispose(blog, today)


def test_null_pool_connects_per_request_queue_pool_once(course: Course) -> None:
    for options, connects in (({"poolclass": NullPool}, 5), ({}, 1)):
        engine = make_engine(course.url, **options)
        try:
            with ConnectionEvents(engine) as seen:
                for _ in range(5):
                    with engine.connect() as conn:
                        conn.execute(select(Customer.name).where(Customer.id == 1)).scalar_one()
            assert (seen.connects, seen.checkouts, seen.most_at_once) == (connects, 5, 1)
        finally:
            engine.dispose()


# ---------------------------------------------------------------------- exhaustion, leaks, restarts
def test_exhausted_pool_raises_the_queue_pool_limit_error_after_pool_timeout(course: Course) -> None:
    engine = make_engine(course.url, pool_size=1, max_overflow=1, pool_timeout=0.3)
    held = [engine.connect() for _ in range(2)]
    try:
        started = time.perf_counter()
        with pytest.raises(PoolTimeout, match=r"QueuePool limit of size 1 overflow 1 reached.*timeout 0\.30"):
            engine.connect()
        assert 0.25 <= time.perf_counter() - started < 0.3 + 2
    finally:
        for conn in held:
            conn.close()
        engine.dispose()


def test_app_answers_503_within_pool_timeout_when_every_connection_is_busy(course: Course) -> None:
    app = course.app(ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 0, "pool_timeout": 0.3})
    engine = app.extensions["engine"]
    try:
        with served(app, threads=2) as server:
            held = engine.connect()
            started = time.perf_counter()
            status, headers, body = server.get("/customers/1", timeout_s=10)
            elapsed = time.perf_counter() - started
            held.close()
            assert status == 503 and headers["Retry-After"] == "1"
            assert "no free connection within the pool timeout" in json.loads(body)["message"]
            assert 0.25 <= elapsed < 0.3 + 2  # the answer came once pool_timeout ran out, not 30 s later
            assert server.get("/customers/1")[0] == 200
    finally:
        dispose(app)


def test_a_leaked_session_exhausts_the_pool_until_the_collector_runs(course: Course) -> None:
    app = course.app(views=leaky, ENGINE_OPTIONS={"pool_size": 2, "max_overflow": 0, "pool_timeout": 0.2})
    engine, client = app.extensions["engine"], app.test_client()
    try:
        with gc_paused():
            statuses = [client.get(f"/customers/{i}/name").status_code for i in (1, 2, 3)]
            assert statuses == [200, 200, 503] and checked_out(engine) == 2
        gc.collect()
        assert checked_out(engine) == 0
        assert client.get("/customers/1/name").status_code == 200
    finally:
        dispose(app)


def test_pool_watch_sees_every_request_and_the_pool_it_used(course: Course) -> None:
    app = course.app(views=optimized.bp, ENGINE_OPTIONS={"pool_size": 2, "max_overflow": 1, "pool_timeout": 5})
    try:
        result, watch = watched_load(app, ["/customers/1", "/customers/2"], threads=4, concurrency=3, requests=21)
        summary = watch.summary()
        assert result.requests == summary["requests"] == 21 and summary["statuses"] == {200: 21}
        assert 1 <= summary["peak_checked_out"] <= 3 and summary["peak_overflow"] <= 1
        assert summary["new_connections"] >= 1  # overflow connections are closed on return, then reopened
        timeline = watch.timeline
        assert timeline["checked_out"].iloc[-1] == 0 and timeline["waiting"].iloc[-1] == 0
        assert (watch.requests["wait_ms"] >= 0).all()
    finally:
        dispose(app)


def test_loads_are_bounded_and_need_a_client(course: Course) -> None:
    app = course.app()
    try:
        with pytest.raises(CourseError, match="at least 1"):
            watched_load(app, ["/"], threads=2, concurrency=0, requests=1)
    finally:
        dispose(app)


@pytest.mark.postgres
def test_pre_ping_survives_a_restart_without_it_the_first_request_fails(course: Course) -> None:
    if course.backend != "postgresql":
        pytest.skip("a restart needs the course's PostgreSQL")
    plain, pinging = course.app(), course.app(ENGINE_OPTIONS={"pool_pre_ping": True})
    try:
        for app in (plain, pinging):
            assert app.test_client().get("/customers/1").status_code == 200
        restart_postgres()
        course.engine.dispose()  # the shared fixture's pooled connections died with the restart too
        first = plain.test_client().get("/customers/1")
        assert first.status_code == 503 and "unavailable" in first.get_json()["message"]
        assert plain.test_client().get("/customers/1").status_code == 200  # the pool was invalidated
        assert pinging.test_client().get("/customers/1").status_code == 200
    finally:
        dispose(plain, pinging)


def test_pool_recycle_replaces_an_old_connection_at_checkout(course: Course) -> None:
    for recycle, connects in ((1, 2), (-1, 1)):
        engine = make_engine(course.url, pool_recycle=recycle)
        try:
            with ConnectionEvents(engine) as seen:
                for _ in range(2):
                    with engine.connect() as conn:
                        conn.execute(select(1))
                    time.sleep(1.1)
            assert seen.connects == connects
        finally:
            engine.dispose()


# ---------------------------------------------------------------------- the exercises
@pytest.fixture
def ex(course: Course) -> Any:
    return exercises(course)


def said(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().out


def test_q1_passes_the_reference(ex: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert ex.q1.check(pool_for_six_threads())
    out = said(capsys)
    assert "6 connections checked out at once" in out and "closed the 2 overflow connections and kept 4" in out


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ({"SQLALCHEMY_POOL_SIZE": 4}, "create_engine refused it: Invalid argument(s) 'SQLALCHEMY_POOL_SIZE'"),
        ({"pool_size": 6, "max_overflow": 0, "pool_timeout": 2}, "6 connections stay open"),
        ({"pool_size": 4, "max_overflow": 0, "pool_timeout": 2}, "2 requests would wait"),
        ({"pool_size": 4, "max_overflow": 10, "pool_timeout": 2}, "up to 14 connections at once"),
        ({"pool_size": 4, "max_overflow": 2}, "pool_timeout = 30 s"),
        ({"poolclass": NullPool}, "builds a NullPool"),
    ],
    ids=["blog-setting", "all-kept", "too-few", "too-many", "default-timeout", "null-pool"],
)
def test_q1_rejects_with_the_reason(ex: Any, capsys: pytest.CaptureFixture[str], answer: Any, reason: str) -> None:
    assert not ex.q1.check(answer)
    out = said(capsys)
    assert out.startswith("Not yet") and reason in out


def test_the_starters_are_the_notebooks_cells() -> None:
    cells = notebook_code_cells("07_connection_pooling.ipynb")
    for question in (Q1, Q2, Q3):
        assert question.starter in cells, question.title


def test_q2_passes_the_reference(ex: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert ex.q2.check(counts)
    assert "each gave its connection back; 1 new connection opened" in said(capsys)


def _count_cell(session: str, closing: str = "") -> Blueprint:
    """Q2's starter with `session = <session>`, and `closing` run just before the view's last line."""
    source = Q2.starter.replace("____", session)
    source = source.replace("    return {", f"    {closing}\n    return {{") if closing else source
    return run_cell(source, "q2_cell", Session=Session)["fixed_count"]


def test_q2_accepts_the_starter_filled_as_the_hint_says(ex: Any) -> None:
    assert ex.q2.check(_count_cell("get_session()"))


def _leaky_count() -> Blueprint:
    return _count_cell("Session(get_engine())")


def _closes_on_success_only() -> Blueprint:
    return _count_cell("Session(get_engine())", "session.close()")


def _engine_per_request() -> Blueprint:
    views = Blueprint("engine_per_request", __name__)

    @views.get("/customers/<int:customer_id>/orders/count")
    def order_count(customer_id: int) -> dict[str, Any]:
        engine = make_engine(get_engine().url)  # a new engine, so a new pool and a new connection, per request
        try:
            with Session(engine) as session:
                customer = session.get(Customer, customer_id)
                if customer is None:
                    abort(404, description=f"no customer with id {customer_id}")
                orders = session.scalar(select(func.count(Order.id)).where(Order.customer_id == customer_id))
                return {"id": customer_id, "name": customer.name, "orders": orders}
        finally:
            engine.dispose()

    return views


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_leaky_count, "after GET /customers/1/orders/count (200), 1 connection was still checked out"),
        (_closes_on_success_only, "/orders/count (404), 1 connection was still checked out"),
        (_engine_per_request, "new database connections for 4 requests"),
    ],
    ids=["leak", "leak-on-404", "engine-per-request"],
)
def test_q2_rejects_with_the_reason(ex: Any, capsys: pytest.CaptureFixture[str], make: Any, reason: str) -> None:
    assert not ex.q2.check(make())
    out = said(capsys)
    assert out.startswith("Not yet") and reason in out


def test_q3_passes_the_reference(ex: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert ex.q3.check(shipping)
    assert "it held no connection" in said(capsys)


def _shipping(release: str) -> Blueprint:
    """Q3's starter with `release` where the blank is."""
    namespace = run_cell(Q3.starter.replace("____", release), "q3_cell", shipping_quote=shipping_quote)
    return namespace["quick_shipping"]


@pytest.mark.parametrize("release", ["session.close()", "session.commit()"])
def test_q3_accepts_closing_or_committing(ex: Any, release: str) -> None:
    assert ex.q3.check(_shipping(release))


@pytest.mark.parametrize("release", ["pass", "session.flush()"])
def test_q3_rejects_holding_the_connection(ex: Any, capsys: pytest.CaptureFixture[str], release: str) -> None:
    assert not ex.q3.check(_shipping(release))
    out = said(capsys)
    assert out.startswith("Not yet") and "held 1 connection while it waited for the carrier" in out


def test_q3_rejects_a_wrong_answer(ex: Any, capsys: pytest.CaptureFixture[str]) -> None:
    views = Blueprint("shipping_wrong", __name__)

    @views.get("/customers/<int:customer_id>/shipping")
    def shipping_page(customer_id: int) -> dict[str, Any]:
        with Session(get_engine()) as session:
            city = session.scalar(select(Customer.city).where(Customer.id == customer_id)) or "nowhere"
        return {"id": customer_id, "city": city, "quote": shipping_quote(city)}

    assert not ex.q3.check(views)
    assert "answered 200, expected 404" in said(capsys)


# ---------------------------------------------------------------------- improve the app
def requirement(**overrides: Any) -> str | None:
    settings = {"pool": "QueuePool", "pool_size": 8, "max_overflow": 0, "pool_timeout": 2, "pool_pre_ping": True}
    return requirement_problem(settings | overrides)


def test_requirements_say_what_is_wrong() -> None:
    assert requirement() is None and requirement(pool_size=5, max_overflow=3) is None
    assert "3 requests at a time would wait" in (requirement(pool_size=5) or "")
    assert "idle connections" in (requirement(pool_size=10) or "")
    assert "pool_timeout = 30 s" in (requirement(pool_timeout=30) or "")
    assert "pool_pre_ping" in (requirement(pool_pre_ping=False) or "")
    assert THREADS == 8


IMPROVE_CELL = next(c for c in notebook_code_cells("07_connection_pooling.ipynb") if "ex.improve.check(" in c)
LEAKY = (
    IMPROVE_CELL.replace('"pool_size": ____', '"pool_size": 8')
    .replace('"max_overflow": ____', '"max_overflow": 0')
    .replace('"pool_timeout": ____', '"pool_timeout": 2')
    .replace('"pool_pre_ping": ____', '"pool_pre_ping": True')
)
RIGHT = LEAKY.replace("session = orm.Session(get_engine())  # never closed: fix this", "session = get_session()")


def cell(source: str, number: int) -> dict[str, Any]:
    return run_cell(source, f"cell6{number}")


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    yield tmp_path


def test_improve_passes_the_reference_and_keeps_the_pool(ex: Any, data_dir: Path) -> None:
    assert saved_engine_options() is None
    assert ex.improve.check(optimized.bp, optimized.ENGINE_OPTIONS)
    assert saved_engine_options() == optimized.ENGINE_OPTIONS


def test_improve_passes_a_learners_cell_and_saves_it(
    ex: Any, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace = cell(RIGHT, 1)
    assert ex.improve.check(namespace["my_views"], namespace["ENGINE_OPTIONS"])
    out = said(capsys)
    assert "leaks nothing" in out and "answered 40 requests with no error" in out
    saved = (data_dir / "my_app" / "07_customer_page.py").read_text()
    assert "ENGINE_OPTIONS = {" in saved and "from sqlalchemy import orm" in saved
    assert saved_engine_options() == namespace["ENGINE_OPTIONS"]


@pytest.mark.parametrize(
    ("source", "options", "reason"),
    [
        (LEAKY, None, "connection was still checked out"),
        (RIGHT, {"pool_size": 4, "max_overflow": 0, "pool_timeout": 2, "pool_pre_ping": True}, "4 requests at"),
        (RIGHT, {"pool_size": 8, "max_overflow": 0, "pool_timeout": 2}, "pool_pre_ping"),
        (RIGHT, {"SQLALCHEMY_POOL_SIZE": 8}, "create_engine refused ENGINE_OPTIONS"),
    ],
    ids=["leak", "too-small", "no-pre-ping", "blog-setting"],
)
def test_improve_rejects_with_the_reason(
    ex: Any, data_dir: Path, capsys: pytest.CaptureFixture[str], source: str, options: Any, reason: str
) -> None:
    namespace = cell(source, 2)
    assert not ex.improve.check(namespace["my_views"], options or namespace["ENGINE_OPTIONS"])
    out = said(capsys)
    assert out.startswith("Not yet") and reason in out
    assert saved_engine_options() is None and not (data_dir / "my_app" / "07_customer_page.py").exists()


def test_improve_with_blanks_is_not_answered(ex: Any, capsys: pytest.CaptureFixture[str]) -> None:
    namespace = cell(IMPROVE_CELL, 3)
    assert not ex.improve.check(namespace["my_views"], namespace["ENGINE_OPTIONS"])
    assert said(capsys).startswith("Not answered yet")


# ---------------------------------------------------------------------- the helpers behind the lesson
def test_both_backends_are_at_hand_whatever_the_course_runs_on(course: Course) -> None:
    pg, lite = course.on_postgres(), course.on_sqlite()
    try:
        assert (pg.backend, lite.backend) == ("postgresql", "sqlite")
        assert (pg is course) == (course.backend == "postgresql") and (lite is course) == (
            course.backend == "sqlite"
        )
        assert pg.info.rows == lite.info.rows == course.info.rows
    finally:
        for other in (pg, lite):
            if other is not course:
                other.engine.dispose()


def test_compare_without_interleaving_times_each_variant_apart_and_stores_them_in_order(course: Course) -> None:
    from helpers.measure import results

    calls: list[str] = []

    def variant(label: str) -> Any:
        def run() -> int:
            calls.append(label)
            with course.engine.connect() as conn:
                return int(conn.execute(select(func.count()).select_from(Customer)).scalar_one())

        return run

    comparison = course.compare(
        {"first": variant("first"), "second": variant("second")}, engine=course.engine, repeat=3,
        title="blocks test", interleave=False,
    )  # fmt: skip
    assert [m.variant for m in comparison.measurements] == ["first", "second"]
    assert calls == ["second"] * 4 + ["first"] * 4  # a block each (warm-up + 3), the last variant first
    assert [m.statements for m in comparison.measurements] == [1, 1]
    stored = results.history("tests")
    assert set(stored[stored["comparison"] == "blocks test"]["variant"]) == {"first", "second"}
    plt.close(bars_side_by_side({"one": comparison, "two": comparison}))


def test_charts_draw_a_watched_load(course: Course) -> None:
    app = course.app(views=optimized.bp, ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 0, "pool_timeout": 0.2})
    engine = app.extensions["engine"]
    try:
        held = engine.connect()  # the only connection: every request answers 503 after pool_timeout
        try:
            result, watch = watched_load(app, ["/customers/1"], threads=3, concurrency=2, requests=4)
        finally:
            held.close()
        assert result.statuses == {503: 4} and watch.summary()["errors_5xx"] == 4
        assert watch.summary()["waited"] == 4 and watch.requests["wait_ms"].isna().all()
        figure = timeline_chart(watch, title="exhausted")
        labels = figure.axes[0].get_legend_handles_labels()[1]
        assert "answered 503 (4)" in labels and "connections checked out" in labels
        plt.close(figure)
        frame = pd.DataFrame([{**result.row(), **watch.summary()}]).set_index("concurrency")
        plt.close(concurrency_chart(frame, limit=1, title="one row"))
    finally:
        dispose(app)


def test_the_rerun_widget_runs_with_the_chosen_values() -> None:
    seen: list[dict[str, Any]] = []
    rerun_button(
        lambda **chosen: seen.append(chosen),
        controls={"pool_size": [1, 2], "concurrency": [4, 8]},
        values={"pool_size": 2, "concurrency": 4},
    )
    assert seen == [{"pool_size": 2, "concurrency": 4}]


def test_saved_engine_options_survive_only_as_json(data_dir: Path) -> None:
    assert saved_engine_options() is None
    path = save_engine_options({"pool_size": 8, "pool_pre_ping": True})
    assert path.name == "07_engine_options.json" and saved_engine_options() == {
        "pool_size": 8,
        "pool_pre_ping": True,
    }
    path.write_text("not json")
    assert saved_engine_options() is None

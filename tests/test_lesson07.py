"""Lesson 07 · Connection pooling: pools read back, exhaustion as a quick 503, leaks, restarts, the checks."""

from __future__ import annotations

import gc
import json
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from flask import Blueprint
from sqlalchemy import func, select
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from helpers.course import Course
from helpers.db import make_engine
from helpers.errors import CourseError
from helpers.exercises import ____
from helpers.exercises.lesson07 import (
    BUDGET,
    COURSE_POOL,
    IMPROVE_HINTS,
    IMPROVE_STARTER,
    Q1,
    Q2,
    Q3,
    PoolTask,
    race_pool,
    shipping_quote,
)
from helpers.exercises.saved_views import save_engine_options, saved_engine_options
from helpers.measure.plots import bars_side_by_side, concurrency_chart, timeline_chart
from helpers.measure.predictions import Prediction
from helpers.measure.widgets import rerun_button
from helpers.servers import restart_postgres
from helpers.servers.wsgi import served
from helpers.shop import optimized
from helpers.shop.db import get_engine
from helpers.shop.models import Customer, Order
from helpers.topics import pooling
from helpers.topics.pooling import (
    ConnectionEvents,
    checked_out,
    exhaustion,
    gc_paused,
    pool_settings,
    two_bursts,
    watched_load,
)
from tests.cells import notebook_code_cells, run_cell
from tests.proving import prove, verdict

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


def test_flask_sqlalchemy_ignores_the_blogs_setting_and_reads_engine_options(course: Course) -> None:
    url = course.url.render_as_string(hide_password=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # silently: not even a warning
        blog = pooling.blog_pool_size(url, {"SQLALCHEMY_POOL_SIZE": 10})
    today = pooling.blog_pool_size(url, {"SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 10, "max_overflow": 2}})
    assert (blog["pool_size"], blog["max_overflow"]) == (5, 10) and blog["Flask-SQLAlchemy"].startswith("3.")
    assert (today["pool_size"], today["max_overflow"]) == (10, 2)


def test_exhaustion_finds_the_ceiling_and_the_wait(course: Course) -> None:
    for options, ceiling in (({"pool_size": 2, "max_overflow": 1}, 3), ({"pool_size": 2, "max_overflow": -1}, 6)):
        engine = make_engine(course.url, pool_timeout=0.2, **options)
        try:
            lent, waited = exhaustion(engine, most=6)
            assert lent == ceiling and checked_out(engine) == 0
            assert (waited is None) == (ceiling == 6) and (waited is None or 0.15 < waited < 2)
        finally:
            engine.dispose()


def test_two_bursts_count_what_the_pool_reopened(course: Course) -> None:
    for options, reopened in (({"pool_size": 2, "max_overflow": 2}, 2), ({"pool_size": 4, "max_overflow": 0}, 0)):
        # pool_size 2: the two overflow connections closed when the load paused are opened again (at least).
        app = course.app(views=pooling.held_views, ENGINE_OPTIONS={"pool_timeout": 5, **options})
        try:
            paths = [f"/customers/{i}/held?hold_ms=30" for i in (1, 2, 3)]
            results, summary, again = two_bursts(app, paths, concurrency=4, requests=16)
            assert [r.statuses for r in results] == [{200: 16}, {200: 16}] and summary["peak_checked_out"] == 4
            assert again >= reopened if reopened else again == 0
        finally:
            dispose(app)


def test_the_partners_recent_orders_leak_for_a_customer_without_orders(course: Course) -> None:
    app = course.app(views=pooling.partner_views)
    engine, client = app.extensions["engine"], app.test_client()
    try:
        with gc_paused():
            for path in ("/customers/1/badge", "/customers/1/spent", "/customers/1/recent", "/customers/1/nobody"):
                client.get(path)
            assert checked_out(engine) == 0
            client.get(f"/customers/{customers_without_orders(course)[0]}/recent")
            assert checked_out(engine) == 1
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
def test_the_starters_are_the_notebooks_cells() -> None:
    cells = notebook_code_cells("07_connection_pooling.ipynb")
    for starter in (Q1.starter, Q2.starter, Q3.starter, IMPROVE_STARTER):
        assert starter in cells, starter.splitlines()[0]


def test_every_question_has_two_hints() -> None:
    assert all(len(hints) >= 2 for hints in (Q1.hints, Q2.hints, Q3.hints, IMPROVE_HINTS))


def test_q1_is_proven(course: Course) -> None:
    prove(
        Q1.bind(course).check,
        right=[dict(COURSE_POOL), {"pool_size": 8, "max_overflow": 0, "pool_timeout": 0.5, "pool_pre_ping": True}],
        wrong=[
            ({"pool_size": 8, "max_overflow": -1, "pool_timeout": 1}, "removes the ceiling: 12 clients had"),
            ({"pool_size": 12, "max_overflow": 0, "pool_timeout": 1}, "over the 8 the database gives"),
            ({"pool_size": 8, "max_overflow": 0, "pool_timeout": 0.01}, "pool_timeout = 0.01 s: under the stated"),
            (
                {"pool_size": 6, "max_overflow": 2, "pool_timeout": 1},
                "pool_size = 6: the traffic never drops below 8",
            ),
            ({"pool_size": 4, "max_overflow": 0, "pool_timeout": 1}, "shared 4 connections"),
            ({"pool_size": 8, "max_overflow": 0}, "pool_timeout = 30 s"),
            ({"SQLALCHEMY_POOL_SIZE": 10}, "was a Flask-SQLAlchemy 2 setting"),
            ({"pool_size": "8"}, "not strings"),
        ],
    )


def test_q1_starter_is_not_answered(course: Course) -> None:
    passed, said = verdict(Q1.bind(course).check, run_cell(Q1.starter, "q1_blank")["my_pool"])
    assert not passed and said.startswith("Not answered yet")


def customers_without_orders(course: Course) -> list[int]:
    with course.session() as session:
        ordered = select(Order.customer_id)
        return list(session.scalars(select(Customer.id).where(Customer.id.not_in(ordered)).order_by(Customer.id)))


def test_q2_is_proven(course: Course) -> None:
    first, second = customers_without_orders(course)[:2]
    prove(
        Q2.bind(course).check,
        right=[f"/customers/{first}/recent", f"/customers/{second}/recent?from=test"],
        wrong=[
            ("/customers/1/recent", "gave its connection back: it does not leak"),
            (f"/customers/{first}/badge", "gave its connection back"),
            (f"/customers/{first}/spent", "gave its connection back"),
            ("/customers/1/orders", "none of the partner's endpoints"),
            (first, "the path of a request"),
        ],
    )


def test_q2_solution_finds_a_leaking_request(course: Course) -> None:
    from helpers.exercises.lesson07 import _SOLUTION_Q2

    namespace = {"pg": course, "pooling": pooling, "gc_paused": gc_paused, "checked_out": checked_out}
    exec(_SOLUTION_Q2, namespace)
    assert verdict(Q2.bind(course).check, namespace["leaking_request"])[0]


Q3_READ = """    session = get_session()
    city = session.scalar(select(Customer.city).where(Customer.id == customer_id))
"""
Q3_TAIL = """    if city is None:
        abort(404, description=f"no customer with id {customer_id}")
    return {"id": customer_id, "city": city, "quote": QUOTE}"""
Q3_BLOCK = """    with Session(get_engine()) as session:
        city = session.scalar(select(Customer.city).where(Customer.id == customer_id))
"""


NO_404 = """    return {"id": customer_id, "city": city, "quote": shipping_quote(city or "")}"""


def q3_answer(
    read: str, name: str, *, release: str = "", quote: str = "shipping_quote(city)", tail: str = Q3_TAIL
) -> Blueprint:
    body = read + release + tail.replace("QUOTE", quote)
    names = {"shipping_quote": shipping_quote, "Session": Session}
    return run_cell(Q3.starter.replace("    ____", body), name, **names)["quick_shipping"]


def test_q3_is_proven(course: Course) -> None:
    reference = str(Q3.solution)
    twice = "max(shipping_quote(city), shipping_quote(city))"
    leaking = Q3_READ.replace("get_session()", "Session(get_engine())  # never closed")
    prove(
        Q3.bind(course).check,
        right=[
            run_cell(reference, "q3_solution", shipping_quote=shipping_quote)["quick_shipping"],
            q3_answer(Q3_READ, "q3_commit", release="    session.commit()  # ends the transaction\n"),
            q3_answer(Q3_BLOCK, "q3_block"),
        ],
        wrong=[
            (q3_answer(Q3_READ, "q3_holding"), "held 1 connection while it waited for the carrier"),
            (q3_answer(Q3_BLOCK, "q3_twice", quote=twice), "asked the carrier 2 times"),
            (q3_answer(leaking, "q3_leak"), "still checked out"),
            (q3_answer(Q3_BLOCK, "q3_no_404", tail=NO_404), "expected 404"),
        ],
    )


# ---------------------------------------------------------------------- improve the app
@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    yield tmp_path


PINGED = {"pool_timeout": 2, "pool_pre_ping": True}


def test_improve_is_proven_and_keeps_the_pool(course: Course, data_dir: Path) -> None:
    assert saved_engine_options() is None
    spread = {"pool_size": 6, "max_overflow": 2, "pool_timeout": 1.5, "pool_pre_ping": True}
    prove(
        PoolTask(course).check,
        right=[dict(optimized.ENGINE_OPTIONS), spread],
        wrong=[
            (
                {"pool_size": 8, "max_overflow": -1, "pool_timeout": 2, "pool_pre_ping": True},
                "removes the ceiling",
            ),
            ({"pool_size": 8, "max_overflow": 8, "pool_timeout": 2, "pool_pre_ping": True}, "over the 8"),
            (
                {"pool_size": 4, "max_overflow": 0, "pool_timeout": 2, "pool_pre_ping": True},
                "4 requests at a time",
            ),
            ({"pool_size": 8, "max_overflow": 0, "pool_timeout": 30, "pool_pre_ping": True}, "pool_timeout = 30"),
            ({"pool_size": 8, "max_overflow": 0, "pool_timeout": 2}, "pool_pre_ping"),
            ({"SQLALCHEMY_POOL_SIZE": 8}, "not one of create_engine's pool options"),
        ],
    )
    assert saved_engine_options() == spread  # the last right answer; no wrong one overwrote it
    assert json.loads((data_dir / "my_app" / "07_engine_options.json").read_text()) == spread


def test_improve_runs_your_saved_views(course: Course, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mine = data_dir / "my_app" / "02_customer_page.py"
    mine.parent.mkdir(parents=True)
    mine.write_text(
        "from helpers.shop.kit import *  # noqa: F403\n\n"
        "from helpers.shop.optimized import customer_page\n\n"
        'my_views = Blueprint("my_views", __name__)\n'
        'my_views.add_url_rule(f"/customers/<{ID}:customer_id>", view_func=customer_page)\n'
    )
    assert PoolTask(course).check({"pool_size": 8, "max_overflow": 0, "pool_timeout": 2, "pool_pre_ping": True})
    assert "your saved endpoints (customer_page)" in capsys.readouterr().out


def test_improve_starter_hints_and_solution(course: Course, capsys: pytest.CaptureFixture[str]) -> None:
    task = PoolTask(course)
    assert not task.check(run_cell(IMPROVE_STARTER, "improve_blank")["ENGINE_OPTIONS"])
    task.hint()
    task.hint(2)
    task.solution()
    out = capsys.readouterr().out
    assert out.startswith("Not answered yet") and "Hint 2 of 2" in out and "pool_pre_ping" in out


def test_the_race_runs_your_pool_beside_no_pool(course: Course, capsys: pytest.CaptureFixture[str]) -> None:
    race, table = race_pool(course, ____, prediction=Prediction(speedup=2), requests=24)
    assert "Your pool is not in the race" in capsys.readouterr().out
    assert list(table.index) == [
        "NullPool (a connection per request)",
        "the default pool (5 + 10)",
        "the course's pool (8 + 0)",
    ]
    race, table = race_pool(course, dict(COURSE_POOL), prediction=Prediction(speedup=2), requests=24)
    assert race.roles == {"NullPool (a connection per request)": "naive", "yours": "best"}
    assert (table["answered 503"] == 0).all() and (table["connections open at most"] >= 1).all()
    assert table.loc["yours", "connections open at most"] <= BUDGET and race.outcome is not None


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

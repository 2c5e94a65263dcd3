"""locust, run headless as a subprocess against the shop on a real server, read back from its CSV."""

from __future__ import annotations

import pytest

from helpers.course import setup
from helpers.errors import CourseError
from helpers.servers.wsgi import serve_in_thread
from helpers.topics.loadtest import load_chart, locust_race, run_locust


def test_locust_loads_the_app_and_reports_totals() -> None:
    course = setup("tests", size="tiny", backend="sqlite", quiet=True)  # one backend is enough here
    app = course.app()
    server = serve_in_thread(app, threads=4)
    try:
        result = run_locust(server.url, {"/customers/1": 2, "/nowhere": 1}, users=2, run_time_s=2)
    finally:
        server.stop()
        app.extensions["engine"].dispose()
        course.engine.dispose()
    assert result.requests > 10 and result.failures == 0  # a 404 is an answer, not a failure
    paths = {row["path"]: row for row in result.per_path}
    assert set(paths) == {"/customers/1", "/nowhere"}
    assert paths["/customers/1"]["requests"] >= paths["/nowhere"]["requests"]  # weights 2:1
    assert result.p50_ms <= result.p95_ms <= result.max_ms and result.throughput_rps > 0


def test_a_race_under_load_serves_each_app_in_turn() -> None:
    course = setup("tests", size="tiny", backend="sqlite", quiet=True)
    try:
        table = locust_race(
            {"baseline": {"views": "baseline", "database_url": course.url}},
            {"/customers/1": 1},
            users=(1, 2),
            seconds=2,
            threads=2,
        )
    finally:
        course.engine.dispose()
    assert list(table.index) == [("baseline", 1), ("baseline", 2)]
    assert (table["requests"] > 0).all() and table["failures"].dtype == int
    figure = load_chart(table)
    assert [ax.get_title() for ax in figure.axes] == ["throughput", "95th percentile latency"]


@pytest.mark.parametrize(
    ("host", "users", "seconds", "message"),
    [
        ("http://example.com", 1, 1, "not on loopback"),
        ("http://127.0.0.1:1", 1000, 1, "Keep the load bounded"),
        ("http://127.0.0.1:1", 1, 3600, "Keep the load bounded"),
    ],
)
def test_load_stays_bounded_and_local(host: str, users: int, seconds: float, message: str) -> None:
    with pytest.raises(CourseError, match=message):
        run_locust(host, {"/": 1}, users=users, run_time_s=seconds)

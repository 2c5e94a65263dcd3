"""locust, run headless as a subprocess against the shop on a real server, read back from its CSV."""

from __future__ import annotations

import re

import pytest

from helpers.course import setup
from helpers.errors import CourseError
from helpers.servers.wsgi import serve_in_thread
from helpers.shop import optimized
from helpers.topics.loadtest import (
    ShopRequest,
    cycle_of,
    layers,
    load_chart,
    load_statistics,
    locust_race,
    run_locust,
    run_shop_load,
    serve_floor,
)


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


# ---------------------------------------------------------------------- the capstone's mix of requests
ORDER = {"customer_id": 2, "lines": [{"product_id": 3, "quantity": 1}]}
MIX = [
    ShopRequest("customer page", "GET", "/customers/1", 3),
    ShopRequest("missing", "GET", "/customers/999999", 1),
    ShopRequest(
        "place an order", "POST", "/orders", 1, {"customer_id": 2, "lines": [{"product_id": 3, "quantity": 1}]}
    ),
]


def test_a_cycle_spreads_each_request_by_its_weight() -> None:
    names = [name for name, *_ in cycle_of(MIX)]
    assert names == ["customer page", "missing", "customer page", "place an order", "customer page"]


def test_the_mix_under_a_closed_and_an_open_loop_keeps_every_answer_with_the_apps_headers() -> None:
    course = setup("tests", size="tiny", backend="sqlite", quiet=True)
    with course.scratch_copy("loadtest_mix") as copy:
        app = copy.app(views=optimized.bp)
        server = serve_in_thread(app, threads=4)
        try:
            closed = run_shop_load(server.url, MIX, app="finished", users=3, seconds=1)
            arrivals = run_shop_load(server.url, MIX, app="finished", rate_rps=40, seconds=1)
        finally:
            server.stop()
            app.extensions["engine"].dispose()
    course.engine.dispose()
    assert closed.users == 3 and closed.failures == 0 and 0.9 < closed.window_s < 1.5
    assert closed.most_in_flight <= 3 and closed.ramp_s < 0.5
    by_name = {a.name: a for a in closed.answered}
    assert set(by_name) == {"customer page", "missing", "place an order"}  # a 404 is an answer, not a failure
    assert by_name["customer page"].statements == 2 and by_name["place an order"].statements == 4
    assert all(a.app_ms is not None and a.db_ms is not None and a.ms >= a.app_ms for a in closed.answered)
    assert "--users 3" in closed.command and closed.command.startswith("locust -f locustfile.py")
    assert arrivals.users is None and arrivals.rate_rps == 40 and 15 <= len(arrivals.answered) <= 80
    assert "Arrivals" in arrivals.command and arrivals.window_s == pytest.approx(1.0)
    stats = load_statistics([closed])
    assert stats.loc[("finished", "3 users", "missing"), "failures"] == 0
    where = layers([closed])
    assert (where["latency_ms"] >= where["waiting_ms"]).all() and where.loc["customer page", "statements"] == 2


def test_an_open_loop_beyond_the_servers_pace_keeps_every_arrival() -> None:
    """Arrivals twice as fast as the server can answer (on waitress, which serves at most 100 connections and keeps
    each open): every arrival is in the run, answered or failed, none dropped, and the run ends with its window
    (not at locust's stop timeout, with the requests it never got an answer to left out)."""
    import random
    import time

    rate, seconds = 400, 1.0
    gaps, due, arrivals = random.Random(5), 0.0, 0  # the locustfile's own seeded arrivals
    while due < seconds:
        arrivals, due = arrivals + 1, due + gaps.expovariate(rate)
    course = setup("tests", size="tiny", backend="sqlite", quiet=True)
    with course.scratch_copy("loadtest_open") as copy:  # the mix places orders
        app = copy.app()
        app.before_request(lambda: time.sleep(0.01))  # two threads of 10 ms a request: 200 a second at most
        server = serve_in_thread(app, threads=2)
        try:
            started = time.monotonic()
            run = run_shop_load(server.url, MIX, app="baseline", rate_rps=rate, seconds=seconds)
            took = time.monotonic() - started
        finally:
            server.stop()
            app.extensions["engine"].dispose()
    course.engine.dispose()
    assert len(run.answered) == arrivals
    assert run.most_in_flight > 96  # more arrivals at once than connections: some waited for one
    assert took < 25, f"the run took {took:.0f} s"


def test_the_floor_answers_every_request_as_given() -> None:
    with serve_floor([("GET", "/customers/1", 200, {"id": 1}), ("POST", "/orders", 201, {"id": 7})]) as floor:
        assert floor.get("/customers/1")[0] == 200
        run = run_shop_load(floor.url, MIX[:1] + MIX[2:], app="floor", users=2, seconds=0.5)
    assert run.failures == 0 and {a.name for a in run.answered} == {"customer page", "place an order"}
    assert all(a.statements is None for a in run.answered)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"users": 2, "rate_rps": 5.0}, "users=... (a closed loop) or rate_rps"),
        ({}, "users=... (a closed loop) or rate_rps"),
        ({"users": 1000}, "Keep the load bounded"),
        ({"rate_rps": 1e6}, "Keep the load bounded"),
    ],
)
def test_the_mix_stays_bounded(options: dict[str, float], message: str) -> None:
    with pytest.raises(CourseError, match=re.escape(message)):
        run_shop_load("http://127.0.0.1:1", MIX, app="x", seconds=1, **options)  # type: ignore[arg-type]
    with pytest.raises(CourseError, match="not on loopback"):
        run_shop_load("http://example.com", MIX, app="x", users=1, seconds=1)

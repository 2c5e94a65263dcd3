"""The endpoints' floors answer what the finished endpoints answer, through the raw driver and every rung."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpers.course import Course
from helpers.shop.models import Order
from helpers.topics.floors import (
    LAYERS,
    RUNGS,
    RawPool,
    bare_view,
    call_ladder,
    capture,
    endpoint_floor,
    finished_app,
    ladder,
    raw_driver_app,
    same_answer,
    serve_bare,
)
from helpers.topics.loadtest import run_split_load

PATHS = [
    "/customers/1",
    "/customers/7",
    "/orders?page=1&per_page=20",
    "/orders?page=3&per_page=7",
    "/search?city=Lisbon&name=an&limit=20",
    "/search?limit=500",
    "/reports/sales?days=7",
    "/reports/sales?days=365&status=delivered&min_total=100",
]


@pytest.fixture(scope="module")
def finished(course: Course) -> Iterator[Flask]:
    """The finished app on an indexed copy, uncached (every request runs its statements)."""
    with finished_app(course, "floors-test") as app:
        yield app


@pytest.mark.parametrize("path", PATHS)
def test_the_raw_driver_floor_answers_the_same_json_with_the_same_statements(finished: Flask, path: str) -> None:
    captured = capture(finished, path)
    assert captured.status == 200 and 1 <= len(captured.sql) == len(captured.statements) <= 2
    pool = RawPool(finished.extensions["engine"])
    try:
        response = raw_driver_app(pool, {path: captured}).test_client().get(path)
    finally:
        pool.close()
    assert same_answer(response) == (200, captured.body)
    assert same_answer(bare_view(path, captured.body)()) == (200, captured.body)


@pytest.mark.parametrize("path", ["/customers/1", "/orders?page=2&per_page=20", "/reports/sales?days=30"])
def test_every_rung_of_the_ladder_answers_the_same_json(finished: Flask, path: str) -> None:
    variants, close = ladder(finished, path)
    try:
        assert list(variants) == list(RUNGS)
        answers = {rung: same_answer(call()) for rung, call in variants.items()}
    finally:
        close()
    expected = same_answer(finished.test_client().get(path))
    assert all(answer == expected for answer in answers.values()), answers


def test_endpoint_floor_measures_the_ladder_and_splits_it_into_layers(finished: Flask) -> None:
    result = endpoint_floor(finished, "/customers/1", repeat=3, store=False)
    assert [m.variant for m in result.comparison.measurements] == list(RUNGS)
    layers = result.layers
    assert list(layers.index) == list(LAYERS)
    # the layers add up to the finished app's median, whatever the machine did
    assert layers["ms"].sum() == pytest.approx(result.finished_ms)
    assert result.summary().startswith("/customers/1: the finished app took")


def test_a_call_ladder_returns_the_same_rows_on_every_rung(course: Course) -> None:
    newest = select(Order.id, Order.status).order_by(Order.id.desc()).limit(5)

    def five() -> list[tuple[int, str]]:
        with Session(course.engine) as session:
            return [tuple(row) for row in session.execute(newest)]  # type: ignore[misc]

    variants, close = call_ladder(course.engine, "five", five)
    try:
        rows = {name: call() for name, call in variants.items()}
    finally:
        close()
    assert list(rows) == ["five", "five, statement built once", "five, Core connection, statement built once",
                          "raw driver, the same SQL (floor)"]  # fmt: skip
    assert len({repr(r) for r in rows.values()}) == 1 and len(rows["five"]) == 5


def test_the_floor_under_load_serves_the_same_json_and_locust_splits_the_users(finished: Flask) -> None:
    paths = ["/customers/1", "/search?city=Lisbon&name=an&limit=20"]
    payloads = {path: finished.test_client().get(path).get_json() for path in paths}
    with serve_bare(payloads, threads=2) as server:
        for path in paths:
            status, _, body = server.get(path)
            assert status == 200 and body == finished.test_client().get(path).data
        loads = run_split_load(server.url, paths, users_per_path=1, run_time_s=2)
    assert [load.path for load in loads] == paths
    for load in loads:
        assert load.requests > 0 and load.failures == 0 and load.throughput_rps > 0
        assert load.p50_ms <= load.p95_ms <= load.p99_ms

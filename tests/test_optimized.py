"""The optimized app answers exactly like the baseline, in a handful of statements."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from helpers.course import Course
from helpers.data import drop_copy
from helpers.shop.optimized import INDEXES, bp, create_indexes

URLS = [
    "/customers/1",
    "/customers/7",
    "/customers/999999999",
    "/orders",
    "/orders?page=3&per_page=50",
    "/search?city=Lisbon&name=an&limit=20",
    "/search?name=a_%&limit=5",
    "/search?limit=500",
    "/reports/sales?days=7",
    "/reports/sales?days=365&status=delivered&min_total=100",
    "/orders?page=abc",
]
BUDGETS = {"/customers/": 2, "/orders": 1, "/search": 2, "/reports/sales": 2}


@pytest.fixture(scope="module")
def apps(course: Course) -> Iterator[tuple[Flask, Flask]]:
    copy = course.private_copy("optimized-test")
    create_indexes(copy.engine)
    baseline, optimized = course.app(), copy.app(views=bp)
    yield baseline, optimized
    for app in (baseline, optimized):
        app.extensions["engine"].dispose()
    copy.engine.dispose()
    drop_copy(copy.url)


@pytest.mark.parametrize("url", URLS)
def test_same_answer_fewer_statements(apps: tuple[Flask, Flask], url: str) -> None:
    baseline, optimized = (app.test_client().get(url) for app in apps)
    assert optimized.status_code == baseline.status_code
    if url.startswith("/reports") and baseline.status_code == 200:
        # Sums added in another order may differ in the last cent after rounding; units are exact.
        b, o = baseline.get_json()["categories"], optimized.get_json()["categories"]
        assert [(c["category"], c["units"]) for c in o] == [(c["category"], c["units"]) for c in b]
        assert [c["revenue"] for c in o] == pytest.approx([c["revenue"] for c in b], abs=0.011)
    else:
        assert without_next(optimized.get_json()) == baseline.get_json()
    if optimized.status_code == 200:
        budget = next(n for prefix, n in BUDGETS.items() if url.startswith(prefix))
        assert int(optimized.headers["X-Statements"]) <= budget


def without_next(body: Any) -> Any:
    """The optimized order list adds a keyset cursor, `next`, that the baseline does not have."""
    return {k: v for k, v in body.items() if k != "next"} if isinstance(body, dict) else body


@pytest.mark.parametrize("per_page", [7, 50])
def test_following_next_gives_the_offset_pages(apps: tuple[Flask, Flask], per_page: int) -> None:
    baseline, optimized = (app.test_client() for app in apps)
    first = optimized.get(f"/orders?per_page={per_page}").get_json()
    cursor, pages = first["next"], [first["orders"]]
    for page in range(2, 5):
        followed = optimized.get(f"/orders?per_page={per_page}&after={cursor}")
        assert int(followed.headers["X-Statements"]) == 1  # the cursor is read inside the statement
        body = followed.get_json()
        assert body["after"] == cursor
        assert body["orders"] == baseline.get(f"/orders?page={page}&per_page={per_page}").get_json()["orders"]
        cursor = body["next"]
        pages.append(body["orders"])
    ids = [order["id"] for orders in pages for order in orders]
    assert len(ids) == len(set(ids)) == 4 * per_page


def test_the_last_page_ends_the_cursor(apps: tuple[Flask, Flask], course: Course) -> None:
    client = apps[1].test_client()
    orders = course.info.rows["orders"]
    last = -(-orders // 20)
    before_last = client.get(f"/orders?page={last - 1}&per_page=20").get_json()
    tail = client.get(f"/orders?per_page=20&after={before_last['next']}").get_json()
    assert tail["orders"] == client.get(f"/orders?page={last}&per_page=20").get_json()["orders"]
    assert len(before_last["orders"]) + len(tail["orders"]) == orders - (last - 2) * 20
    assert (tail["next"] is None) == (len(tail["orders"]) < 20)
    assert client.get("/orders?after=abc").status_code == 400
    missing = client.get("/orders?after=2147483647")
    assert missing.status_code == 404 and "next" in missing.get_json()["message"]


def test_report_is_cached_per_query_string(apps: tuple[Flask, Flask]) -> None:
    client = apps[1].test_client()
    first = client.get("/reports/sales?days=30")
    again = client.get("/reports/sales?days=30")
    other = client.get("/reports/sales?days=31")
    assert again.get_json() == first.get_json() and int(again.headers["X-Statements"]) == 0
    assert int(other.headers["X-Statements"]) > 0


def test_indexes_exist_on_the_copy_only(course: Course) -> None:
    from sqlalchemy import inspect

    names = {ix["name"] for ix in inspect(course.engine).get_indexes("orders")}
    assert not names & set(INDEXES)


def test_report_cache_keys_on_its_own_parameters(apps: tuple[Flask, Flask]) -> None:
    """A parameter the report does not read (?utm=…) neither splits its cache nor fills it with copies."""
    client = apps[1].test_client()
    client.get("/reports/sales?days=45&status=paid")
    for url in ("/reports/sales?status=paid&days=45", "/reports/sales?days=45&status=paid&utm=mail"):
        assert int(client.get(url).headers["X-Statements"]) == 0, url
    assert client.get("/reports/sales?days=x").status_code == 400  # a bad value misses, then answers 400


def test_a_placed_order_drops_every_cached_report(apps: tuple[Flask, Flask]) -> None:
    """Lesson 06's invalidation in the finished app: after POST /orders the next report runs its statements and
    counts the new order; a failed order (400) leaves the cached reports alone."""
    from helpers.shop.orders import EXAMPLE_BODY

    client = apps[1].test_client()
    url = "/reports/sales?days=3650"
    before = client.get(url).get_json()
    assert client.get(url).headers["X-Statements"] == "0"
    assert client.post("/orders", json={"lines": []}).status_code == 400
    assert client.get(url).headers["X-Statements"] == "0"  # nothing was placed: still the cached answer
    assert client.post("/orders", json=EXAMPLE_BODY).status_code == 201
    after = client.get(url)
    assert int(after.headers["X-Statements"]) > 0
    units = sum(line["quantity"] for line in EXAMPLE_BODY["lines"])
    total = lambda body: sum(c["units"] for c in body["categories"])  # noqa: E731
    assert total(after.get_json()) == total(before) + units

"""POST /orders: the baseline and the optimized app store the same order, the optimized one in 4 statements and
one commit; bad bodies get a 4xx with the reason from both. Everything runs on a private copy."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine

from helpers.course import Course
from helpers.data import drop_copy
from helpers.exercises.lesson08 import order_counts, stored_order
from helpers.measure.recorder import count_commits
from helpers.shop import baseline, optimized
from helpers.shop.orders import EXAMPLE_BODY, MAX_LINES, MAX_QUANTITY
from helpers.shop.params import MAX_ID


def body(customer_id: Any, lines: list[tuple[Any, Any]]) -> dict[str, Any]:
    return {"customer_id": customer_id, "lines": [{"product_id": p, "quantity": q} for p, q in lines]}


VALID = {
    "two lines": body(1, [(3, 2), (7, 1)]),
    "a product twice": body(9, [(5, 1), (8, 2), (5, 4)]),
    "the most lines": body(2, [(1 + i % 40, 1 + i % 7) for i in range(MAX_LINES)]),
    "the most of one product": body(3, [(4, MAX_QUANTITY)]),
}
REFUSED = {
    "unknown customer": (body(10**6, [(1, 1)]), 422, "no customer with id 1000000"),
    "unknown product in the last line": (body(1, [(1, 1), (10**6, 1)]), 422, "no product with id 1000000"),
    "first unknown product named": (body(1, [(10**6 + 1, 1), (10**6, 1)]), 422, "no product with id 1000001"),
    "no lines": (body(1, []), 400, "lines must be a list of 1 to 50 lines"),
    "too many lines": (body(1, [(1, 1)] * (MAX_LINES + 1)), 400, "lines must be a list of 1 to 50 lines"),
    "zero quantity": (body(1, [(1, 0)]), 400, "lines[0].quantity must be between 1 and 1000, got 0"),
    "negative quantity": (body(1, [(1, 2), (2, -3)]), 400, "lines[1].quantity must be between 1 and 1000"),
    "huge quantity": (body(1, [(1, 10**12)]), 400, "lines[0].quantity must be between 1 and 1000"),
    "fractional quantity": (body(1, [(1, 1.5)]), 400, "lines[0].quantity must be a whole number, got 1.5"),
    "quantity as text": (body(1, [(1, "2")]), 400, 'lines[0].quantity must be a whole number, got "2"'),
    "true as an id": (body(True, [(1, 1)]), 400, "customer_id must be a whole number, got true"),
    "id past INTEGER": (body(MAX_ID + 1, [(1, 1)]), 400, f"customer_id must be between 1 and {MAX_ID}"),
    "missing lines": ({"customer_id": 1}, 400, "the body lacks lines"),
    "extra field": ({**body(1, [(1, 1)]), "coupon": "FREE"}, 400, "unknown field 'coupon'"),
    "extra line field": (
        {"customer_id": 1, "lines": [{"product_id": 1, "quantity": 1, "unit_price": "0.01"}]},
        400,
        "lines[0] has an unknown field 'unit_price'",
    ),
    "not an object": ([1, 2], 400, "the body must be a JSON object"),
}


@pytest.fixture(scope="module")
def apps(course: Course) -> Iterator[tuple[Flask, Flask]]:
    copy = course.private_copy("place-order-test")
    made = (copy.app(views=baseline.bp), copy.app(views=optimized.bp))
    yield made
    for app in made:
        app.extensions["engine"].dispose()
    copy.engine.dispose()
    drop_copy(copy.url)


def stored(engine: Engine, order_id: int) -> tuple[Any, list[Any]]:
    """The order and its lines as the database holds them (the exercise's own read-back)."""
    held = stored_order(engine, order_id)
    assert held["order"] is not None
    return held["order"], held["lines"]


def post(app: Flask, payload: Any) -> tuple[Any, int]:
    """The response and the commits it took."""
    with count_commits(app.extensions["engine"]) as commits:
        response = app.test_client().post("/orders", json=payload)
    return response, commits.count


def without_identity(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k not in ("id", "created_at")}


@pytest.mark.parametrize("name", VALID)
def test_both_apps_store_the_same_order(apps: tuple[Flask, Flask], name: str) -> None:
    naive, fast = apps
    payload = VALID[name]
    (slow_response, slow_commits), (fast_response, fast_commits) = post(naive, payload), post(fast, payload)
    assert slow_response.status_code == fast_response.status_code == 201
    slow, quick = slow_response.get_json(), fast_response.get_json()
    assert without_identity(quick) == without_identity(slow)
    engine = fast.extensions["engine"]
    assert stored(engine, quick["id"]) == stored(engine, slow["id"])
    # The answer is what was stored: money as exact decimals, the total the sum of the lines.
    order, lines = stored(engine, quick["id"])
    assert [(p, q, str(u)) for p, q, u in lines] == [
        (line["product_id"], line["quantity"], line["unit_price"]) for line in quick["lines"]
    ]
    assert order[2] == Decimal(quick["total"]) == sum(q * u for _, q, u in lines)
    assert order[1] == quick["status"] == "pending"
    assert abs(datetime.fromisoformat(quick["created_at"]) - datetime.now(UTC).replace(tzinfo=None)) < timedelta(
        minutes=5
    )
    # The cost: the optimized app in 4 statements and one commit, the baseline a commit per row.
    assert int(fast_response.headers["X-Statements"]) == 4 and fast_commits == 1
    assert slow_commits == len(payload["lines"]) + 2
    distinct = len({line["product_id"] for line in payload["lines"]})
    assert int(slow_response.headers["X-Statements"]) >= 1 + distinct + 1 + len(payload["lines"])


@pytest.mark.parametrize("name", REFUSED)
def test_both_apps_refuse_the_same_way_and_write_nothing(apps: tuple[Flask, Flask], name: str) -> None:
    payload, status, reason = REFUSED[name]
    engine = apps[1].extensions["engine"]
    before = order_counts(engine)
    answers = [post(app, payload) for app in apps]
    for response, commits in answers:
        assert response.status_code == status and response.is_json
        assert reason in response.get_json()["message"]
        assert commits == 0
    assert answers[0][0].get_json() == answers[1][0].get_json()
    assert order_counts(engine) == before


def test_only_json_is_accepted(apps: tuple[Flask, Flask]) -> None:
    for app in apps:
        client = app.test_client()
        as_form = client.post("/orders", data={"customer_id": "1"})
        assert as_form.status_code == 415 and "application/json" in as_form.get_json()["message"]
        too_big = client.post("/orders", data=b"[" + b" " * 20_000 + b"]", content_type="application/json")
        assert too_big.status_code == 413 and "at most 50 lines" in too_big.get_json()["message"]
        broken = client.post("/orders", data=b'{"customer_id": 1,', content_type="application/json")
        assert broken.status_code == 400 and "not valid JSON" in broken.get_json()["message"]


def test_the_index_lists_the_write_endpoint(apps: tuple[Flask, Flask]) -> None:
    for app in apps:
        listed = app.test_client().get("/", headers={"Accept": "application/json"}).get_json()["endpoints"]
        [entry] = [e for e in listed if e["rule"] == "/orders" and e["methods"] == ["POST"]]
        assert entry["doc"].startswith("Place an order with its lines")
        assert entry["example_body"] == EXAMPLE_BODY  # and it works:
        assert app.test_client().post("/orders", json=entry["example_body"]).status_code == 201
        page = app.test_client().get("/", headers={"Accept": "text/html"}).get_data(as_text=True)
        assert "with the JSON body <code>{&quot;customer_id&quot;: 1" in page

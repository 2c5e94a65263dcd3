"""The baseline app: right answers, statement counts in headers, clear 4xx for bad requests."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from helpers.course import Course
from helpers.shop.models import Customer, Order


@pytest.fixture(scope="module")
def app(course: Course) -> Iterator[Flask]:
    app = course.app(TESTING=True)
    yield app
    app.extensions["engine"].dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def test_customer_page_counts_the_n_plus_one(course: Course, client: FlaskClient) -> None:
    with course.session() as s:
        n_orders = s.scalar(select(func.count()).select_from(Order).where(Order.customer_id == 1))
    r = client.get("/customers/1")
    assert r.status_code == 200
    body = r.get_json()
    assert body["id"] == 1 and len(body["orders"]) == n_orders
    # customer, its orders, then one statement per order for its lines
    assert int(r.headers["X-Statements"]) == 2 + n_orders
    assert float(r.headers["X-DB-Time-ms"]) >= 0


def test_order_list_is_newest_first_with_names(course: Course, client: FlaskClient) -> None:
    r = client.get("/orders?page=2&per_page=10")
    assert r.status_code == 200
    orders = r.get_json()["orders"]
    with course.session() as s:
        expected = s.execute(
            select(Order.id, Customer.name)
            .join(Order.customer)
            .order_by(Order.created_at.desc(), Order.id.desc())
            .limit(10)
            .offset(10)
        ).all()
    assert [(o["id"], o["customer"]) for o in orders] == [tuple(row) for row in expected]
    distinct_customers = len({o["customer"] for o in orders})
    assert int(r.headers["X-Statements"]) >= 1 + 10 + min(distinct_customers, 10) - 1


def test_search_filters_and_orders(course: Course, client: FlaskClient) -> None:
    r = client.get("/search?city=Lisbon&name=a&limit=500")
    found = r.get_json()
    with course.session() as s:
        expected = s.execute(
            select(Customer.id, Customer.name)
            .where(Customer.city == "Lisbon", Customer.name.ilike("%a%"))
            .order_by(Customer.name, Customer.id)
        ).all()
    assert found["count"] == len(expected)
    assert [(c["id"], c["name"]) for c in found["customers"]] == [tuple(e) for e in expected]


def test_sales_report_adds_up(client: FlaskClient) -> None:
    body = client.get("/reports/sales?days=3650").get_json()
    # Money travels as exact decimal strings ("1234.50"), never as floats.
    revenues = [Decimal(c["revenue"]) for c in body["categories"]]
    assert revenues and all(r > 0 and r == r.quantize(Decimal("0.01")) for r in revenues)
    assert all(c["units"] > 0 for c in body["categories"])
    assert revenues == sorted(revenues, reverse=True)


@pytest.mark.parametrize(
    ("url", "status", "fragment"),
    [
        ("/customers/999999999", 404, "no customer with id 999999999"),
        ("/customers/abc", 404, "not found"),
        ("/customers/99999999999999999999999", 404, "not found"),
        ("/orders?page=abc", 400, "page must be a whole number"),
        ("/orders?page=0", 400, "page must be between 1"),
        ("/orders?per_page=100000", 400, "per_page must be between 1 and 500"),
        ("/search?limit=-1", 400, "limit must be between"),
        ("/search?name=" + "x" * 500, 400, "at most 100 characters"),
        ("/reports/sales?status=lost", 400, "status must be one of"),
        ("/reports/sales?min_total=lots", 400, "min_total must be a number"),
        ("/reports/sales?min_total=nan", 400, "min_total must be a number"),
        ("/search?name=a%00b", 400, "control characters"),
        ("/nowhere", 404, "not found"),
    ],
)
def test_bad_requests_get_a_reason(client: FlaskClient, url: str, status: int, fragment: str) -> None:
    r = client.get(url)
    assert r.status_code == status
    assert fragment.lower() in r.get_json()["message"].lower()


def test_sql_in_parameters_is_just_text(client: FlaskClient) -> None:
    r = client.get("/search?city=Lisbon' OR '1'='1&limit=5")
    assert r.status_code == 200 and r.get_json()["count"] == 0


def test_every_request_closes_its_session(app: Flask, client: FlaskClient) -> None:
    pool = app.extensions["engine"].pool
    for url in ("/customers/1", "/orders", "/customers/999999999"):
        client.get(url)
        assert pool.checkedout() == 0


def test_index_lists_every_endpoint_with_an_example(client: FlaskClient) -> None:
    endpoints = client.get("/", headers={"Accept": "application/json"}).get_json()["endpoints"]
    rules = {e["rule"]: e for e in endpoints}
    assert {"/customers/<int:customer_id>", "/orders", "/search", "/reports/sales"} <= set(rules)
    for e in endpoints:
        assert e["example"]
        if e["methods"] == ["GET"]:
            assert client.get(e["example"].replace("http://localhost", "")).status_code == 200
        else:  # a write: the index shows the body to send (tests/test_place_order.py sends it, on a copy)
            assert isinstance(e["example_body"], dict)


def test_index_is_a_page_for_browsers(client: FlaskClient) -> None:
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    page = client.get("/", headers={"Accept": browser})
    assert page.status_code == 200 and page.mimetype == "text/html"
    text = page.get_data(as_text=True)
    assert "<table>" in text and 'href="http://localhost/orders?page=1&amp;per_page=20"' in text
    assert client.get("/").is_json  # API clients (and Accept: */*) get JSON

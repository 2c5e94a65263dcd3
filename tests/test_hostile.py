"""No route of either app answers 5xx, whatever a client sends: hostile values in every path and parameter."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask

from helpers.course import Course
from helpers.data import drop_copy
from helpers.shop import baseline, optimized

HOSTILE = [
    "99999999999999999999999",
    "2147483648",
    "-1",
    "-99999999999999999999",
    "0",
    "1.5",
    "1e308",
    "nan",
    "inf",
    "",
    " ",
    "%C3%A9t%C3%A9",  # été
    "%F0%9F%90%8D",  # a snake
    "%00",
    "a%00b",
    "x" * 10_000,
    "'",
    "'%20OR%20'1'='1",
    "1;DROP%20TABLE%20orders",
    "%25",
    "_",
    "%5C",
    "..%2F..%2Fetc%2Fpasswd",
    "<script>alert(1)</script>",
]


@pytest.fixture(scope="module")
def apps(course: Course) -> Iterator[dict[str, Flask]]:
    copy = course.private_copy("hostile-test")
    optimized.create_indexes(copy.engine)
    made = {"baseline": copy.app(views=baseline.bp), "optimized": copy.app(views=optimized.bp)}
    yield made
    for app in made.values():
        app.extensions["engine"].dispose()
    copy.engine.dispose()
    drop_copy(copy.url)


def urls(app: Flask) -> Iterator[tuple[str, str]]:
    """(method, url) for every route with every hostile value in every path segment and parameter."""
    with app.test_request_context():
        from helpers.shop.app import endpoints

        listed = endpoints()
    for endpoint in listed:
        example = (endpoint["example"] or endpoint["rule"]).replace("http://localhost", "")
        path, _, query = example.partition("?")
        params = [p.split("=", 1)[0] for p in query.split("&") if p]
        for method in endpoint["methods"]:
            for value in HOSTILE:
                # every variable path segment, then every parameter, gets the value
                yield method, re.sub(r"<[^>]+>", value, endpoint["rule"])
                for name in params:
                    others = "&".join(p for p in query.split("&") if not p.startswith(f"{name}="))
                    yield method, f"{path}?{others}&{name}={value}"
            yield method, f"{path}?{query}&{query}"  # every parameter repeated
            yield method, f"{path}?{query}&unknown=1&page=2&page=abc"


@pytest.mark.parametrize("which", ["baseline", "optimized"])
def test_no_route_answers_5xx(apps: dict[str, Flask], which: str) -> None:
    app = apps[which]
    client = app.test_client()
    tried, failures = 0, []
    for method, url in dict.fromkeys(urls(app)):
        response = client.open(url, method=method, json={} if method != "GET" else None)
        tried += 1
        if response.status_code >= 500:
            failures.append(f"{method} {url[:80]} → {response.status_code}")
        else:
            assert response.is_json, url[:80]
    assert tried >= 6 * len(HOSTILE)  # every route, each of its parameters
    assert failures == []


def test_both_apps_serve_the_same_routes() -> None:
    def routes(bp: object) -> set[tuple[str, str]]:
        app = Flask("routes")
        app.register_blueprint(bp)  # type: ignore[arg-type]
        return {
            (rule.rule, method)
            for rule in app.url_map.iter_rules()
            if rule.endpoint != "static"
            for method in rule.methods or ()
        }

    assert routes(baseline.bp) == routes(optimized.bp)


_ONE_LINE = [{"product_id": 1, "quantity": 1}]


def _order(customer_id: object = 1, lines: object = _ONE_LINE) -> dict[str, object]:
    return {"customer_id": customer_id, "lines": lines}


def _line(product_id: object = 1, quantity: object = 1) -> list[dict[str, object]]:
    return [{"product_id": product_id, "quantity": quantity}]


BAD_VALUES: list[object] = [
    None, True, False, 0, -1, 1.5, 1e308, 2**31, 2**63, 10**30, -(10**30), "1", "", "\x00", "x" * 10_000,
    [], [1], {}, {"$gt": 0},
]  # fmt: skip
# Well-formed JSON that is not a valid order: every value in every field, and every shape around them.
HOSTILE_BODIES: list[object] = [
    None, 0, "orders", [], [_order()], {}, {"customer_id": 1}, {"lines": []}, {**_order(), "extra": 1},
    {"customer_id": 1, "lines": [{"product_id": 1, "quantity": 1, "unit_price": "0.00"}]},
    {"customer_id": 1, "lines": [{}]}, {"customer_id": 1, "lines": [None]}, {"customer_id": 1, "lines": [[1, 1]]},
    _order(lines=[{"product_id": 1, "quantity": 1}] * 51), _order(lines={"product_id": 1, "quantity": 1}),
    {"\x00": 1, "customer_id": 1, "lines": []}, {"customer_id": 1, "lines": [], "é": "🐍"},
    *[_order(customer_id=v) for v in BAD_VALUES],
    *[_order(lines=v) for v in BAD_VALUES if not isinstance(v, list) or v == []],
    *[_order(lines=_line(product_id=v)) for v in BAD_VALUES],
    *[_order(lines=_line(quantity=v)) for v in [*BAD_VALUES, 1001]],
]  # fmt: skip
# Bodies that are not JSON, or not sent as JSON: (bytes, content type).
HOSTILE_RAW: list[tuple[bytes, str | None]] = [
    (b"", "application/json"),
    (b"{", "application/json"),
    (b"[" * 10_000, "application/json"),  # nesting deeper than the parser's recursion
    (b"[" * 100_000, "application/json"),  # larger than any order
    (b"1" * 5_000, "application/json"),  # an integer too long to convert
    (b"NaN", "application/json"),
    (b'{"customer_id": NaN, "lines": []}', "application/json"),
    (b'{"customer_id": 1e999, "lines": [{"product_id": 1, "quantity": 1}]}', "application/json"),
    (b'{"customer_id": Infinity, "lines": []}', "application/json"),
    (b"\xff\xfe\x00\x00", "application/json"),
    (b"\x00", "application/json"),
    (b'{"customer_id": 1, "lines": [{"product_id": 1, "quantity": 1}]}', "text/plain"),
    (b"customer_id=1&lines=1", "application/x-www-form-urlencoded"),
    (b'{"customer_id": 1, "lines": []}', None),
    (b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--x--\r\n", "multipart/form-data; boundary=x"),
]


def _post_rules(app: Flask) -> list[str]:
    return [
        re.sub(r"<[^>]+>", "1", rule.rule)
        for rule in app.url_map.iter_rules()
        if "POST" in (rule.methods or set())
    ]


@pytest.mark.parametrize("which", ["baseline", "optimized"])
def test_post_routes_refuse_hostile_bodies_with_a_reason(apps: dict[str, Flask], which: str) -> None:
    """Every hostile body gets a 4xx with a JSON reason, never a 5xx (and never a 201)."""
    app = apps[which]
    client = app.test_client()
    rules = _post_rules(app)
    assert rules  # the shop has a write endpoint (lesson 08's POST /orders)
    failures = []
    for url in rules:
        for body in HOSTILE_BODIES:
            response = client.post(url, json=body)
            if not 400 <= response.status_code < 500 or not response.get_json().get("message"):
                failures.append(f"{url} {str(body)[:60]} → {response.status_code}")
        for raw, content_type in HOSTILE_RAW:
            response = client.post(url, data=raw, content_type=content_type)
            if not 400 <= response.status_code < 500 or not response.is_json:
                failures.append(f"{url} {raw[:40]!r} ({content_type}) → {response.status_code}")
    assert len(HOSTILE_BODIES) > 80 and failures == []

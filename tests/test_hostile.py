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

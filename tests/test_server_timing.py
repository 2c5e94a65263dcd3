"""The app reports each request's database time and statements in the web's standard `Server-Timing` header."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from helpers.course import Course

# W3C Server Timing: metrics separated by commas, each a name with optional `dur` (ms) and `desc` parameters.
METRIC = re.compile(r'(?P<name>[\w-]+)(?:;dur=(?P<dur>[\d.]+))?(?:;desc="(?P<desc>[^"]*)")?')


def metrics(header: str) -> dict[str, tuple[float | None, str | None]]:
    found = {}
    for part in header.split(", "):
        match = METRIC.fullmatch(part)
        assert match, f"not a Server-Timing metric: {part!r}"
        found[match["name"]] = (float(match["dur"]) if match["dur"] else None, match["desc"])
    return found


def test_server_timing_agrees_with_the_x_headers(course: Course) -> None:
    app = course.app()
    try:
        check_headers(app.test_client())
    finally:
        app.extensions["engine"].dispose()  # its pooled connections closed now, not whenever GC finds them


def check_headers(client: FlaskClient) -> None:
    for url in ("/customers/1", "/orders?per_page=5"):
        response = client.get(url, headers={"Accept": "application/json"})
        assert response.status_code == 200
        timing = metrics(response.headers["Server-Timing"])
        assert set(timing) == {"db", "total"}
        db_ms, desc = timing["db"]
        statements = int(response.headers["X-Statements"])
        assert statements > 0 and desc == f"{statements} statement{'' if statements == 1 else 's'}"
        assert db_ms == float(response.headers["X-DB-Time-ms"])
        assert timing["total"][0] == float(response.headers["X-Response-Time-ms"]) >= (db_ms or 0)
    assert metrics(client.get("/").headers["Server-Timing"])["db"] == (0.0, "0 statements")

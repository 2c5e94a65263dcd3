"""Shared fixtures: the tiny dataset on each backend, and a results store private to the test run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Before helpers is imported: measurements made by tests never reach the learner's history.
os.environ.setdefault(
    "COURSE_RESULTS_PATH",
    str(Path(os.environ.get("TMPDIR", "/tmp")) / f"course-test-results-{os.getpid()}.sqlite"),
)

from helpers.course import Course, setup

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session", params=BACKENDS)
def course(request: pytest.FixtureRequest) -> Iterator[Course]:
    """The tiny dataset on SQLite and on the project's own PostgreSQL, shared read-only by the tests."""
    c = setup("tests", size="tiny", backend=request.param, quiet=True)
    yield c
    c.engine.dispose()


@pytest.fixture
def sqlite_course() -> Iterator[Course]:
    """The tiny dataset on SQLite only, for tests about SQLite itself."""
    c = setup("tests", size="tiny", backend="sqlite", quiet=True)
    yield c
    c.engine.dispose()
